#!/usr/bin/env python3
"""Reference for netlens' decorrelated Fourier parametrization (synthesis/fourier.rs).

    python3 tools/reference/synthesis_fourier.py

Writes crates/netlens/tests/fixtures/synthesis/fourier_<H>x<W>.npz-like pairs of .npy files:
  fourier_<H>x<W>.spectrum.npy  float64 [1,3,H,W//2+1,2]  Lucent's spectrum variable (seeded)
  fourier_<H>x<W>.rgb.npy       float64 [1,3,H,W]        to_valid_rgb(fft_image, decorrelate)
for two small sizes (one with an odd width). The formulas are Lucent's
(lucent/optvis/param/spatial.py `fft_image`, color.py `to_valid_rgb`), in float64.
"""

from pathlib import Path

import numpy as np
import torch

OUT = Path(__file__).resolve().parents[2] / "crates" / "netlens" / "tests" / "fixtures" / "synthesis"

COLOR = np.asarray([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
COLOR_N = COLOR / np.max(np.linalg.norm(COLOR, axis=0))


def rfft2d_freqs(h, w):
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[: w // 2 + 1]  # Lucent keeps w//2+2 for odd w; irfftn ignores the extra
    return np.sqrt(fx * fx + fy * fy)


def fft_rgb(spectrum, h, w, decay_power=1.0):
    freqs = rfft2d_freqs(h, w)
    scale = 1.0 / np.maximum(freqs, 1.0 / max(w, h)) ** decay_power
    scale = torch.tensor(scale)[None, None, ..., None]
    x = torch.view_as_complex((scale * spectrum).contiguous())
    img = torch.fft.irfftn(x, s=(h, w), norm="ortho") / 4.0
    img = torch.matmul(img.permute(0, 2, 3, 1), torch.tensor(COLOR_N.T)).permute(0, 3, 1, 2)
    return torch.sigmoid(img)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    for h, w in [(12, 16), (10, 13)]:
        spec = torch.randn(1, 3, h, w // 2 + 1, 2, generator=g, dtype=torch.float64)
        rgb = fft_rgb(spec, h, w)
        np.save(OUT / f"fourier_{h}x{w}.spectrum.npy", spec.numpy())
        np.save(OUT / f"fourier_{h}x{w}.rgb.npy", rgb.numpy())
        print(f"{h}x{w}: rgb range {float(rgb.min()):.4f}..{float(rgb.max()):.4f}")


if __name__ == "__main__":
    main()
