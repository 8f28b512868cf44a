//! The packed-weight product: B packed in 32-column panels once, A in 12-row blocks per
//! call, a 12×32 AVX-512 micro-kernel, `KC` (env, default 256) terms per block.
use std::arch::x86_64::*;
#[cfg(pf0)] pub const PF: u32 = 0;
#[cfg(pf2)] pub const PF: u32 = 2;
#[cfg(pf3)] pub const PF: u32 = 3;
#[cfg(not(any(pf0, pf2, pf3)))] pub const PF: u32 = 1;
pub const NR: usize = 32;
pub const MR: usize = 12;
pub fn kcb() -> usize { std::env::var("KC").ok().map(|s| s.parse().unwrap()).unwrap_or(256) }

pub struct Packed { pub k: usize, pub n: usize, pub data: Vec<f32> }

/// B[k×n] with element (i,j) at b[i*rs + j*cs] packed as panels of NR columns, each k×NR.
pub fn pack_b(b: &[f32], k: usize, n: usize, rs: usize, cs: usize) -> Packed {
    let panels = n.div_ceil(NR);
    let mut data = vec![0f32; panels * k * NR];
    for p in 0..panels {
        for i in 0..k {
            for j in 0..NR.min(n - p * NR) {
                data[(p * k + i) * NR + j] = b[i * rs + (p * NR + j) * cs];
            }
        }
    }
    Packed { k, n, data }
}

/// A[m×k] row-major (rows lda apart) into row blocks of MR, each [k][MR], zero padded.
pub fn pack_a(a: &[f32], m: usize, k: usize, lda: usize, out: &mut Vec<f32>) {
    let blocks = m.div_ceil(MR);
    out.clear();
    out.resize(blocks * k * MR, 0.0);
    for rb in 0..blocks {
        let base = rb * k * MR;
        for r in 0..MR.min(m - rb * MR) {
            let row = &a[(rb * MR + r) * lda..][..k];
            for (i, &v) in row.iter().enumerate() {
                out[base + i * MR + r] = v;
            }
        }
    }
}

#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn kernel<const R: usize>(kc: usize, a: *const f32, lda: usize, ks: usize, b: *const f32, c: *mut f32, ldc: usize, add: bool, mask: u16, pf: *const f32) {
    let mut acc0 = [_mm512_setzero_ps(); R];
    let mut acc1 = [_mm512_setzero_ps(); R];
    for kk in 0..kc {
        let b0 = _mm512_loadu_ps(b.add(kk * NR));
        let b1 = _mm512_loadu_ps(b.add(kk * NR + 16));
        match PF { 1 => _mm_prefetch::<_MM_HINT_T0>(pf.add(kk * NR) as *const i8), 2 => _mm_prefetch::<_MM_HINT_T1>(pf.add(kk * NR) as *const i8), 3 => _mm_prefetch::<_MM_HINT_T2>(pf.add(kk * NR) as *const i8), _ => {} }
        for r in 0..R {
            let av = _mm512_set1_ps(*a.add(kk * ks + r * lda));
            acc0[r] = _mm512_fmadd_ps(av, b0, acc0[r]);
            acc1[r] = _mm512_fmadd_ps(av, b1, acc1[r]);
        }
    }
    let m1 = (mask >> 0) as u16; // low 16 columns mask
    let _ = m1;
    for r in 0..R {
        let p = c.add(r * ldc);
        if mask == 0xffff {
            let (mut x0, mut x1) = (acc0[r], acc1[r]);
            if add { x0 = _mm512_add_ps(x0, _mm512_loadu_ps(p)); x1 = _mm512_add_ps(x1, _mm512_loadu_ps(p.add(16))); }
            _mm512_storeu_ps(p, x0);
            _mm512_storeu_ps(p.add(16), x1);
        } else {
            // generic tail: mask covers columns as 32-bit count in `mask` low bits (cols < 32)
            let cols = mask as usize; // reuse: number of valid columns
            let k0: u16 = if cols >= 16 { 0xffff } else { ((1u32 << cols) - 1) as u16 };
            let k1: u16 = if cols <= 16 { 0 } else { ((1u32 << (cols - 16)) - 1) as u16 };
            let (mut x0, mut x1) = (acc0[r], acc1[r]);
            if add { x0 = _mm512_add_ps(x0, _mm512_maskz_loadu_ps(k0, p)); x1 = _mm512_add_ps(x1, _mm512_maskz_loadu_ps(k1, p.add(16))); }
            _mm512_mask_storeu_ps(p, k0, x0);
            _mm512_mask_storeu_ps(p.add(16), k1, x1);
        }
    }
}

/// C[m × cols of panels] (+)= Apacked · B, over panel range, rows range of blocks.
#[target_feature(enable = "avx512f")]
pub unsafe fn run(m: usize, ap: &[f32], packed_a: bool, lda: usize, b: &Packed, panels: std::ops::Range<usize>, c: *mut f32, ldc: usize, accumulate: bool) {
    let k = b.k;
    let blocks = m.div_ceil(MR);
    let mut k0 = 0;
    while k0 < k {
        let kc = kcb().min(k - k0);
        let add = accumulate || k0 > 0;
        for p in panels.clone() {
            let bp = b.data.as_ptr().add((p * k + k0) * NR);
            let pf = if p + 1 < panels.end { b.data.as_ptr().add(((p + 1) * k + k0) * NR) } else { bp };
            let cols = NR.min(b.n - p * NR);
            let mask = if cols == NR { 0xffff } else { cols as u16 };
            for rb in 0..blocks {
                let rows = MR.min(m - rb * MR);
                let (a, al, ks) = if packed_a { (ap.as_ptr().add(rb * k * MR + k0 * MR), 1, MR) } else { (ap.as_ptr().add(rb * MR * lda + k0), lda, 1) };
                let cp = c.add(rb * MR * ldc + p * NR);
                let pff = if rb == 0 { pf } else { bp };
                match rows {
                    12 => kernel::<12>(kc, a, al, ks, bp, cp, ldc, add, mask, pff),
                    11 => kernel::<11>(kc, a, al, ks, bp, cp, ldc, add, mask, pff),
                    10 => kernel::<10>(kc, a, al, ks, bp, cp, ldc, add, mask, pff),
                    9 => kernel::<9>(kc, a, al, ks, bp, cp, ldc, add, mask, pff),
                    8 => kernel::<8>(kc, a, al, ks, bp, cp, ldc, add, mask, pff),
                    7 => kernel::<7>(kc, a, al, ks, bp, cp, ldc, add, mask, pff),
                    6 => kernel::<6>(kc, a, al, ks, bp, cp, ldc, add, mask, pff),
                    5 => kernel::<5>(kc, a, al, ks, bp, cp, ldc, add, mask, pff),
                    4 => kernel::<4>(kc, a, al, ks, bp, cp, ldc, add, mask, pff),
                    3 => kernel::<3>(kc, a, al, ks, bp, cp, ldc, add, mask, pff),
                    2 => kernel::<2>(kc, a, al, ks, bp, cp, ldc, add, mask, pff),
                    _ => kernel::<1>(kc, a, al, ks, bp, cp, ldc, add, mask, pff),
                }
            }
        }
        k0 += kc;
    }
}
