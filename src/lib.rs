//! carbon-store: a declarative, Nix-style builder of reproducible container images.
//!
//! Data flows one way: recipe → resolve → lock → fetch → store (→ unpack → layer → oci).

pub mod config;
pub mod deb822;
pub mod debian;
pub mod digest;
pub mod download;
pub mod fetch;
pub mod fixup;
pub mod layer;
pub mod lock;
pub mod lockfile;
pub mod name;
pub mod npm;
pub mod oci;
pub mod python;
pub mod realize;
pub mod recipe;
pub mod registry;
pub mod sandbox;
pub mod sbom;
pub mod store;
pub mod unpack;
