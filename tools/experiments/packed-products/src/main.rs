//! Session 35 experiment (not part of the build): the ViT-B/16 products at 197 and 1576 rows
//! by the gemm crate (as `fast/vit/products.rs` calls it) against a hand-written AVX-512
//! 12×32 micro-kernel over weights packed once, with the weights cold (600 MB of copies,
//! cycled) or hot; `HOT=1` the micro-kernel on L2-resident data, `HC=1` hot against cold
//! on one thread. Build with `--cfg pfN` for the prefetch of the next panel (0 none, 1 T0,
//! 2 T1, 3 T2). Results in notes/issue-18.md, session 35.
use gemm::Parallelism;
use rayon::prelude::*;
use std::time::Instant;
mod packed;

fn rnd(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..n).map(|_| { s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407); ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5 }).collect()
}

unsafe fn blocked(m: usize, n: usize, k: usize, dst: *mut f32, a: *const f32, b: *const f32) {
    let width = n.div_ceil(4).next_multiple_of(16);
    let blocks = n.div_ceil(width);
    let d = dst as usize; let bb = b as usize; let aa = a as usize;
    (0..blocks).into_par_iter().for_each(|blk| {
        let (c0, cols) = (blk * width, width.min(n - blk * width));
        gemm::gemm(m, cols, k, (d as *mut f32).add(c0), 1, n as isize, false,
            aa as *const f32, 1, k as isize, (bb as *const f32).add(c0), 1, n as isize,
            1.0, 1.0, false, false, false, Parallelism::None);
    });
}

fn main() {
    if std::env::var("HC").is_ok() { hotcold(); return; }
    if std::env::var("HOT").is_ok() { hot(); return; }
    let m: usize = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(197);
    for &(k, n) in &[(768usize, 2304usize), (768, 768), (768, 3072), (3072, 768)] {
        let copies = (600_000_000 / (k * n * 4)).max(2);
        let ws: Vec<Vec<f32>> = (0..copies).map(|i| rnd(k * n, i as u64)).collect();
        let a = rnd(m * k, 99);
        let mut c = vec![0f32; m * n];
        let flops = 2.0 * (m * n * k) as f64;
        let pk: Vec<packed::Packed> = ws.iter().map(|w| packed::pack_b(w, k, n, n, 1)).collect();
        let mut ap = Vec::new();
        let mut c2 = vec![0f32; m * n];
        let panels = n.div_ceil(32);
        let chunk = std::env::var("CHUNK").ok().map(|s| s.parse().unwrap()).unwrap_or(4usize);
        let go = |b: &packed::Packed, ap: &mut Vec<f32>, c2: &mut [f32]| {
            let pa = std::env::var("NOPACK").is_err();
            if pa { packed::pack_a(&a, m, k, k, ap); } else { ap.clear(); ap.extend_from_slice(&a); }
            let cp = c2.as_mut_ptr() as usize;
            let apr = &*ap;
            (0..panels.div_ceil(chunk)).into_par_iter().for_each(|t| unsafe {
                packed::run(m, apr, pa, k, b, t * chunk..((t + 1) * chunk).min(panels), cp as *mut f32, n, false)
            });
        };
        let (mut tg, mut tp) = (Vec::new(), Vec::new());
        for round in 0..3 * copies {
            let i = round % copies;
            let t = Instant::now();
            unsafe { blocked(m, n, k, c.as_mut_ptr(), a.as_ptr(), ws[i].as_ptr()) }
            tg.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            go(&pk[(i + copies / 2) % copies], &mut ap, &mut c2);
            tp.push(t.elapsed().as_secs_f64());
        }
        tg.sort_by(f64::total_cmp); tp.sort_by(f64::total_cmp);
        let gf = |v: &[f64], q: f64| flops / v[((v.len() - 1) as f64 * q) as usize] / 1e9;
        println!("m {m} k {k} n {n}: gemm best {:.0} med {:.0} | packed best {:.0} med {:.0}", gf(&tg, 0.0), gf(&tg, 0.5), gf(&tp, 0.0), gf(&tp, 0.5));
    }
}

#[allow(dead_code)]
pub fn hot() {
    for &(m, k, n) in &[(192usize, 256usize, 64usize), (192, 256, 256), (204, 768, 128)] {
        let a = rnd(m * k, 1);
        let b = rnd(k * n, 2);
        let pk = packed::pack_b(&b, k, n, n, 1);
        let mut ap = Vec::new();
        packed::pack_a(&a, m, k, k, &mut ap);
        let mut c = vec![0f32; m * n];
        let reps = 2000;
        let t = Instant::now();
        for _ in 0..reps { unsafe { packed::run(m, &ap, true, k, &pk, 0..n / 32, c.as_mut_ptr(), n, false) } }
        let gf = 2.0 * (m * n * k * reps) as f64 / t.elapsed().as_secs_f64() / 1e9;
        println!("hot 1 thread m {m} k {k} n {n}: {gf:.0} GF/s");
    }
}

#[allow(dead_code)]
pub fn hotcold() {
    // single thread: A 197x768 packed; hot B 768x128 (393 KB, L2); cold B from 600 MB of copies
    let (m, k) = (197usize, 768usize);
    let a = rnd(m * k, 1);
    let mut ap = Vec::new();
    packed::pack_a(&a, m, k, k, &mut ap);
    let hotb = packed::pack_b(&rnd(k * 128, 2), k, 128, 128, 1);
    let n = 2304;
    let copies = 84;
    let cold: Vec<packed::Packed> = (0..copies).map(|i| packed::pack_b(&rnd(k * n, i as u64 + 5), k, n, n, 1)).collect();
    let mut c = vec![0f32; m * n];
    let (mut th, mut tc) = (Vec::new(), Vec::new());
    for round in 0..copies * 2 {
        let t = Instant::now();
        for _ in 0..18 { unsafe { packed::run(m, &ap, true, k, &hotb, 0..4, c.as_mut_ptr(), n, false) } }
        th.push(2.0 * (m * 128 * 18 * k) as f64 / t.elapsed().as_secs_f64() / 1e9);
        let t = Instant::now();
        unsafe { packed::run(m, &ap, true, k, &cold[round % copies], 0..72, c.as_mut_ptr(), n, false) }
        tc.push(2.0 * (m * n * k) as f64 / t.elapsed().as_secs_f64() / 1e9);
    }
    th.sort_by(f64::total_cmp); tc.sort_by(f64::total_cmp);
    let q = |v: &[f64], f: f64| v[((v.len() - 1) as f64 * f) as usize];
    println!("1 thread, 197x768 by 768xN: hot B (N=128) GF/s q10 {:.0} med {:.0} q90 {:.0} | cold B (N=2304) q10 {:.0} med {:.0} q90 {:.0}",
        q(&th, 0.1), q(&th, 0.5), q(&th, 0.9), q(&tc, 0.1), q(&tc, 0.5), q(&tc, 0.9));
}
