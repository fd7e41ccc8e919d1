//! PyPI: wheel tags, the index and wheel metadata, the PubGrub resolver, and the
//! interface through which it asks for source builds.

pub mod build;
pub mod simple;
pub mod solver;
pub mod tags;
