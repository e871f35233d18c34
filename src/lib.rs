//! captioner: writes captions for photos and trains its own captioning model, on your machine.
//!
//! The library holds everything; two front ends drive it: the command line ([`cli`]) and the
//! desktop app ([`app`]). See `ARCHITECTURE.md` for the shape of it.

pub mod app;
pub mod cli;
pub mod dataset;
pub mod encoder;
pub mod eval;
pub mod paths;
pub mod worker;
