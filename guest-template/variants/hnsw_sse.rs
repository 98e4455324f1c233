//! Variant: the reference HNSW with its distances in 128-bit registers
//! natively (SSE with FMA: four floats per operation where the reference's AVX2
//! takes eight); in the sandbox, whose SIMD is 128-bit, it is the reference
//! itself. With the reference, the pair that shows the one gap the sandbox
//! cannot close: vector width (BENCHMARKS.md, "Pairs of variants").

use std::cell::RefCell;

use crate::sdk::{
    ByteReader, ByteWriter, CandidatePool, Kernel, Metric, Neighbor, Params, SplitMix64,
    VisitedSet, padded_dim, prefetch,
};

const MAGIC: u32 = u32::from_le_bytes(*b"HNSW");
const FORMAT: u32 = 1;
/// Levels above this are never drawn in practice (p < m^-16); capping keeps a
/// pathological seed from allocating absurd upper layers.
const MAX_LEVEL: usize = 16;

pub struct Index {
    dim: usize,
    stride: usize,
    metric: Metric,
    m: usize,
    ef_construction: usize,
    n: usize,
    vectors: Vec<f32>,
    links0: Vec<u32>,
    levels: Vec<u8>,
    upper_offsets: Vec<u32>,
    upper: Vec<u32>,
    entry: u32,
    max_level: usize,
    scratch: RefCell<Scratch>,
}

/// Per-search working memory, reused across queries.
struct Scratch {
    search: Search,
    query: Vec<f32>,
}

/// What a best-first search at one level works with.
struct Search {
    visited: VisitedSet,
    pool: CandidatePool,
    /// The unvisited neighbours of the node being expanded.
    fresh: Vec<u32>,
}

impl Scratch {
    fn new(points: usize, stride: usize) -> Self {
        Scratch {
            search: Search {
                visited: VisitedSet::new(points),
                pool: CandidatePool::new(1),
                fresh: Vec::new(),
            },
            query: vec![0.0; stride],
        }
    }
}

impl Index {
    #[inline(always)]
    fn vector(&self, id: u32) -> &[f32] {
        &self.vectors[id as usize * self.stride..][..self.stride]
    }

    #[inline(always)]
    fn distance_to(&self, query: &[f32], id: u32) -> f32 {
        narrow::distance(self.metric, query, self.vector(id))
    }

    #[inline(always)]
    fn slots0(&self) -> usize {
        1 + 2 * self.m
    }

    #[inline(always)]
    fn slots_upper(&self) -> usize {
        1 + self.m
    }

    /// Where `id`'s adjacency at `level` starts (count first, then ids).
    #[inline(always)]
    fn adjacency_start(&self, id: u32, level: usize) -> usize {
        if level == 0 {
            id as usize * self.slots0()
        } else {
            self.upper_offsets[id as usize] as usize + (level - 1) * self.slots_upper()
        }
    }

    #[inline(always)]
    fn neighbors(&self, id: u32, level: usize) -> &[u32] {
        let start = self.adjacency_start(id, level);
        let table = if level == 0 {
            &self.links0
        } else {
            &self.upper
        };
        let count = table[start] as usize;
        &table[start + 1..start + 1 + count]
    }

    fn set_neighbors(&mut self, id: u32, level: usize, ids: impl ExactSizeIterator<Item = u32>) {
        let start = self.adjacency_start(id, level);
        let table = if level == 0 {
            &mut self.links0
        } else {
            &mut self.upper
        };
        table[start] = ids.len() as u32;
        for (slot, nb) in table[start + 1..].iter_mut().zip(ids) {
            *slot = nb;
        }
    }

    fn max_neighbors(&self, level: usize) -> usize {
        if level == 0 { 2 * self.m } else { self.m }
    }

    /// Greedy walk at one level: move to the nearest neighbour until none is
    /// nearer.
    fn greedy(&self, query: &[f32], mut cur: Neighbor, level: usize) -> Neighbor {
        loop {
            let mut moved = false;
            for &nb in self.neighbors(cur.id, level) {
                let dist = self.distance_to(query, nb);
                if dist < cur.dist {
                    cur = Neighbor { id: nb, dist };
                    moved = true;
                }
            }
            if !moved {
                return cur;
            }
        }
    }

