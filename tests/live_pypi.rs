//! Live: the PyPI resolver against the configured index (CARBON_MIRROR_PYPI, or the host's
//! pip configuration and pip's default index). Ignored by plain `cargo test`.

use carbon_store::config::mirrors::MirrorSettings;
use carbon_store::fetch::Fetcher;
use carbon_store::python::solver::{self, PyRequest, PyTarget};
use carbon_store::python::tags::Target;
use carbon_store::store::Store;

fn target(arch: &str) -> PyTarget {
    PyTarget::cpython_linux(arch, "3.13.5", Target::machine_of(arch), (2, 41)).unwrap()
}

#[test]
#[ignore = "live: needs the package index; run by scripts/test"]
fn resolves_the_data_science_set_for_both_archs() {
    let store = Store::open(concat!(env!("CARGO_MANIFEST_DIR"), "/target/live-store")).unwrap();
    let mirrors = MirrorSettings::from_host(&[]).unwrap();
    let index = mirrors.mirror("pypi").unwrap().urls;
    let fetcher = Fetcher::new(false);
    let pages = solver::PageCache::default();
    let request = PyRequest {
        component: "python-data".into(),
        requirements: [
            "numpy",
            "pandas",
            "scipy",
            "scikit-learn",
            "matplotlib",
            "jupyterlab",
        ]
        .map(String::from)
        .to_vec(),
        ..Default::default()
    };
    for arch in ["amd64", "arm64"] {
        let started = std::time::Instant::now();
        let result = solver::resolve(
            &fetcher,
            &store,
            &index,
            &target(arch),
            std::slice::from_ref(&request),
            &pages,
            &carbon_store::python::sdist::HostBuilder { store: &store },
        )
        .unwrap();
        println!(
            "{arch}: {} packages in {:.2}s",
            result.len(),
            started.elapsed().as_secs_f64()
        );
        let names: Vec<&str> = result.iter().map(|r| r.name.as_str()).collect();
        for expected in [
            "numpy",
            "pandas",
            "scipy",
            "scikit-learn",
            "matplotlib",
            "jupyterlab",
            "jupyter-server",
            "python-dateutil",
        ] {
            assert!(
                names.contains(&expected),
                "{arch}: {expected} missing from {names:?}"
            );
        }
        let numpy = result.iter().find(|r| r.name == "numpy").unwrap();
        assert!(
            numpy
                .file
                .filename
                .contains(if arch == "arm64" { "aarch64" } else { "x86_64" }),
            "{}",
            numpy.file.filename
        );
        assert!(
            numpy.file.filename.contains("cp313"),
            "{}",
            numpy.file.filename
        );
    }
}
