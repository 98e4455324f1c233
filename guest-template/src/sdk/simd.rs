//! Portable SIMD distances: one source that compiles to wasm simd128 with
//! relaxed-SIMD fused multiply-add, to x86-64 AVX2 with fused multiply-add
//! (when the build enables them, as `target-cpu=native` does on such a CPU),
//! to SSE2 on any other x86-64, and to plain scalar code elsewhere. Where the
//! target has FMA, wasm and native round alike: the sandbox runs
//! `f32x4.relaxed_madd` deterministically, as one fused operation.
//!
//! Everything is written against [`lanes::F32s`], a register of `WIDTH` floats.
//! The loops keep four independent accumulators so that additions do not wait
//! on each other.

/// Floats handled per unrolled loop iteration on every target: a vector whose
/// length is a multiple of this never reaches the scalar tail.
pub const BLOCK: usize = 16;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod lanes {
    use core::arch::wasm32::*;

    pub const WIDTH: usize = 4;

    #[derive(Clone, Copy)]
    pub struct F32s(v128);

    impl F32s {
        #[inline(always)]
        pub fn zero() -> Self {
            F32s(f32x4_splat(0.0))
        }
        /// # Safety
        /// `p` must point to `WIDTH` readable floats.
        #[inline(always)]
        pub unsafe fn load(p: *const f32) -> Self {
            // SAFETY: the caller guarantees WIDTH readable floats; wasm loads
            // need no alignment.
            F32s(unsafe { v128_load(p as *const v128) })
        }
        #[inline(always)]
        pub fn add(self, o: Self) -> Self {
            F32s(f32x4_add(self.0, o.0))
        }
        #[inline(always)]
        pub fn sub(self, o: Self) -> Self {
            F32s(f32x4_sub(self.0, o.0))
        }
        /// self + a * b, fused (relaxed SIMD, which the sandbox runs as
        /// one rounding on every CPU).
        #[cfg(target_feature = "relaxed-simd")]
        #[inline(always)]
        pub fn mul_add(self, a: Self, b: Self) -> Self {
            F32s(f32x4_relaxed_madd(a.0, b.0, self.0))
        }
        /// self + a * b (a build without relaxed SIMD: two roundings).
        #[cfg(not(target_feature = "relaxed-simd"))]
        #[inline(always)]
        pub fn mul_add(self, a: Self, b: Self) -> Self {
            F32s(f32x4_add(self.0, f32x4_mul(a.0, b.0)))
        }
        #[inline(always)]
        pub fn sum(self) -> f32 {
            let v = self.0;
            (f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<1>(v))
                + (f32x4_extract_lane::<2>(v) + f32x4_extract_lane::<3>(v))
        }
    }
}

#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma"
))]
mod lanes {
    use core::arch::x86_64::*;

    pub const WIDTH: usize = 8;

    #[derive(Clone, Copy)]
    pub struct F32s(__m256);

    impl F32s {
        #[inline(always)]
        pub fn zero() -> Self {
            // SAFETY: AVX is enabled for this build (cfg above).
            F32s(unsafe { _mm256_setzero_ps() })
        }
        /// # Safety
        /// `p` must point to `WIDTH` readable floats.
        #[inline(always)]
        pub unsafe fn load(p: *const f32) -> Self {
            // SAFETY: the caller guarantees WIDTH readable floats; loadu needs
            // no alignment.
            F32s(unsafe { _mm256_loadu_ps(p) })
        }
        #[inline(always)]
        pub fn add(self, o: Self) -> Self {
            // SAFETY: AVX is enabled for this build.
            F32s(unsafe { _mm256_add_ps(self.0, o.0) })
        }
        #[inline(always)]
        pub fn sub(self, o: Self) -> Self {
            // SAFETY: AVX is enabled for this build.
            F32s(unsafe { _mm256_sub_ps(self.0, o.0) })
        }
        /// self + a * b, fused.
        #[inline(always)]
        pub fn mul_add(self, a: Self, b: Self) -> Self {
            // SAFETY: FMA is enabled for this build.
            F32s(unsafe { _mm256_fmadd_ps(a.0, b.0, self.0) })
        }
        #[inline(always)]
        pub fn sum(self) -> f32 {
            // SAFETY: AVX is enabled for this build.
            unsafe {
                let lo = _mm256_castps256_ps128(self.0);
                let hi = _mm256_extractf128_ps::<1>(self.0);
                let s = _mm_add_ps(lo, hi);
                let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
                let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
                _mm_cvtss_f32(s)
            }
        }
    }
}

#[cfg(all(
    target_arch = "x86_64",
    not(all(target_feature = "avx2", target_feature = "fma"))
))]
mod lanes {
    use core::arch::x86_64::*;

    pub const WIDTH: usize = 4;

    #[derive(Clone, Copy)]
    pub struct F32s(__m128);

    impl F32s {
        #[inline(always)]
        pub fn zero() -> Self {
            // SAFETY: SSE2 is part of every x86-64.
            F32s(unsafe { _mm_setzero_ps() })
        }
        /// # Safety
        /// `p` must point to `WIDTH` readable floats.
        #[inline(always)]
        pub unsafe fn load(p: *const f32) -> Self {
            // SAFETY: the caller guarantees WIDTH readable floats.
            F32s(unsafe { _mm_loadu_ps(p) })
        }
        #[inline(always)]
        pub fn add(self, o: Self) -> Self {
            // SAFETY: SSE2 is part of every x86-64.
            F32s(unsafe { _mm_add_ps(self.0, o.0) })
        }
        #[inline(always)]
        pub fn sub(self, o: Self) -> Self {
            // SAFETY: SSE2 is part of every x86-64.
            F32s(unsafe { _mm_sub_ps(self.0, o.0) })
        }
        #[inline(always)]
        pub fn mul_add(self, a: Self, b: Self) -> Self {
            // SAFETY: SSE2 is part of every x86-64.
            F32s(unsafe { _mm_add_ps(self.0, _mm_mul_ps(a.0, b.0)) })
        }
        #[inline(always)]
        pub fn sum(self) -> f32 {
            // SAFETY: SSE2 is part of every x86-64.
            unsafe {
                let s = _mm_add_ps(self.0, _mm_movehl_ps(self.0, self.0));
                let s = _mm_add_ss(s, _mm_shuffle_ps::<0b01>(s, s));
                _mm_cvtss_f32(s)
            }
        }
    }
}

