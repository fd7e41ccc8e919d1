//! PyPI: wheel tags, the index and wheel metadata, and the PubGrub resolver.

pub mod simple;
pub mod solver;
pub mod tags;
