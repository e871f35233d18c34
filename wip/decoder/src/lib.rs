pub mod decoder;
pub mod eval;
pub mod model_dir;
pub mod train;
