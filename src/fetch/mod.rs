//! Getting files from mirrors into the store: the HTTP client with its retry and mirror
//! policy. What a lock names is downloaded by `download`, above the index clients.

pub mod http;

pub use http::{AttemptFailure, Attempts, FetchError, Fetcher};
