//! The machine's single-precision arithmetic peak, measured rather than looked up: every thread
//! of the engine's pool runs twelve independent chains of fused multiply-adds in the widest
//! vector registers the CPU has (AVX-512, else AVX2 + FMA), long enough to hide their latency,
//! all at once; peak = multiply-adds × 2 / wall time. A spec-sheet figure (cores × clock × FMA
//! units × lanes × 2) would miss turbo, power limits and SMT siblings that share a core;
//! this is what the same threads can really reach, so a pass's FLOP rate divided by it is its
//! fraction of peak. (CPUs without FMA get a plain multiply-add loop, labelled so.)

use std::hint::black_box;
use std::time::Instant;

/// Independent accumulator chains: enough to cover an FMA's latency (4 cycles) on two pipes.
const CHAINS: usize = 12;

/// A measured peak.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Peak {
    /// Floating-point operations per second, in units of 10⁹, over every thread.
    pub gflops: f64,
    /// The instruction set the loop ran on (`avx512`, `avx2+fma`, `scalar`).
    pub isa: &'static str,
    pub threads: usize,
}

/// Runs `iters` rounds of the fused multiply-add loop; returns the operations done.
type Kernel = fn(u64) -> f64;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::CHAINS;
    use std::arch::x86_64::*;
    use std::hint::black_box;

    #[target_feature(enable = "avx512f")]
    unsafe fn avx512(iters: u64) -> f32 {
        // Opaque values, so that the compiler cannot fold the chains (1 · 0.9999 + 1e-4 is
        // 1 again in float32: a constant chain would be a loop-invariant one).
        let (a, b) = black_box((_mm512_set1_ps(0.999_9), _mm512_set1_ps(1e-4)));
        let mut acc = black_box([_mm512_set1_ps(0.5); CHAINS]);
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm512_fmadd_ps(*v, a, b);
            }
        }
        acc.iter().map(|&v| _mm512_reduce_add_ps(v)).sum()
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2(iters: u64) -> f32 {
        let (a, b) = black_box((_mm256_set1_ps(0.999_9), _mm256_set1_ps(1e-4)));
        let mut acc = black_box([_mm256_set1_ps(0.5); CHAINS]);
        for _ in 0..iters {
            for v in acc.iter_mut() {
                *v = _mm256_fmadd_ps(*v, a, b);
            }
        }
        let mut lanes = [0f32; 8];
        let mut s = 0.0;
        for v in acc {
            _mm256_storeu_ps(lanes.as_mut_ptr(), v);
            s += lanes.iter().sum::<f32>();
        }
        s
    }

    pub fn avx512_kernel(iters: u64) -> f64 {
        // SAFETY: chosen only when the CPU reports AVX-512F (see `kernel`).
        std::hint::black_box(unsafe { avx512(iters) });
        (iters * CHAINS as u64 * 16 * 2) as f64
    }

    pub fn avx2_kernel(iters: u64) -> f64 {
        // SAFETY: chosen only when the CPU reports AVX2 and FMA (see `kernel`).
        std::hint::black_box(unsafe { avx2(iters) });
        (iters * CHAINS as u64 * 8 * 2) as f64
    }
}

fn scalar_kernel(iters: u64) -> f64 {
    let (a, b) = (black_box(0.999_9f32), black_box(1e-4f32));
    let mut acc = black_box([0.5f32; CHAINS]);
    for _ in 0..iters {
        for v in acc.iter_mut() {
            *v = *v * a + b;
        }
    }
    black_box(acc);
    (iters * CHAINS as u64 * 2) as f64
}

/// The widest loop this CPU runs, and its name.
fn kernel() -> (Kernel, &'static str) {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            return (x86::avx512_kernel, "avx512");
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            return (x86::avx2_kernel, "avx2+fma");
        }
    }
    (scalar_kernel, "scalar")
}

/// Measures the peak on every thread of the engine's pool for about `seconds` (at least
/// 0.05 s).
pub fn measure_peak(seconds: f64) -> Peak {
    let (run, isa) = kernel();
    // Calibrate on one thread: rounds per second.
    let probe = 200_000u64;
    let t0 = Instant::now();
    run(probe);
    let per_s = probe as f64 / t0.elapsed().as_secs_f64().max(1e-9);
    let iters = ((per_s * seconds.max(0.05)) as u64).max(probe);
    let t0 = Instant::now();
    let ops: f64 = rayon::broadcast(|_| run(iters)).into_iter().sum();
    let wall = t0.elapsed().as_secs_f64().max(1e-9);
    Peak {
        gflops: ops / wall / 1e9,
        isa,
        threads: rayon::current_num_threads(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loop_counts_its_operations_and_the_peak_is_positive() {
        assert_eq!(scalar_kernel(10), (10 * CHAINS * 2) as f64);
        let (run, _) = kernel();
        assert!(run(10) >= (10 * CHAINS * 2) as f64);
        let p = measure_peak(0.05);
        assert!(p.gflops > 0.0 && p.gflops.is_finite(), "{p:?}");
    }
}
