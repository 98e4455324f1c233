//! What every kernel needs and should not rewrite: the [`Kernel`] trait, the
//! metric, typed parameters, SIMD distances (float, half-precision and
//! quantised codes), byte helpers for save/load, and the
//! building blocks of graph search (visited set, sorted candidate pool, a
//! deterministic random number generator).

mod bytes;
mod params;
mod pool;
pub mod quant;
mod rng;
pub mod simd;
mod visited;

pub use bytes::{ByteReader, ByteWriter};
pub use params::Params;
pub use pool::{CandidatePool, Neighbor};
pub use quant::{ScalarQuantizer, dot_i8, l2_sq_u4, l2_sq_u8, pack_u4};
pub use rng::SplitMix64;
pub use simd::{dot, dot_f16, f16_from_f32, f32_from_f16, l2_sq, l2_sq_f16, prefetch};
pub use visited::VisitedSet;

/// Marks a missing result in a batch: a query answered with fewer than `k`
/// ids is padded with this value, and the host reports it as invalid output.
pub const NO_ID: u32 = u32::MAX;

/// How distances are measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Squared Euclidean distance (same order as the true distance).
    Euclidean,
    /// Cosine distance on unit vectors (the host normalises them): 1 - dot.
    Angular,
}

impl Metric {
    /// The kernel-side distance: smaller is nearer. Orders points exactly as
    /// the true metric does.
    #[inline(always)]
    pub fn distance(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Metric::Euclidean => l2_sq(a, b),
            Metric::Angular => 1.0 - dot(a, b),
        }
    }

    pub fn to_u8(self) -> u8 {
        match self {
            Metric::Euclidean => 0,
            Metric::Angular => 1,
        }
    }

    /// Panics on an unknown tag: the bytes are the kernel's own, so a bad tag
    /// is a bug in its `save`.
    pub fn from_u8(tag: u8) -> Metric {
        match tag {
            0 => Metric::Euclidean,
            1 => Metric::Angular,
            other => panic!("unknown metric tag {other} in saved index"),
        }
    }
}

/// The contract a candidate implements in `kernel.rs` as `pub struct Index`.
///
/// The host calls `build` once, keeps the bytes from `save`, and before every
/// timed pass restores a fresh instance with `load` (untimed), so nothing a
/// kernel remembers survives from one pass to the next.
pub trait Kernel: Sized {
    /// Builds an index over `base`: `base.len() / dim` points, row-major.
    fn build(base: &[f32], dim: usize, metric: Metric, params: &Params) -> Self;

    /// Appends the index, as bytes the host keeps, to `out`.
    fn save(&self, out: &mut Vec<u8>);

    /// Restores an index from bytes produced by `save`.
    fn load(bytes: &[u8]) -> Self;

    /// Appends the ids of (approximately) the `k` nearest points to `query`
    /// to `out`. `ef` is the search effort the host sweeps; more is slower
    /// and more accurate.
    fn search(&self, query: &[f32], k: usize, ef: usize, out: &mut Vec<u32>);

    /// Answers a batch of queries (row-major, `dim` floats each), appending
    /// exactly `k` ids per query to `out`, padded with [`NO_ID`] when fewer
    /// were found. Override it to share work across queries; the default
    /// calls [`Kernel::search`] for each. An `Err` describes output the kernel
    /// knows to be invalid.
    fn search_batch(
        &self,
        queries: &[f32],
        dim: usize,
        k: usize,
        ef: usize,
        out: &mut Vec<u32>,
    ) -> Result<(), String> {
        let mut ids = Vec::with_capacity(k);
        for (i, query) in queries.chunks_exact(dim).enumerate() {
            ids.clear();
            self.search(query, k, ef, &mut ids);
            if ids.len() > k {
                return Err(format!(
                    "query {i}: search returned {} ids for k = {k}",
                    ids.len()
                ));
            }
            out.extend_from_slice(&ids);
            out.extend(std::iter::repeat_n(NO_ID, k - ids.len()));
        }
        Ok(())
    }
}

/// Writes one line to the evaluation's diagnostic log (bounded by the host).
/// In a native build it goes to standard error.
pub fn log(message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::glue::log(message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{message}");
}

/// Rounds `dim` up to a whole number of SIMD blocks. Kernels that store
/// vectors zero-padded to this width avoid the scalar tail in every distance;
/// zero padding changes neither the squared distance nor the dot product.
pub fn padded_dim(dim: usize) -> usize {
    dim.div_ceil(simd::BLOCK) * simd::BLOCK
}