    /// Best-first search at one level from `entry`; the best `ef` points end
    /// up in `search.pool`, nearest first. Memory is what limits a graph
    /// search: the unvisited neighbours of a node are gathered first, the
    /// first cache line of each one's vector requested as it is found (the
    /// hardware prefetcher follows the rest of a vector once it is read),
    /// and the next node's adjacency before this one's distances run, so
    /// that all those misses are in flight together. One line per vector
    /// keeps the burst within what the CPU tracks at once, which matters in
    /// WebAssembly, where a prefetch is a load that must retire.
    fn search_level(
        &self,
        query: &[f32],
        entry: Neighbor,
        level: usize,
        ef: usize,
        search: &mut Search,
    ) {
        let Search {
            visited,
            pool,
            fresh,
        } = search;
        visited.clear();
        pool.reset(ef);
        visited.insert(entry.id);
        pool.insert(entry.id, entry.dist);
        while pool.has_next() {
            let cur = pool.pop_next().id;
            fresh.clear();
            for &nb in self.neighbors(cur, level) {
                if visited.insert(nb) {
                    fresh.push(nb);
                    prefetch(self.vector(nb).as_ptr());
                }
            }
            if let Some(next) = pool.peek_next() {
                prefetch(self.neighbors(next, level).as_ptr());
            }
            for &nb in fresh.iter() {
                let dist = self.distance_to(query, nb);
                pool.insert(nb, dist);
            }
        }
    }

    /// The heuristic of the HNSW paper (algorithm 4): walk the candidates
    /// nearest first and keep one only if it is nearer to the base point than
    /// to every point already kept. Spreads links across directions.
    fn select_neighbors(&self, sorted: &[Neighbor], max: usize) -> Vec<Neighbor> {
        if sorted.len() <= max {
            return sorted.to_vec();
        }
        let mut kept: Vec<Neighbor> = Vec::with_capacity(max);
        for &cand in sorted {
            if kept.len() == max {
                break;
            }
            let cv = self.vector(cand.id);
            if kept.iter().all(|r| self.distance_to(cv, r.id) > cand.dist) {
                kept.push(cand);
            }
        }
        kept
    }

    /// Adds `new` to `node`'s links at `level`, pruning with the heuristic
    /// when the list is full.
    fn link(&mut self, node: u32, new: u32, level: usize) {
        let max = self.max_neighbors(level);
        let current = self.neighbors(node, level);
        if current.len() < max {
            let start = self.adjacency_start(node, level);
            let table = if level == 0 {
                &mut self.links0
            } else {
                &mut self.upper
            };
            let count = table[start] as usize;
            table[start + 1 + count] = new;
            table[start] += 1;
            return;
        }
        let base = self.vector(node);
        let mut candidates: Vec<Neighbor> = current
            .iter()
            .chain(std::iter::once(&new))
            .map(|&id| Neighbor {
                id,
                dist: self.distance_to(base, id),
            })
            .collect();
        candidates.sort_by(|a, b| a.dist.total_cmp(&b.dist));
        let kept = self.select_neighbors(&candidates, max);
        self.set_neighbors(node, level, kept.into_iter().map(|n| n.id));
    }

    fn insert(&mut self, id: u32, scratch: &mut Scratch) {
        let mut query = std::mem::take(&mut scratch.query);
        query.copy_from_slice(self.vector(id));
        let level = self.levels[id as usize] as usize;
        let mut cur = Neighbor {
            id: self.entry,
            dist: self.distance_to(&query, self.entry),
        };
        for l in (level + 1..=self.max_level).rev() {
            cur = self.greedy(&query, cur, l);
        }
        for l in (0..=level.min(self.max_level)).rev() {
            self.search_level(&query, cur, l, self.ef_construction, &mut scratch.search);
            let candidates: Vec<Neighbor> = scratch.search.pool.iter().collect();
            let selected = self.select_neighbors(&candidates, self.m);
            self.set_neighbors(id, l, selected.iter().map(|n| n.id));
            for nb in &selected {
                self.link(nb.id, id, l);
            }
            cur = candidates[0];
        }
        if level > self.max_level {
            self.max_level = level;
            self.entry = id;
        }
        scratch.query = query;
    }
}

