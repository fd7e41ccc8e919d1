//! Turning what recipes ask for into exact artifacts, per ecosystem.

pub mod debian;
