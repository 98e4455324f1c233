//! IVF with 4-bit scalar codes and half-precision re-ranking, on the Rust
//! SDK's quantisers: the inverted-file method of faiss's `IVFx,SQ4` with a
//! refine stage (Jégou et al., "Product quantization for nearest neighbor
//! search", 2011, for the inverted file; faiss's documentation for the
//! scalar quantiser and `IndexRefine`).
//!
//! Build: k-means (a few Lloyd iterations from sampled points) gives
//! `lists` centroids; every point goes to its nearest centroid's list, with
//! its vector as 4-bit codes on one grid spanning the whole base (packed two
//! to a byte) and as halves. Search: the `probe` nearest lists (probe grows
//! with ef) are scanned with integer distances between the query's codes and
//! the points', the best `ef * refine` candidates are kept, and those are
//! re-ranked with the float query against their halves.
//!
//! Before building, the kernel checks the SDK's quantised distances against
//! plain integer arithmetic on every length up to 100 and every half's round
//! trip, and fails naming the first difference: that check runs on whichever
//! engine runs the kernel.

use crate::sdk::{
    ByteReader, ByteWriter, Kernel, Metric, Params, ScalarQuantizer, SplitMix64, f16_from_f32,
    f32_from_f16, l2_sq, l2_sq_f16, l2_sq_u4, l2_sq_u8, dot_i8, pack_u4,
};

pub struct Index {
    dim: usize,
    metric: Metric,
    quantizer: ScalarQuantizer,
    centroids: Vec<f32>,
    /// List `l` holds points `starts[l]..starts[l + 1]` of the arrays below.
    starts: Vec<u32>,
    ids: Vec<u32>,
    /// `(dim + 1) / 2` bytes per point.
    codes: Vec<u8>,
    /// `dim` halves per point.
    halves: Vec<u16>,
}

fn check_sdk() {
    let mut rng = SplitMix64::new(42);
    for n in 0..100 {
        let a: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
        let b: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
        let want: u32 = a.iter().zip(&b).map(|(x, y)| (*x as i32 - *y as i32).pow(2) as u32).sum();
        assert_eq!(l2_sq_u8(&a, &b), want, "l2_sq_u8 at length {n}");
        let (sa, sb): (Vec<i8>, Vec<i8>) =
            (a.iter().map(|&x| x as i8).collect(), b.iter().map(|&x| x as i8).collect());
        let want: i32 = sa.iter().zip(&sb).map(|(x, y)| *x as i32 * *y as i32).sum();
        assert_eq!(dot_i8(&sa, &sb), want, "dot_i8 at length {n}");
        let nibbles = |v: &[u8]| v.iter().flat_map(|x| [x & 15, x >> 4]).collect::<Vec<u8>>();
        let (na, nb) = (nibbles(&a), nibbles(&b));
        let want: u32 = na.iter().zip(&nb).map(|(x, y)| (*x as i32 - *y as i32).pow(2) as u32).sum();
        assert_eq!(l2_sq_u4(&a, &b), want, "l2_sq_u4 at length {n}");
        let q: Vec<f32> = (0..n).map(|_| rng.next_f32() - 0.5).collect();
        let h: Vec<u16> = (0..n).map(|_| f16_from_f32(rng.next_f32() - 0.5)).collect();
        let v: Vec<f32> = h.iter().map(|&x| f32_from_f16(x)).collect();
        let (got, want) = (l2_sq_f16(&q, &h), l2_sq(&q, &v));
        assert!((got - want).abs() <= 1e-5 * (1.0 + want), "l2_sq_f16 at length {n}: {got} vs {want}");
    }
    for h in 0..=u16::MAX {
        let x = f32_from_f16(h);
        assert!(x.is_nan() || f16_from_f32(x) == h, "half {h:#06x} does not round-trip");
    }
}

impl Index {
    fn code_bytes(&self) -> usize {
        self.dim.div_ceil(2)
    }

    fn encode(&self, v: &[f32], out: &mut Vec<u8>) {
        let mut codes = Vec::with_capacity(v.len());
        self.quantizer.encode(v, &mut codes);
        pack_u4(&codes, out);
    }

    fn nearest_lists(&self, v: &[f32], count: usize) -> Vec<usize> {
        let mut d: Vec<(f32, usize)> =
            self.centroids.chunks_exact(self.dim).map(|c| l2_sq(v, c)).zip(0..).collect();
        d.sort_by(|a, b| a.0.total_cmp(&b.0));
        d.into_iter().take(count).map(|(_, l)| l).collect()
    }
}

