//! Streaming readers for package formats.

pub mod beneath;
pub mod deb;
pub mod zip_member;