#[cfg(not(any(
    all(target_arch = "wasm32", target_feature = "simd128"),
    target_arch = "x86_64"
)))]
mod lanes {
    pub const WIDTH: usize = 4;

    #[derive(Clone, Copy)]
    pub struct F32s([f32; 4]);

    impl F32s {
        #[inline(always)]
        pub fn zero() -> Self {
            F32s([0.0; 4])
        }
        /// # Safety
        /// `p` must point to `WIDTH` readable floats.
        #[inline(always)]
        pub unsafe fn load(p: *const f32) -> Self {
            // SAFETY: the caller guarantees WIDTH readable floats.
            F32s(unsafe { core::ptr::read_unaligned(p as *const [f32; 4]) })
        }
        #[inline(always)]
        pub fn add(self, o: Self) -> Self {
            F32s(core::array::from_fn(|i| self.0[i] + o.0[i]))
        }
        #[inline(always)]
        pub fn sub(self, o: Self) -> Self {
            F32s(core::array::from_fn(|i| self.0[i] - o.0[i]))
        }
        #[inline(always)]
        pub fn mul_add(self, a: Self, b: Self) -> Self {
            F32s(core::array::from_fn(|i| self.0[i] + a.0[i] * b.0[i]))
        }
        #[inline(always)]
        pub fn sum(self) -> f32 {
            (self.0[0] + self.0[1]) + (self.0[2] + self.0[3])
        }
    }
}

use lanes::{F32s, WIDTH};

const _: () = assert!(
    BLOCK.is_multiple_of(WIDTH),
    "a block must be whole registers"
);

/// Reduces `a` and `b` with `step(acc, a_lanes, b_lanes)` over whole
/// registers (four accumulators, then one), and the tail with `tail`.
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
    // SAFETY (all loads below): the loop conditions keep i + WIDTH <= n for
    // every load, and both slices have length n.
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

/// Squared Euclidean distance.
#[inline]
pub fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
    reduce(
        a,
        b,
        |acc, x, y| {
            let d = x.sub(y);
            acc.mul_add(d, d)
        },
        |x, y| (x - y) * (x - y),
    )
}

/// Inner product.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    reduce(a, b, |acc, x, y| acc.mul_add(x, y), |x, y| x * y)
}

/// Asks for the cache line at `p` ahead of its use, so that the wait for
/// memory overlaps other work. Any address is fine: nothing is read that the
/// kernel could see, and nothing faults.
///
/// Natively this is x86-64's `prefetcht0`. WebAssembly has no prefetch
/// instruction, so there it is a one-byte load whose value nothing uses
/// (kept by a volatile read): the CPU still sends the line's request to
/// memory and goes on with the instructions after it, so prefetching the
/// vectors of a whole neighbour list before the first distance has all their
/// misses in flight at once. The address is clamped into the linear memory
/// (an address past its end reads its last byte), so a prefetch never traps.
/// Unlike `prefetcht0`, the load retires only when its line arrives: issue
/// prefetches in a burst, ahead of work, not one per step of a loop.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch never faults, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p as *const i8);
    }
    #[cfg(target_arch = "wasm32")]
    {
        let end = core::arch::wasm32::memory_size::<0>() * WASM_PAGE;
        let addr = (p as usize).min(end - 1);
        // SAFETY: `addr` lies inside linear memory (which is never empty: it
        // holds the stack), so the load cannot trap; its value is dropped.
        unsafe {
            core::ptr::read_volatile(core::ptr::with_exposed_provenance::<u8>(addr));
        }
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "wasm32")))]
    let _ = p;
}

/// Bytes in a WebAssembly memory page.
#[cfg(target_arch = "wasm32")]
const WASM_PAGE: usize = 65536;

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_l2(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
            .sum()
    }

    fn naive_dot(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
    }

    #[test]
    fn distances_match_naive_for_every_length() {
        let mut rng = crate::sdk::SplitMix64::new(7);
        for n in 0..70 {
            let a: Vec<f32> = (0..n).map(|_| rng.next_f32() * 4.0 - 2.0).collect();
            let b: Vec<f32> = (0..n).map(|_| rng.next_f32() * 4.0 - 2.0).collect();
            let (l2, ip) = (l2_sq(&a, &b) as f64, dot(&a, &b) as f64);
            assert!(
                (l2 - naive_l2(&a, &b)).abs() < 1e-4 * (1.0 + n as f64),
                "l2 n={n}"
            );
            assert!(
                (ip - naive_dot(&a, &b)).abs() < 1e-4 * (1.0 + n as f64),
                "dot n={n}"
            );
        }
    }

    #[test]
    fn prefetch_takes_any_address() {
        let v = [1.0f32; 64];
        for p in [
            v.as_ptr(),
            v.as_ptr().wrapping_add(1 << 20),
            core::ptr::null(),
            usize::MAX as *const f32,
        ] {
            prefetch(p);
        }
    }

    #[test]
    #[should_panic(expected = "different lengths")]
    fn mismatched_lengths_are_refused() {
        l2_sq(&[1.0, 2.0], &[1.0]);
    }
}