impl Kernel for Index {
    fn build(base: &[f32], dim: usize, metric: Metric, params: &Params) -> Self {
        check_sdk();
        let n = base.len() / dim;
        let lists = params.usize("lists", ((n as f64).sqrt() as usize).clamp(1, 1024)).min(n.max(1));
        let mut rng = SplitMix64::new(params.u64("seed", 7));
        let mut centroids: Vec<f32> = (0..lists)
            .flat_map(|_| base[rng.below(n as u64) as usize * dim..][..dim].to_vec())
            .collect();
        let mut assign = vec![0usize; n];
        for _ in 0..params.usize("iterations", 8) {
            for (p, a) in assign.iter_mut().enumerate() {
                let v = &base[p * dim..][..dim];
                *a = (0..lists)
                    .min_by(|&x, &y| {
                        l2_sq(v, &centroids[x * dim..][..dim]).total_cmp(&l2_sq(v, &centroids[y * dim..][..dim]))
                    })
                    .unwrap();
            }
            let mut sums = vec![0f64; lists * dim];
            let mut counts = vec![0usize; lists];
            for (p, &a) in assign.iter().enumerate() {
                counts[a] += 1;
                for (s, &x) in sums[a * dim..][..dim].iter_mut().zip(&base[p * dim..][..dim]) {
                    *s += x as f64;
                }
            }
            for l in 0..lists {
                if counts[l] > 0 {
                    for (c, s) in centroids[l * dim..][..dim].iter_mut().zip(&sums[l * dim..][..dim]) {
                        *c = (*s / counts[l] as f64) as f32;
                    }
                }
            }
        }
        let mut index = Index {
            dim,
            metric,
            quantizer: ScalarQuantizer::fit(base, 4),
            centroids,
            starts: Vec::new(),
            ids: Vec::with_capacity(n),
            codes: Vec::new(),
            halves: Vec::with_capacity(n * dim),
        };
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_by_key(|&p| assign[p as usize]);
        index.starts.push(0);
        let mut list = 0;
        for &p in &order {
            while assign[p as usize] > list {
                index.starts.push(index.ids.len() as u32);
                list += 1;
            }
            let v = &base[p as usize * dim..][..dim];
            index.ids.push(p);
            let mut codes = std::mem::take(&mut index.codes);
            index.encode(v, &mut codes);
            index.codes = codes;
            index.halves.extend(v.iter().map(|&x| f16_from_f32(x)));
        }
        while index.starts.len() <= lists {
            index.starts.push(index.ids.len() as u32);
        }
        index
    }

    fn save(&self, out: &mut Vec<u8>) {
        let mut w = ByteWriter::new(out);
        w.u32(self.dim as u32);
        w.u8(self.metric.to_u8());
        w.f32(self.quantizer.lo);
        w.f32(self.quantizer.step);
        w.u32(self.quantizer.levels);
        w.f32s(&self.centroids);
        w.u32s(&self.starts);
        w.u32s(&self.ids);
        w.bytes(&self.codes);
        let halves: Vec<u8> = self.halves.iter().flat_map(|h| h.to_le_bytes()).collect();
        w.bytes(&halves);
    }

    fn load(bytes: &[u8]) -> Self {
        let mut r = ByteReader::new(bytes);
        let dim = r.u32() as usize;
        let metric = Metric::from_u8(r.u8());
        let quantizer = ScalarQuantizer { lo: r.f32(), step: r.f32(), levels: r.u32() };
        Index {
            dim,
            metric,
            quantizer,
            centroids: r.f32s(),
            starts: r.u32s(),
            ids: r.u32s(),
            codes: r.bytes().to_vec(),
            halves: r.bytes().chunks_exact(2).map(|h| u16::from_le_bytes([h[0], h[1]])).collect(),
        }
    }

    fn search(&self, query: &[f32], k: usize, ef: usize, out: &mut Vec<u32>) {
        let lists = self.starts.len() - 1;
        let probe = (ef / 8).clamp(1, lists);
        let keep = (ef * 2).max(k);
        let mut q = Vec::with_capacity(self.code_bytes());
        self.encode(query, &mut q);
        let cb = self.code_bytes();
        let mut shortlist: Vec<(u32, u32)> = Vec::new();
        for l in self.nearest_lists(query, probe) {
            for slot in self.starts[l] as usize..self.starts[l + 1] as usize {
                shortlist.push((l2_sq_u4(&q, &self.codes[slot * cb..][..cb]), slot as u32));
            }
        }
        if shortlist.len() > keep {
            shortlist.select_nth_unstable(keep - 1);
            shortlist.truncate(keep);
        }
        let mut reranked: Vec<(f32, u32)> = shortlist
            .iter()
            .map(|&(_, slot)| {
                let h = &self.halves[slot as usize * self.dim..][..self.dim];
                let d = match self.metric {
                    Metric::Euclidean => l2_sq_f16(query, h),
                    Metric::Angular => 1.0 - crate::sdk::dot_f16(query, h),
                };
                (d, self.ids[slot as usize])
            })
            .collect();
        reranked.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        out.extend(reranked.iter().take(k).map(|&(_, id)| id));
    }
}
