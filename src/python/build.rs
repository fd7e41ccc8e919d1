//! What the resolver needs of a source build, as an interface it takes (uv's
//! `BuildContext`): the resolver decides which sdist to build and resolves and pins its
//! build backend; the builder (`sdist.rs`, which installs backends with realize's wheel
//! installer and runs them) is passed in by the `lock` command. So resolving never depends
//! on installing, and a test can resolve with a builder of its own.

use crate::lockfile::IndexPin;

pub type BuildError = Box<dyn std::error::Error + Send + Sync>;

/// A wheel a source build put into the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltWheel {
    pub file: String,
    pub sha256: crate::digest::Sha256Hex,
    pub size: u64,
}

/// Builds wheels from sdists for the resolver.
pub trait SourceBuilder: Sync {
    /// The `[build-system] requires` of an sdist, from its bytes.
    fn build_requires(&self, sdist: &[u8], file: &str) -> Result<Vec<String>, BuildError>;
    /// The full version of the Python that builds run with (backends are resolved for it).
    fn python_version(&self) -> Result<String, BuildError>;
    /// Builds `sdist` with `requires` (wheels in the store) into a wheel in the store.
    fn build(&self, sdist: &IndexPin, requires: &[IndexPin]) -> Result<BuiltWheel, BuildError>;
}
