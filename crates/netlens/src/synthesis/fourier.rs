//! Lucid's decorrelated Fourier parametrization of an image (Olah et al., "Feature
//! Visualization", Distill 2017; Lucent's `param.image(fft=True, decorrelate=True)`).
//!
//! The variable is the real and imaginary half-spectrum of each colour channel, scaled by
//! `1 / max(|f|, 1/max(H, W))^decay` so that a unit step moves every frequency equally far in
//! perceptual terms; the image is
//!
//! ```text
//! x = sigmoid(C · irfft2(scale ⊙ spectrum, norm="ortho") / 4)
//! ```
//!
//! with `C` Lucid's colour-decorrelation matrix (the square root of ImageNet's colour
//! covariance, normalized), the sigmoid mapping into the valid range `[0, 1]`, and the result
//! finally normalized for the model. The inverse real DFT is written as matrix products with
//! precomputed cosine/sine bases, so burn differentiates it like any other op:
//!
//! ```text
//! Z[y, kx]  = Σ_ky X[ky, kx] · e^{2πi·ky·y/H}                     (complex, along H)
//! x[y, col] = Σ_kx c_kx · Re(Z[y, kx] · e^{2πi·kx·col/W}) / √(HW)   (c = 1 at DC and Nyquist, else 2)
//! ```
//!
//! which is exactly `torch.fft.irfftn(X, s=(H, W), norm="ortho")` (the imaginary parts of the
//! DC and Nyquist columns are ignored, as a C2R transform does).
//!
//! The variable has shape `[N, 3, 2H, K]` with `K = W/2 + 1`: rows `0..H` hold the real parts,
//! rows `H..2H` the imaginary parts.

use crate::batch::ImageBatch;
use crate::engine::Precision;
use crate::gradients::Parametrization;
use crate::imaging::Normalization;
use burn::tensor::activation::sigmoid;
use burn::tensor::Tensor;
use rand::rngs::StdRng;
use rand::Rng;
use rand_distr::StandardNormal;
use std::f64::consts::PI;

/// Lucid's `color_correlation_svd_sqrt`.
pub const COLOR_CORRELATION_SVD_SQRT: [[f32; 3]; 3] =
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]];

/// Lucid's "magic" divisor of the spatial image (reduces saturation).
const MAGIC: f64 = 4.0;

/// `numpy.fft.fftfreq(n)[k]`.
fn fftfreq(k: usize, n: usize) -> f64 {
    let k = if k < n.div_ceil(2) {
        k as f64
    } else {
        k as f64 - n as f64
    };
    k / n as f64
}

/// The decorrelated Fourier parametrization of `n` images of `h`×`w` pixels.
pub struct FourierImage {
    n: usize,
    h: usize,
    w: usize,
    k: usize,
    /// `[1, 1, 2H, K]`: spectrum scale (with the ortho norm and the magic divisor).
    scale: Tensor<4>,
    /// `[1, 2H, 2H]`: `[[cos, −sin], [sin, cos]]` of the inverse DFT along H.
    rows: Tensor<3>,
    /// `[1, K, W]`: `c_kx · cos(2π·kx·col/W)`.
    cos_w: Tensor<3>,
    /// `[1, K, W]`: `c_kx · sin(2π·kx·col/W)`.
    sin_w: Tensor<3>,
    /// `[1, 3, 3]`: colour decorrelation.
    color: Tensor<3>,
    /// `[1, 3, 1, 1]`: `255 / std`, and `−mean / std`: `[0, 1]` to the model's normalization.
    gain: Tensor<4>,
    offset: Tensor<4>,
    decorrelate: bool,
    /// The precision of the constants (the model's); θ is cast to it on entry.
    precision: Precision,
}

