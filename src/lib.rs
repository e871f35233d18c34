//! captioner: writes captions for photos and trains its own captioning model, on your machine.
//!
//! The library holds everything; two front ends drive it: the command line ([`cli`]) and the
//! desktop app ([`app`]). See `ARCHITECTURE.md` for the shape of it.

pub mod app;
pub mod attention_view;
pub mod bench;
pub mod cli;
pub mod concepts;
pub mod dataset;
pub mod decoder;
pub mod encoder;
pub mod eval;
pub mod export;
pub mod features;
pub mod files;
pub mod jobs;
pub mod metadata;
pub mod model_dir;
pub mod paths;
pub mod pipeline;
pub mod rng;
pub mod sidecar;
pub mod simd;
pub mod train;
pub mod trust;
pub mod worker;
