//! Settings that come from the user's machine rather than from recipes.

pub mod image_mirrors;
pub mod mirrors;
