//! Streaming readers for package formats.

pub mod beneath;
pub mod deb;
