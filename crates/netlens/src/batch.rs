//! One batch of images on the host: flat `[B, C, H, W]` values and their shape, the type every
//! method takes and returns ([`crate::saliency`]'s batches, [`crate::gradients::ascend`]'s
//! variable, [`crate::adversarial`]'s images).
//!
//! [`ImageBatch`] owns its values (`ImageBatch<Vec<f32>>`, the default) or borrows them
//! ([`ImageBatchRef`], `ImageBatch<&[f32]>`): one type, one set of methods, so that nobody
//! slices images by hand or works out a value's channel from its flat index. Images are
//! image-major, channels channel-major inside an image (NCHW, as tensors are). Tensors stay
//! between the model and the gradient; a batch becomes one with [`ImageBatch::to_tensor`] in
//! the model's precision and comes back with [`ImageBatch::from_tensor`].

use crate::engine::{tensor_values, Precision};
use crate::error::{Error, Result};
use crate::imaging::tensor::{chw_to_images, images_to_chw, Normalization};
use burn::tensor::Tensor;
use image::RgbImage;
use std::ops::Range;

/// A batch of `shape[0]` images `[C, H, W]` as flat values (owned by default; borrowed as
/// [`ImageBatchRef`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageBatch<S = Vec<f32>> {
    data: S,
    shape: [usize; 4],
}

/// A borrowed [`ImageBatch`].
pub type ImageBatchRef<'a> = ImageBatch<&'a [f32]>;

impl<S: AsRef<[f32]>> ImageBatch<S> {
    /// The batch of `data` with shape `shape` (`[B, C, H, W]`); an error when the number of
    /// values is not the shape's.
    pub fn new(data: S, shape: [usize; 4]) -> Result<Self> {
        let want: usize = shape.iter().product();
        let got = data.as_ref().len();
        if got != want {
            return Err(Error::Invalid(format!(
                "a batch of shape {shape:?} holds {want} values, got {got}"
            )));
        }
        Ok(Self { data, shape })
    }

    /// `[B, C, H, W]`.
    pub fn shape(&self) -> [usize; 4] {
        self.shape
    }

    /// Images in the batch (B).
    pub fn len(&self) -> usize {
        self.shape[0]
    }

    /// Whether the batch holds no image.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values per channel plane (H·W).
    pub fn plane(&self) -> usize {
        self.shape[2] * self.shape[3]
    }

    /// Values per image (C·H·W).
    pub fn per_image(&self) -> usize {
        self.shape[1] * self.plane()
    }

    /// All values, image-major.
    pub fn values(&self) -> &[f32] {
        self.data.as_ref()
    }

    /// The values of image `i` (`[C, H, W]`).
    pub fn image(&self, i: usize) -> &[f32] {
        let per = self.per_image();
        &self.values()[i * per..(i + 1) * per]
    }

    /// The images in order, each `[C, H, W]`.
    pub fn images(&self) -> impl Iterator<Item = &[f32]> {
        self.values().chunks_exact(self.per_image().max(1))
    }

    /// Channel `c` of image `i` (`[H, W]`).
    pub fn channel(&self, i: usize, c: usize) -> &[f32] {
        let plane = self.plane();
        &self.image(i)[c * plane..(c + 1) * plane]
    }

    /// The channels of image `i` in order, with their index: `(c, [H, W])`.
    pub fn channels(&self, i: usize) -> impl Iterator<Item = (usize, &[f32])> {
        self.image(i).chunks_exact(self.plane().max(1)).enumerate()
    }

    /// A borrowed view of the whole batch.
    pub fn view(&self) -> ImageBatchRef<'_> {
        ImageBatch {
            data: self.values(),
            shape: self.shape,
        }
    }

    /// A borrowed view of images `r`.
    pub fn slice(&self, r: Range<usize>) -> ImageBatchRef<'_> {
        let per = self.per_image();
        let [_, c, h, w] = self.shape;
        ImageBatch {
            data: &self.values()[r.start * per..r.end * per],
            shape: [r.len(), c, h, w],
        }
    }

    /// An owned copy.
    pub fn to_owned(&self) -> ImageBatch {
        ImageBatch {
            data: self.values().to_vec(),
            shape: self.shape,
        }
    }

    /// The batch as a tensor for a model, in its precision `p`.
    pub fn to_tensor(&self, p: Precision) -> Tensor<4> {
        p.tensor(self.values().to_vec(), self.shape)
    }

    /// Normalized images (`C` = 3) back to 8-bit images: denormalize with `norm`, round,
    /// clamp to 0–255.
    pub fn to_images(&self, norm: &Normalization) -> Vec<RgbImage> {
        let [n, _, h, w] = self.shape;
        chw_to_images(self.values(), n, h, w, norm)
    }
}

