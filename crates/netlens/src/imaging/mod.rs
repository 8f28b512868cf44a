//! Images in and out: decoding, model-input geometry, tensors, arrays and figures.
//!
//! Data flows one way: file → [`decode`] → [`geometry`] → [`tensor`] → model, and back out
//! through [`tensor`], [`quantize`](mod@quantize) (8-bit rounding) and [`output`]. Nothing
//! here does gradient math.

pub mod colormap;
pub mod decode;
pub mod figure;
pub mod filters;
pub mod geometry;
pub mod output;
pub mod plotting;
pub mod quantize;
pub mod resample;
pub mod tensor;

pub use decode::{load_rgb, load_rgb_noting};
pub use geometry::{fit, fit_with, Geometry, Placement};
pub use quantize::{quantize, quantize_in_ball, PixelBall};
pub use tensor::{images_to_tensor, images_to_tensor_as, tensor_to_images, Normalization};
