//! How steady is this machine? Two probes, timed over and over on one core
//! for a minute, reported as the median of each 3-second window:
//! - `alu`: a chain of multiplications that never leaves the registers;
//! - `memory`: a random walk through 64 MiB (a single cycle through a
//!   shuffled array), one dependent read per step, as graph search does.
//!
//! If `alu` is steady and `memory` is not, the machine's caches and memory
//! are shared with other tenants, and anything memory-bound (ANN search is)
//! changes speed with their load. Built and run by `scripts/bench-machine`.

use std::hint::black_box;
use std::time::{Duration, Instant};

fn alu(steps: u64) -> u64 {
    let mut x = black_box(1u64);
    for _ in 0..steps {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        x ^= x >> 29;
    }
    x
}

fn memory(cycle: &[u32], steps: usize) -> u32 {
    let mut i = 0u32;
    for _ in 0..steps {
        i = cycle[i as usize];
    }
    i
}

/// A single cycle through `len` slots in random order (Sattolo's shuffle).
fn random_cycle(len: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..len as u32).collect();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..len).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % i as u64) as usize);
    }
    let mut cycle = vec![0u32; len];
    for w in 0..len {
        cycle[order[w] as usize] = order[(w + 1) % len];
    }
    cycle
}

fn median_micros(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2] * 1e6
}

fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let cycle = random_cycle(16 << 20);
    let start = Instant::now();
    let (mut alu_windows, mut memory_windows) = (Vec::new(), Vec::new());
    while start.elapsed() < Duration::from_secs(seconds) {
        let window = Instant::now();
        let (mut a, mut m) = (Vec::new(), Vec::new());
        while window.elapsed() < Duration::from_secs(3) {
            let t = Instant::now();
            black_box(alu(200_000));
            a.push(t.elapsed().as_secs_f64());
            let t = Instant::now();
            black_box(memory(&cycle, 20_000));
            m.push(t.elapsed().as_secs_f64());
        }
        alu_windows.push(median_micros(a));
        memory_windows.push(median_micros(m));
    }
    for (name, windows) in [("alu", &alu_windows), ("memory", &memory_windows)] {
        let lo = windows.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = windows.iter().copied().fold(0.0, f64::max);
        let list: Vec<String> = windows.iter().map(|w| format!("{w:.0}")).collect();
        println!(
            "{name:<6} µs per probe, median of each 3 s window: {}  (slowest / fastest window {:.2})",
            list.join(" "),
            hi / lo
        );
    }
}
