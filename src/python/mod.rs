//! The Python ecosystem: wheels from a package index, resolved for each arch's interpreter
//! and installed into the image's virtual environment without pip and without running any
//! package code but the image's own interpreter compiling byte-code.
//!
//! - `tags.rs`: which wheels an interpreter on an arch accepts;
//! - `simple.rs`: the index (PEP 691/503 pages) and wheel metadata, read by range;
//! - `solver.rs`: the PubGrub resolver;
//! - `build.rs`: the interface through which the resolver asks for source builds (as uv's
//!   `BuildContext`), so that resolving depends on nothing that installs;
//! - `sdist.rs`: the host's builder of pure-Python sdists, and rebuilding what a lock
//!   pins that way;
//! - `install.rs`: wheels into a layer tree, and byte-code by the image's interpreter.

pub mod build;
pub mod install;
pub mod sdist;
pub mod simple;
pub mod solver;
pub mod tags;
