//! Layers: the deterministic tar writer, compression, and a layer value that knows its
//! digests and size (as go-containerregistry's `v1.Layer`).

pub mod blob;
pub mod compress;
pub mod content;
pub mod tar;
pub mod tree;
