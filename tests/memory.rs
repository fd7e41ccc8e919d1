//! Realize in bounded memory: an image that holds a 2 GiB file (a recipe file) and a package
//! with a 1 GiB file is realized, and checked, by a process whose peak resident set stays
//! under 600 MB. Its own test binary, so that the peak of `getrusage(RUSAGE_CHILDREN)` is
//! that of these realize processes and of no other test's.

mod common;

use common::Sandbox;

const CEILING: u64 = 600 << 20;

#[test]
fn an_image_with_gigabyte_files_is_realized_and_checked_in_bounded_memory() {
    // The test process itself stays small: a child's peak RSS starts at its parent's.
    let (sb, component) = Sandbox::with_big_file(1 << 30);
    // A 2 GiB recipe file, made sparse: the test writes no 2 GiB, realize reads them all.
    std::fs::create_dir_all(sb.path("recipes/files")).unwrap();
    let big = std::fs::File::create(sb.path("recipes/files/big.bin")).unwrap();
    big.set_len(2 << 30).unwrap();
    drop(big);
    sb.write(
        "recipes/components/hello.toml",
        &format!(
            "{component}\n[[path]]\npath = \"/opt/big.bin\"\nkind = \"file\"\nsource = \"big.bin\"\n"
        ),
    );
    sb.ok(&["lock", "test"]);
    sb.ok(&["realize", "test", "--arch", "amd64"]);
    let realize_peak = common::children_peak_rss_bytes();
    let out = sb.ok(&["realize", "test", "--arch", "amd64", "--check"]);
    assert!(out.contains("rebuilt from sources and identical"), "{out}");
    let check_peak = common::children_peak_rss_bytes();
    eprintln!(
        "peak RSS: realize {} MiB, realize --check {} MiB",
        realize_peak >> 20,
        check_peak >> 20
    );
    assert!(
        realize_peak < CEILING,
        "realize peaked at {} MiB",
        realize_peak >> 20
    );
    assert!(
        check_peak < CEILING,
        "realize --check peaked at {} MiB",
        check_peak >> 20
    );
    // Both files are in the image, whole.
    let archive = std::fs::read(sb.path("oci-out/test-amd64.tar"));
    let paths = common::layer_paths(&archive.unwrap());
    for path in ["opt/big.bin", "usr/share/bigdata/blob"] {
        assert!(paths.iter().any(|p| p == path), "{path} missing");
    }
}
