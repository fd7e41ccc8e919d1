//! Streaming readers for package formats.

pub mod deb;