impl FourierImage {
    /// A parametrization with Lucid's frequency decay `decay_power` (1) and colour
    /// decorrelation (`decorrelate`, on in Lucid), normalized for the model with `norm`,
    /// computing in `p` (the model's precision).
    pub fn new(
        n: usize,
        h: usize,
        w: usize,
        decay_power: f32,
        decorrelate: bool,
        norm: &Normalization,
        p: Precision,
    ) -> Self {
        let k = w / 2 + 1;
        let mut scale = vec![0f32; 2 * h * k];
        let floor = 1.0 / h.max(w) as f64;
        let ortho = 1.0 / ((h * w) as f64).sqrt();
        for ky in 0..h {
            for kx in 0..k {
                let (fy, fx) = (fftfreq(ky, h), fftfreq(kx, w));
                let f = (fx * fx + fy * fy).sqrt().max(floor);
                let v = (ortho / MAGIC / f.powf(f64::from(decay_power))) as f32;
                scale[ky * k + kx] = v;
                scale[(h + ky) * k + kx] = v;
            }
        }
        let mut rows = vec![0f64; 4 * h * h];
        let m = 2 * h;
        for y in 0..h {
            for ky in 0..h {
                let a = 2.0 * PI * ((ky * y) % h) as f64 / h as f64;
                let (s, c) = a.sin_cos();
                rows[y * m + ky] = c; // Zr += cos·Xr
                rows[y * m + h + ky] = -s; // Zr −= sin·Xi
                rows[(h + y) * m + ky] = s; // Zi += sin·Xr
                rows[(h + y) * m + h + ky] = c; // Zi += cos·Xi
            }
        }
        let (mut cos_w, mut sin_w) = (vec![0f64; k * w], vec![0f64; k * w]);
        for kx in 0..k {
            let c_k = if kx == 0 || (w.is_multiple_of(2) && kx == w / 2) {
                1.0
            } else {
                2.0
            };
            for col in 0..w {
                let a = 2.0 * PI * ((kx * col) % w) as f64 / w as f64;
                cos_w[kx * w + col] = c_k * a.cos();
                sin_w[kx * w + col] = c_k * a.sin();
            }
        }
        let max_norm = (0..3)
            .map(|j| {
                (0..3)
                    .map(|i| COLOR_CORRELATION_SVD_SQRT[i][j].powi(2))
                    .sum::<f32>()
                    .sqrt()
            })
            .fold(0.0f32, f32::max);
        let color: Vec<f32> = COLOR_CORRELATION_SVD_SQRT
            .iter()
            .flatten()
            .map(|v| v / max_norm)
            .collect();
        Self {
            n,
            h,
            w,
            k,
            scale: p.tensor(scale, [1, 1, 2 * h, k]),
            rows: p.tensor_f64(rows, [1, 2 * h, 2 * h]),
            cos_w: p.tensor_f64(cos_w, [1, k, w]),
            sin_w: p.tensor_f64(sin_w, [1, k, w]),
            color: p.tensor(color, [1, 3, 3]),
            gain: p.tensor((0..3).map(|c| 255.0 / norm.std[c]).collect(), [1, 3, 1, 1]),
            offset: p.tensor(
                (0..3).map(|c| -norm.mean[c] / norm.std[c]).collect(),
                [1, 3, 1, 1],
            ),
            decorrelate,
            precision: p,
        }
    }

    /// Shape of the variable: `[N, 3, 2H, W/2 + 1]`.
    pub fn shape(&self) -> [usize; 4] {
        [self.n, 3, 2 * self.h, self.k]
    }

    /// Lucid's initial spectrum: normal noise of standard deviation `sd` (0.01).
    pub fn init(&self, sd: f32, rng: &mut StdRng) -> ImageBatch {
        ImageBatch::from_fn(self.shape(), |_| sd * rng.sample::<f32, _>(StandardNormal))
    }

    /// The spatial image before the colour transform and sigmoid: `irfft2(scale ⊙ X) / 4`,
    /// `[N, 3, H, W]`.
    pub fn spatial(&self, theta: Tensor<4>) -> Tensor<4> {
        let (n, h, w, k) = (self.n, self.h, self.w, self.k);
        let x = (self.precision.cast(theta) * self.scale.clone()).reshape([n * 3, 2 * h, k]);
        let z = self.rows.clone().matmul(x);
        let zr = z.clone().narrow(1, 0, h);
        let zi = z.narrow(1, h, h);
        let img = zr.matmul(self.cos_w.clone()) - zi.matmul(self.sin_w.clone());
        img.reshape([n, 3, h, w])
    }
}

impl Parametrization for FourierImage {
    fn image(&self, theta: Tensor<4>) -> Tensor<4> {
        let (n, h, w) = (self.n, self.h, self.w);
        let mut img = self.spatial(theta);
        if self.decorrelate {
            img = self
                .color
                .clone()
                .matmul(img.reshape([n, 3, h * w]))
                .reshape([n, 3, h, w]);
        }
        sigmoid(img) * self.gain.clone() + self.offset.clone()
    }
}