impl<S: AsRef<[f32]> + AsMut<[f32]>> ImageBatch<S> {
    /// All values, mutable.
    pub fn values_mut(&mut self) -> &mut [f32] {
        self.data.as_mut()
    }

    /// The values of image `i`, mutable.
    pub fn image_mut(&mut self, i: usize) -> &mut [f32] {
        let per = self.per_image();
        &mut self.values_mut()[i * per..(i + 1) * per]
    }

    /// The images in order, mutable.
    pub fn images_mut(&mut self) -> impl Iterator<Item = &mut [f32]> {
        let per = self.per_image().max(1);
        self.values_mut().chunks_exact_mut(per)
    }

    /// Channel `c` of image `i`, mutable.
    pub fn channel_mut(&mut self, i: usize, c: usize) -> &mut [f32] {
        let plane = self.plane();
        &mut self.image_mut(i)[c * plane..(c + 1) * plane]
    }

    /// The channels of image `i` in order, mutable, with their index.
    pub fn channels_mut(&mut self, i: usize) -> impl Iterator<Item = (usize, &mut [f32])> {
        let plane = self.plane().max(1);
        self.image_mut(i).chunks_exact_mut(plane).enumerate()
    }
}

impl ImageBatch {
    /// A batch of `shape` whose `j`-th value (flat, image-major) is `f(j)`, made in order.
    pub fn from_fn(shape: [usize; 4], f: impl FnMut(usize) -> f32) -> Self {
        let len: usize = shape.iter().product();
        Self {
            data: (0..len).map(f).collect(),
            shape,
        }
    }

    /// The values of a `[B, C, H, W]` tensor (read back as `f32`).
    pub fn from_tensor(t: Tensor<4>) -> Self {
        let shape = t.dims();
        Self {
            data: tensor_values(t),
            shape,
        }
    }

    /// Same-size 8-bit images, normalized with `norm`; an error when their sizes differ.
    pub fn from_images(images: &[RgbImage], norm: &Normalization) -> Result<Self> {
        let (w, h) = images.first().map(|i| i.dimensions()).unwrap_or((0, 0));
        if let Some(bad) = images.iter().find(|i| i.dimensions() != (w, h)) {
            return Err(Error::Invalid(format!(
                "a batch needs images of one size: {w}×{h} and {}×{}",
                bad.width(),
                bad.height()
            )));
        }
        let (data, shape) = images_to_chw(images, norm);
        Ok(Self { data, shape })
    }

    /// The flat values, image-major.
    pub fn into_values(self) -> Vec<f32> {
        self.data
    }

    /// Appends the images of `other` (same `[C, H, W]`; an error otherwise).
    pub fn extend(&mut self, other: &ImageBatchRef) -> Result<()> {
        if other.shape[1..] != self.shape[1..] {
            return Err(Error::Invalid(format!(
                "cannot append images of shape {:?} to a batch of {:?}",
                &other.shape[1..],
                &self.shape[1..]
            )));
        }
        self.data.extend_from_slice(other.values());
        self.shape[0] += other.shape[0];
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_and_channels_index_nchw() {
        // Value = 100·image + 10·channel + position.
        let shape = [2, 3, 1, 2];
        let data: Vec<f32> = (0..2)
            .flat_map(|i| {
                (0..3).flat_map(move |c| (0..2).map(move |p| (100 * i + 10 * c + p) as f32))
            })
            .collect();
        let mut b = ImageBatch::new(data, shape).unwrap();
        assert_eq!(b.image(1)[0], 100.0);
        assert_eq!(b.channel(1, 2), &[120.0, 121.0]);
        let cs: Vec<usize> = b.channels(0).map(|(c, _)| c).collect();
        assert_eq!(cs, vec![0, 1, 2]);
        assert_eq!(b.slice(1..2).channel(0, 1), &[110.0, 111.0]);
        b.channel_mut(0, 1)[1] = -1.0;
        assert_eq!(b.values()[3], -1.0);
        assert_eq!(b.images().count(), 2);
        assert!(ImageBatch::new(vec![0f32; 5], shape).is_err());
    }

    #[test]
    fn tensors_and_images_round_trip() {
        let norm = Normalization::LITE;
        let img = RgbImage::from_fn(3, 2, |x, y| image::Rgb([x as u8 * 40, y as u8 * 90, 7]));
        let b = ImageBatch::from_images(&[img.clone(), img.clone()], &norm).unwrap();
        assert_eq!(b.shape(), [2, 3, 2, 3]);
        let back = ImageBatch::from_tensor(b.to_tensor(Precision::F32));
        assert_eq!(back, b);
        assert_eq!(b.to_images(&norm), vec![img.clone(), img.clone()]);
        let other = RgbImage::new(2, 2);
        assert!(ImageBatch::from_images(&[img, other], &norm).is_err());
    }
}
