//! Running a whole pass on the thread pool with the other threads kept awake on its work.
//!
//! A pass is hundreds of short parallel loops (SqueezeNet's forward + backward at batch 1:
//! about 14 ms in ~120 loops). Rayon puts a thread with nothing to steal to sleep after a
//! few dozen rounds of `yield`, so between two layers the second thread often fell asleep
//! and had to be woken by a futex call for the next one (in perf, scheduler and wake-up
//! paths were ~10 % of SqueezeNet's samples at batch 1, and two threads gave only 1.4× one
//! thread's speed). PyTorch's OpenMP threads spin between parallel regions instead. Here,
//! while a pass runs, every other pool thread runs a helper that keeps asking the pool for
//! work ([`rayon::yield_now`]: its own queue, then stealing) and stops when the pass ends,
//! so the threads are awake for each layer's loop and sleep only between passes.
//!
//! Which thread runs which task never changes a result: every kernel's bytes are the same
//! for any thread count and any split (their own tests check it).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};

/// Idle polls between two yields to the OS scheduler while a helper finds no work: short
/// enough to hand the core over quickly when a neighbour wants it, long enough that a
/// layer's loop is picked up within a microsecond or two.
const SPINS_PER_OS_YIELD: u32 = 64;

thread_local! {
    /// Passes and helpers running on this thread's stack (nested by work stealing).
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Counts a pass or helper on this thread's stack while it lives.
struct Depth;

impl Depth {
    fn enter() -> Self {
        DEPTH.with(|d| d.set(d.get() + 1));
        Depth
    }
}

impl Drop for Depth {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Sets the flag when dropped, so that the helpers stop even if the pass panics.
struct Done<'a>(&'a AtomicBool);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Runs `pass` on a pool thread (one wake-up of the caller per pass, not per layer), with
/// the pool's other threads polling for its work until it returns. A pass started inside
/// another (a thread that is already running one, or helping one) starts no helpers.
pub(crate) fn on_warm_pool<R: Send>(pass: impl FnOnce() -> R + Send) -> R {
    let done = AtomicBool::new(false);
    rayon::scope(|s| {
        let done = &done;
        let _stop = Done(done);
        if DEPTH.with(Cell::get) == 0 {
            for _ in 1..rayon::current_num_threads() {
                s.spawn(move |_| keep_warm(done));
            }
        }
        let _depth = Depth::enter();
        pass()
    })
}

/// Polls the pool for work until `done`. Only on a thread that runs no pass and no helper
/// of ours further down its stack: a helper never returns before its pass ends, so one
/// stacked above a pass (its own, popped while that pass waits inside a join, or another)
/// would keep that pass from ever ending.
fn keep_warm(done: &AtomicBool) {
    if DEPTH.with(Cell::get) > 0 {
        return;
    }
    let _depth = Depth::enter();
    let mut idle = 0u32;
    while !done.load(Ordering::Acquire) {
        match rayon::yield_now() {
            Some(rayon::Yield::Executed) => idle = 0,
            Some(rayon::Yield::Idle) => {
                idle = idle.wrapping_add(1);
                if idle.is_multiple_of(SPINS_PER_OS_YIELD) {
                    std::thread::yield_now();
                } else {
                    std::hint::spin_loop();
                }
            }
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::on_warm_pool;
    use crate::fast::kernels::testing::on_threads;
    use rayon::prelude::*;

    fn work(n: u64) -> u64 {
        (0..n).into_par_iter().map(|i| i * i % 7).sum()
    }

    #[test]
    fn a_pass_returns_its_result_on_any_thread_count() {
        let want: u64 = (0..10_000u64).map(|i| i * i % 7).sum();
        for threads in [1, 2, 3, 4] {
            assert_eq!(on_threads(threads, || on_warm_pool(|| work(10_000))), want);
        }
        // From outside any pool (the global one), too.
        assert_eq!(on_warm_pool(|| work(10_000)), want);
    }

    #[test]
    fn passes_nested_in_parallel_loops_and_in_each_other_end() {
        let want: u64 = (0..1000u64).map(|i| i * i % 7).sum();
        let got = on_threads(2, || {
            on_warm_pool(|| {
                (0..16)
                    .into_par_iter()
                    .map(|_| on_warm_pool(|| on_warm_pool(|| work(1000))))
                    .collect::<Vec<_>>()
            })
        });
        assert_eq!(got, vec![want; 16]);
        // Many passes started at once from inside a loop (the helpers of one pass can
        // be picked up by a thread that is running another).
        let got: Vec<u64> = on_threads(3, || {
            (0..32)
                .into_par_iter()
                .map(|i| on_warm_pool(|| work(100 + i)))
                .collect()
        });
        let want: Vec<u64> = (0..32u64)
            .map(|i| (0..100 + i).map(|j| j * j % 7).sum())
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_panicking_pass_stops_its_helpers_and_the_pool_still_works() {
        on_threads(2, || {
            let r = std::panic::catch_unwind(|| {
                on_warm_pool(|| {
                    work(1000);
                    panic!("a pass fails");
                })
            });
            assert!(r.is_err());
            assert_eq!(
                on_warm_pool(|| work(10)),
                (0..10u64).map(|i| i * i % 7).sum::<u64>()
            );
        });
    }
}
