//! Embeds a hash of the sources (src/ and Cargo.lock) as CARBON_SOURCE_HASH, so that an
//! unchanged-realize shortcut never reuses outputs made by a different build of the tool.

use sha2::{Digest, Sha256};
use std::path::Path;

fn visit(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            visit(&p, files);
        } else {
            files.push(p);
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    visit(&root.join("src"), &mut files);
    files.push(root.join("Cargo.lock"));
    files.sort();
    let mut hasher = Sha256::new();
    for f in &files {
        hasher.update(
            f.strip_prefix(root)
                .unwrap_or(f)
                .to_string_lossy()
                .as_bytes(),
        );
        hasher.update(std::fs::read(f).unwrap_or_default());
    }
    println!(
        "cargo:rustc-env=CARBON_SOURCE_HASH={}",
        hex_string(&hasher.finalize())
    );
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=Cargo.lock");
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