impl Kernel for Index {
    fn build(base: &[f32], dim: usize, metric: Metric, params: &Params) -> Self {
        assert!(dim > 0, "dimension must be positive");
        let n = base.len() / dim;
        assert!(n > 0, "cannot index an empty base set");
        assert!(n < 1 << 31, "too many points for 31-bit ids");
        let m = params.usize("m", 16).max(2);
        let ef_construction = params.usize("ef_construction", 200).max(m);
        let mut rng = SplitMix64::new(params.u64("seed", 100));

        let stride = padded_dim(dim);
        let mut vectors = vec![0.0f32; n * stride];
        for (dst, src) in vectors.chunks_exact_mut(stride).zip(base.chunks_exact(dim)) {
            dst[..dim].copy_from_slice(src);
        }

        // Level draw as in the paper: floor(-ln(U) / ln(m)).
        let level_mult = 1.0 / (m as f64).ln();
        let levels: Vec<u8> = (0..n)
            .map(|_| {
                let u = 1.0 - rng.next_f64(); // in (0, 1]
                ((-u.ln() * level_mult) as usize).min(MAX_LEVEL) as u8
            })
            .collect();
        let mut upper_offsets = Vec::with_capacity(n);
        let mut upper_len = 0usize;
        for &level in &levels {
            upper_offsets.push(upper_len as u32);
            upper_len += level as usize * (1 + m);
        }
        assert!(upper_len < u32::MAX as usize, "upper levels too large");

        let mut index = Index {
            dim,
            stride,
            metric,
            m,
            ef_construction,
            n,
            vectors,
            links0: vec![0; n * (1 + 2 * m)],
            max_level: levels[0] as usize,
            levels,
            upper_offsets,
            upper: vec![0; upper_len],
            entry: 0,
            scratch: RefCell::new(Scratch::new(n, stride)),
        };
        let mut scratch = Scratch::new(n, stride);
        for id in 1..n as u32 {
            index.insert(id, &mut scratch);
        }
        index
    }

    fn save(&self, out: &mut Vec<u8>) {
        let mut w = ByteWriter::new(out);
        w.u32(MAGIC);
        w.u32(FORMAT);
        w.u8(self.metric.to_u8());
        for v in [
            self.dim,
            self.stride,
            self.m,
            self.ef_construction,
            self.n,
            self.max_level,
        ] {
            w.u64(v as u64);
        }
        w.u32(self.entry);
        w.f32s(&self.vectors);
        w.u32s(&self.links0);
        w.bytes(&self.levels);
        w.u32s(&self.upper_offsets);
        w.u32s(&self.upper);
    }

    fn load(bytes: &[u8]) -> Self {
        let mut r = ByteReader::new(bytes);
        assert_eq!(r.u32(), MAGIC, "not an HNSW index");
        assert_eq!(r.u32(), FORMAT, "unknown HNSW index format");
        let metric = Metric::from_u8(r.u8());
        let mut header = [0usize; 6];
        for v in &mut header {
            *v = r.u64() as usize;
        }
        let [dim, stride, m, ef_construction, n, max_level] = header;
        let entry = r.u32();
        let index = Index {
            dim,
            stride,
            metric,
            m,
            ef_construction,
            n,
            vectors: r.f32s(),
            links0: r.u32s(),
            levels: r.bytes().to_vec(),
            upper_offsets: r.u32s(),
            upper: r.u32s(),
            entry,
            max_level,
            scratch: RefCell::new(Scratch::new(n, stride)),
        };
        assert_eq!(index.vectors.len(), n * stride, "vector array size");
        assert_eq!(index.links0.len(), n * (1 + 2 * m), "level-0 array size");
        index
    }

    fn search(&self, query: &[f32], k: usize, ef: usize, out: &mut Vec<u32>) {
        assert_eq!(query.len(), self.dim, "query dimension");
        let mut scratch = self.scratch.borrow_mut();
        let Scratch {
            search,
            query: padded,
        } = &mut *scratch;
        padded[..self.dim].copy_from_slice(query);

        let mut cur = Neighbor {
            id: self.entry,
            dist: self.distance_to(padded, self.entry),
        };
        for level in (1..=self.max_level).rev() {
            cur = self.greedy(padded, cur, level);
        }
        // ef below k is treated as k: the pool must hold k answers.
        self.search_level(padded, cur, 0, ef.max(k), search);
        out.extend(search.pool.iter().take(k).map(|n| n.id));
    }
}

