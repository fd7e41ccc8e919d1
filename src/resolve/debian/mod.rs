//! Debian: versions, relations, signed indexes and the resolver.

pub mod index;
pub mod packages;
pub mod relation;
pub mod release;
pub mod signature;
pub mod solver;
pub mod version;
