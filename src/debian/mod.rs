//! The Debian ecosystem's resolution side: versions, relations, signed indexes and the
//! resolver that makes apt's choice. Installing `.deb`s into layers is `realize`'s
//! (`packages.rs`, `layers.rs`, with `fixup/` for what maintainer scripts would do).

pub mod copyright;
pub mod index;
pub mod packages;
pub mod relation;
pub mod release;
pub mod signature;
pub mod solver;
pub mod version;
