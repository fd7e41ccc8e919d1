//! OCI registries: pushing images from a layout, pulling them into one.
//!
//! Why: a registry is where images are delivered and shared (CI runners, clusters, an
//! air-gapped site's own registry). Modules: `reference` (what users type), `auth`
//! (credentials where docker and podman keep them, and challenges), `client` (the
//! distribution API over HTTP with retries and auth), `documents` (descriptors of indexes
//! and manifests), `push`, `stream` (pushing while an image is built), `pull`,
//! `referrers` (an image's SBOMs and provenance, OCI 1.1 referrers or the tag fallback)
//! and `sessions` (resumable uploads and mount sources, remembered in the store).

pub mod auth;
pub mod cache;
pub mod client;
pub mod documents;
pub mod pull;
pub mod push;
pub mod reference;
pub mod referrers;
pub mod sessions;
pub mod stream;

pub use client::{ConnectOptions, Registry, RegistryError};
pub use reference::ImageRef;
