//! Variant: IVF-Flat. k-means partitions the base set into about sqrt(n)
//! lists; a query scans the `nprobe` lists whose centroids are nearest, with
//! `nprobe = max(1, ef / 8)`. A different algorithm from the graph kernels:
//! cheap to build, memory-bound to search.
//!
//! Parameters: `nlist` (default sqrt(n)), `train` (points sampled for
//! k-means, default 20,000), `iterations` (default 8), `seed`.

use std::cell::RefCell;

use crate::sdk::*;

pub struct Index {
    dim: usize,
    metric: Metric,
    centroids: Vec<f32>,
    /// List `l` holds ids `ids[starts[l]..starts[l + 1]]`, and their vectors
    /// in the same order in `vectors`.
    starts: Vec<u32>,
    ids: Vec<u32>,
    vectors: Vec<f32>,
    scratch: RefCell<(CandidatePool, CandidatePool)>,
}

fn nearest(centroids: &[f32], dim: usize, v: &[f32], metric: Metric) -> usize {
    let mut best = (f32::INFINITY, 0);
    for (c, centroid) in centroids.chunks_exact(dim).enumerate() {
        let d = metric.distance(v, centroid);
        if d < best.0 {
            best = (d, c);
        }
    }
    best.1
}

impl Kernel for Index {
    fn build(base: &[f32], dim: usize, metric: Metric, params: &Params) -> Self {
        let n = base.len() / dim;
        let nlist = params.usize("nlist", (n as f64).sqrt().round() as usize).clamp(1, n);
        let mut rng = SplitMix64::new(params.u64("seed", 7));
        let sample: Vec<usize> = if n <= params.usize("train", 20_000) {
            (0..n).collect()
        } else {
            (0..params.usize("train", 20_000))
                .map(|_| rng.below(n as u64) as usize)
                .collect()
        };
        // Lloyd's k-means from distinct random sample points.
        let mut centroids: Vec<f32> = (0..nlist)
            .flat_map(|c| {
                let i = sample[(c * sample.len()) / nlist];
                base[i * dim..(i + 1) * dim].to_vec()
            })
            .collect();
        for _ in 0..params.usize("iterations", 8) {
            let mut sums = vec![0f64; nlist * dim];
            let mut counts = vec![0usize; nlist];
            for &i in &sample {
                let v = &base[i * dim..(i + 1) * dim];
                let c = nearest(&centroids, dim, v, metric);
                counts[c] += 1;
                for (s, x) in sums[c * dim..(c + 1) * dim].iter_mut().zip(v) {
                    *s += *x as f64;
                }
            }
            for c in 0..nlist {
                if counts[c] > 0 {
                    for j in 0..dim {
                        centroids[c * dim + j] = (sums[c * dim + j] / counts[c] as f64) as f32;
                    }
                }
            }
        }
        let assignment: Vec<usize> = base
            .chunks_exact(dim)
            .map(|v| nearest(&centroids, dim, v, metric))
            .collect();
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_by_key(|&i| assignment[i as usize]);
        let mut starts = vec![0u32; nlist + 1];
        for &c in &assignment {
            starts[c + 1] += 1;
        }
        for l in 0..nlist {
            starts[l + 1] += starts[l];
        }
        let vectors = order
            .iter()
            .flat_map(|&i| base[i as usize * dim..(i as usize + 1) * dim].to_vec())
            .collect();
        Index {
            dim,
            metric,
            centroids,
            starts,
            ids: order,
            vectors,
            scratch: RefCell::new((CandidatePool::new(1), CandidatePool::new(1))),
        }
    }

    fn save(&self, out: &mut Vec<u8>) {
        let mut w = ByteWriter::new(out);
        w.u64(self.dim as u64);
        w.u8(self.metric.to_u8());
        w.f32s(&self.centroids);
        w.u32s(&self.starts);
        w.u32s(&self.ids);
        w.f32s(&self.vectors);
    }

    fn load(bytes: &[u8]) -> Self {
        let mut r = ByteReader::new(bytes);
        Index {
            dim: r.u64() as usize,
            metric: Metric::from_u8(r.u8()),
            centroids: r.f32s(),
            starts: r.u32s(),
            ids: r.u32s(),
            vectors: r.f32s(),
            scratch: RefCell::new((CandidatePool::new(1), CandidatePool::new(1))),
        }
    }

    fn search(&self, query: &[f32], k: usize, ef: usize, out: &mut Vec<u32>) {
        let nlist = self.starts.len() - 1;
        let nprobe = (ef / 8).clamp(1, nlist);
        let mut scratch = self.scratch.borrow_mut();
        let (lists, results) = &mut *scratch;
        lists.reset(nlist);
        for (c, centroid) in self.centroids.chunks_exact(self.dim).enumerate() {
            lists.insert(c as u32, self.metric.distance(query, centroid));
        }
        results.reset(k);
        // The nprobe nearest lists, and more while fewer than k points were seen.
        for (probed, list) in lists.iter().enumerate() {
            if probed >= nprobe && results.is_full() {
                break;
            }
            let (a, b) = (
                self.starts[list.id as usize] as usize,
                self.starts[list.id as usize + 1] as usize,
            );
            for i in a..b {
                let v = &self.vectors[i * self.dim..(i + 1) * self.dim];
                results.insert(self.ids[i], self.metric.distance(query, v));
            }
        }
        out.extend(results.iter().map(|n| n.id));
    }
}