/// Distances in 128-bit registers natively (fused where the CPU has FMA);
/// the SDK's own distances in the sandbox, whose registers are 128-bit
/// already.
mod narrow {
    #[cfg(target_arch = "x86_64")]
    mod x86 {
        /// SSE registers; with FMA where the CPU has it, as the reference.
        mod lanes {
            use core::arch::x86_64::*;

            pub const WIDTH: usize = 4;

            #[derive(Clone, Copy)]
            pub struct F32s(__m128);

            impl F32s {
                pub fn zero() -> Self {
                    // SAFETY: SSE is part of every x86-64.
                    F32s(unsafe { _mm_setzero_ps() })
                }
                /// # Safety
                /// `p` must point to `WIDTH` readable floats.
                pub unsafe fn load(p: *const f32) -> Self {
                    // SAFETY: as the caller guarantees; loadu needs no alignment.
                    F32s(unsafe { _mm_loadu_ps(p) })
                }
                pub fn add(self, o: Self) -> Self {
                    // SAFETY: SSE is part of every x86-64.
                    F32s(unsafe { _mm_add_ps(self.0, o.0) })
                }
                pub fn sub(self, o: Self) -> Self {
                    // SAFETY: SSE is part of every x86-64.
                    F32s(unsafe { _mm_sub_ps(self.0, o.0) })
                }
                /// self + a * b, fused.
                #[cfg(target_feature = "fma")]
                pub fn mul_add(self, a: Self, b: Self) -> Self {
                    // SAFETY: the cfg guarantees FMA.
                    F32s(unsafe { _mm_fmadd_ps(a.0, b.0, self.0) })
                }
                /// self + a * b: a multiply, then an add.
                #[cfg(not(target_feature = "fma"))]
                pub fn mul_add(self, a: Self, b: Self) -> Self {
                    // SAFETY: SSE is part of every x86-64.
                    F32s(unsafe { _mm_add_ps(self.0, _mm_mul_ps(a.0, b.0)) })
                }
                pub fn sum(self) -> f32 {
                    // SAFETY: a register of WIDTH floats is WIDTH floats.
                    let v: [f32; WIDTH] = unsafe { core::mem::transmute(self.0) };
                    (v[0] + v[2]) + (v[1] + v[3])
                }
            }
        }

        use super::super::Metric;
        use lanes::{F32s, WIDTH};

        /// The SDK's loop: four accumulators over whole registers, then one,
        /// then a scalar tail.
        #[inline(always)]
        fn reduce(
            a: &[f32],
            b: &[f32],
            step: impl Fn(F32s, F32s, F32s) -> F32s,
            tail: impl Fn(f32, f32) -> f32,
        ) -> f32 {
            let n = a.len();
            assert_eq!(n, b.len(), "distance between vectors of different lengths");
            let (pa, pb) = (a.as_ptr(), b.as_ptr());
            let mut acc = [F32s::zero(); 4];
            let mut i = 0;
            // SAFETY (all loads): the loop conditions keep i + WIDTH <= n.
            while i + 4 * WIDTH <= n {
                for (j, acc) in acc.iter_mut().enumerate() {
                    let off = i + j * WIDTH;
                    *acc = step(*acc, unsafe { F32s::load(pa.add(off)) }, unsafe {
                        F32s::load(pb.add(off))
                    });
                }
                i += 4 * WIDTH;
            }
            while i + WIDTH <= n {
                acc[0] = step(acc[0], unsafe { F32s::load(pa.add(i)) }, unsafe {
                    F32s::load(pb.add(i))
                });
                i += WIDTH;
            }
            let mut sum = acc[0].add(acc[1]).add(acc[2].add(acc[3])).sum();
            while i < n {
                sum += tail(a[i], b[i]);
                i += 1;
            }
            sum
        }

        #[inline(always)]
        pub fn distance(metric: Metric, a: &[f32], b: &[f32]) -> f32 {
            match metric {
                Metric::Euclidean => reduce(
                    a,
                    b,
                    |acc, x, y| {
                        let d = x.sub(y);
                        acc.mul_add(d, d)
                    },
                    |x, y| (x - y) * (x - y),
                ),
                Metric::Angular => 1.0 - reduce(a, b, |acc, x, y| acc.mul_add(x, y), |x, y| x * y),
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    pub use x86::distance;

    #[cfg(not(target_arch = "x86_64"))]
    #[inline(always)]
    pub fn distance(metric: super::Metric, a: &[f32], b: &[f32]) -> f32 {
        metric.distance(a, b)
    }
}
