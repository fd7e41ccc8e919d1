//! Getting artifacts into the store: the HTTP client with its retry and mirror policy,
//! and the parallel download of everything a lock names.

pub mod http;
pub mod lockfile;

pub use http::{FetchError, Fetcher};
