//! From a video file to the tensors the encoders see: decode, segments (part of a video seen as
//! its own), clip sampling (which frames the model sees), preprocessing.
pub mod clips;
pub mod decode;
pub mod extract;
pub mod frame;
pub mod preprocess;
pub mod rotate;
pub mod segment;
