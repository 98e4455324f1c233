//! Brute-force ground truth on fashion-mnist (60,000 × 784 base, 10,000
//! queries, depth 100), from Debian's dataset-fashion-mnist files:
//!
//!     cargo bench --bench ground_truth
//!
//! Prints the time of each of three runs and checks they agree.

use std::path::Path;
use std::time::Instant;

use anneval::dataset::{Metric, ground_truth, import};

fn main() {
    let dir = Path::new(import::FASHION_MNIST_DIR);
    let data = import::fashion_mnist(dir, &|_| {}).unwrap_or_else(|e| panic!("{e:#}"));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut times = Vec::new();
    for run in 1..=3 {
        let start = Instant::now();
        let gt = ground_truth::compute(
            &data.train,
            &data.test,
            data.dim,
            Metric::Euclidean,
            100,
            &|_| {},
        );
        let seconds = start.elapsed().as_secs_f64();
        assert_eq!(
            gt.neighbors, data.neighbors,
            "run {run} disagrees with the first"
        );
        println!(
            "ground truth, fashion-mnist 60000x784, 10000 queries, depth 100, {threads} threads: run {run}: {seconds:.2} s"
        );
        times.push(seconds);
    }
    times.sort_by(f64::total_cmp);
    println!("best {:.2} s, median {:.2} s", times[0], times[1]);
}
