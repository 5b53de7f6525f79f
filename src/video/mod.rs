//! From a video file to the tensors the encoders see: decode, clip sampling, preprocessing.
pub mod decode;
pub mod extract;
pub mod frame;
pub mod preprocess;
pub mod rotate;
pub mod sample;
