//! Portable SIMD distances: one source that compiles to wasm simd128 with
//! relaxed-SIMD fused multiply-add, to x86-64 AVX-512 or AVX2 with fused
//! multiply-add (when the build enables them, as `target-cpu=native` does on
//! such a CPU), to SSE2 on any other x86-64, and to plain scalar code
//! elsewhere. Where the
//! target has FMA, wasm and native round alike: the sandbox runs
//! `f32x4.relaxed_madd` deterministically, as one fused operation.
//!
//! Everything is written against [`lanes::F32s`], a register of `WIDTH` floats,
//! loaded from floats or from IEEE half-precision values (`u16` bits).
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
        /// # Safety
        /// `p` must point to `WIDTH` readable halves.
        #[inline(always)]
        pub unsafe fn load_f16(p: *const u16) -> Self {
            // SAFETY: the caller guarantees WIDTH (four) readable halves.
            let h = u32x4_extend_low_u16x8(unsafe { v128_load64_zero(p as *const u64) });
            // Exponent and mantissa moved to f32's places, then scaled by
            // 2^112 (the difference of the biases): exact for normal and
            // subnormal halves alike. Infinities and NaNs keep an all-ones
            // exponent.
            let em = i32x4_shl(v128_and(h, u32x4_splat(0x7fff)), 13);
            let finite = f32x4_mul(em, f32x4_splat(f32::from_bits(0x7780_0000)));
            let special = u32x4_eq(v128_and(h, u32x4_splat(0x7c00)), u32x4_splat(0x7c00));
            let magnitude = v128_bitselect(v128_or(em, u32x4_splat(0x7f80_0000)), finite, special);
            let sign = i32x4_shl(v128_and(h, u32x4_splat(0x8000)), 16);
            F32s(v128_or(magnitude, sign))
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

#[cfg(all(target_arch = "x86_64", target_feature = "avx512f"))]
mod lanes {
    use core::arch::x86_64::*;

    pub const WIDTH: usize = 16;

    #[derive(Clone, Copy)]
    pub struct F32s(__m512);

    impl F32s {
        #[inline(always)]
        pub fn zero() -> Self {
            // SAFETY: AVX-512 F is enabled for this build (cfg above).
            F32s(unsafe { _mm512_setzero_ps() })
        }
        /// # Safety
        /// `p` must point to `WIDTH` readable floats.
        #[inline(always)]
        pub unsafe fn load(p: *const f32) -> Self {
            // SAFETY: the caller guarantees WIDTH readable floats; loadu needs
            // no alignment.
            F32s(unsafe { _mm512_loadu_ps(p) })
        }
        /// # Safety
        /// `p` must point to `WIDTH` readable halves.
        #[inline(always)]
        pub unsafe fn load_f16(p: *const u16) -> Self {
            // SAFETY: the caller guarantees WIDTH halves (32 bytes).
            F32s(unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(p as *const __m256i)) })
        }
        #[inline(always)]
        pub fn add(self, o: Self) -> Self {
            // SAFETY: AVX-512 F is enabled for this build.
            F32s(unsafe { _mm512_add_ps(self.0, o.0) })
        }
        #[inline(always)]
        pub fn sub(self, o: Self) -> Self {
            // SAFETY: AVX-512 F is enabled for this build.
            F32s(unsafe { _mm512_sub_ps(self.0, o.0) })
        }
        /// self + a * b, fused.
        #[inline(always)]
        pub fn mul_add(self, a: Self, b: Self) -> Self {
            // SAFETY: AVX-512 F is enabled for this build.
            F32s(unsafe { _mm512_fmadd_ps(a.0, b.0, self.0) })
        }
        #[inline(always)]
        pub fn sum(self) -> f32 {
            // SAFETY: AVX-512 F is enabled for this build.
            unsafe { _mm512_reduce_add_ps(self.0) }
        }
    }
}

#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    target_feature = "fma",
    not(target_feature = "avx512f")
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
        /// # Safety
        /// `p` must point to `WIDTH` readable halves.
        #[inline(always)]
        pub unsafe fn load_f16(p: *const u16) -> Self {
            #[cfg(target_feature = "f16c")]
            // SAFETY: the caller guarantees WIDTH halves (16 bytes); F16C is
            // enabled for this build.
            let v = unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i)) };
            #[cfg(not(target_feature = "f16c"))]
            // SAFETY: the caller guarantees WIDTH readable halves.
            let v = unsafe { _mm256_loadu_ps(super::halves_to_floats::<WIDTH>(p).as_ptr()) };
            F32s(v)
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
    not(target_feature = "avx512f"),
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
        /// # Safety
        /// `p` must point to `WIDTH` readable halves.
        #[inline(always)]
        pub unsafe fn load_f16(p: *const u16) -> Self {
            // SAFETY: the caller guarantees WIDTH readable halves.
            F32s(unsafe { _mm_loadu_ps(super::halves_to_floats::<WIDTH>(p).as_ptr()) })
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
        /// # Safety
        /// `p` must point to `WIDTH` readable halves.
        #[inline(always)]
        pub unsafe fn load_f16(p: *const u16) -> Self {
            // SAFETY: the caller guarantees WIDTH readable halves.
            F32s(unsafe { super::halves_to_floats::<WIDTH>(p) })
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
/// registers (four accumulators, then one), and the tail with `tail`; `b`'s
/// elements become floats through `load_b` (one register) and `to_f32` (one
/// element).
#[inline(always)]
fn reduce<B: Copy>(
    a: &[f32],
    b: &[B],
    load_b: impl Fn(*const B) -> F32s,
    to_f32: impl Fn(B) -> f32,
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
            *acc = step(
                *acc,
                unsafe { F32s::load(pa.add(off)) },
                load_b(unsafe { pb.add(off) }),
            );
        }
        i += 4 * WIDTH;
    }
    while i + WIDTH <= n {
        acc[0] = step(
            acc[0],
            unsafe { F32s::load(pa.add(i)) },
            load_b(unsafe { pb.add(i) }),
        );
        i += WIDTH;
    }
    let mut sum = acc[0].add(acc[1]).add(acc[2].add(acc[3])).sum();
    while i < n {
        sum += tail(a[i], to_f32(b[i]));
        i += 1;
    }
    sum
}

/// `reduce` over two float slices.
#[inline(always)]
fn reduce_f32(
    a: &[f32],
    b: &[f32],
    step: impl Fn(F32s, F32s, F32s) -> F32s,
    tail: impl Fn(f32, f32) -> f32,
) -> f32 {
    // SAFETY: `reduce` calls `load_b` only with WIDTH elements in bounds.
    reduce(a, b, |p| unsafe { F32s::load(p) }, |x| x, step, tail)
}

/// `reduce` over floats and half-precision values.
#[inline(always)]
fn reduce_f16(
    a: &[f32],
    b: &[u16],
    step: impl Fn(F32s, F32s, F32s) -> F32s,
    tail: impl Fn(f32, f32) -> f32,
) -> f32 {
    // SAFETY: `reduce` calls `load_b` only with WIDTH elements in bounds.
    reduce(
        a,
        b,
        |p| unsafe { F32s::load_f16(p) },
        f32_from_f16,
        step,
        tail,
    )
}

/// `N` halves from `p`, as floats.
///
/// # Safety
/// `p` must point to `N` readable halves.
#[allow(dead_code)]
#[inline(always)]
unsafe fn halves_to_floats<const N: usize>(p: *const u16) -> [f32; N] {
    // SAFETY: the caller guarantees N readable halves.
    core::array::from_fn(|i| f32_from_f16(unsafe { p.add(i).read_unaligned() }))
}

/// The float an IEEE 754 half-precision value (its bits) stands for: exact,
/// as every half is a float.
#[inline]
pub fn f32_from_f16(h: u16) -> f32 {
    let h = h as u32;
    let sign = (h & 0x8000) << 16;
    let em = (h & 0x7fff) << 13;
    let magnitude = if h & 0x7c00 == 0x7c00 {
        em | 0x7f80_0000
    } else {
        // Normal and subnormal halves alike: the bits in f32's places, scaled
        // by 2^112, the difference of the exponent biases.
        (f32::from_bits(em) * f32::from_bits(0x7780_0000)).to_bits()
    };
    f32::from_bits(sign | magnitude)
}

/// The half-precision value nearest to `x` (ties to even), as IEEE 754 and
/// x86's `vcvtps2ph` round: values beyond the largest half become infinity,
/// NaN stays NaN.
#[inline]
pub fn f16_from_f32(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let abs = bits & 0x7fff_ffff;
    if abs > 0x7f80_0000 {
        // NaN: keep it quiet and keep the top of its payload.
        return sign | 0x7e00 | ((abs >> 13) & 0x03ff) as u16;
    }
    if abs >= 0x4780_0000 {
        // 65536 and above (and infinity): beyond every half, whatever the
        // rounding.
        return sign | 0x7c00;
    }
    if abs < 0x3880_0000 {
        // Below the smallest normal half (2^-14): a subnormal half, or zero.
        // Adding 0.5 makes the float's own rounding (to nearest, ties to
        // even) round at the half's last subnormal place, 2^-24.
        let r = f32::from_bits(abs) + 0.5;
        return sign | (r.to_bits() - 0x3f00_0000) as u16;
    }
    // A normal half: re-bias the exponent, then round the 13 dropped bits to
    // nearest, ties to even; a carry out of the mantissa moves to the next
    // binade (or to infinity), which is right.
    let odd = (abs >> 13) & 1;
    let rounded = abs.wrapping_add(0x0fff + odd) - (112 << 23);
    sign | (rounded >> 13) as u16
}

/// Squared Euclidean distance.
#[inline]
pub fn l2_sq(a: &[f32], b: &[f32]) -> f32 {
    reduce_f32(
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
    reduce_f32(a, b, |acc, x, y| acc.mul_add(x, y), |x, y| x * y)
}

/// Squared Euclidean distance between floats and half-precision values
/// (stored as [`f16_from_f32`] made them): the re-ranking distance of a
/// kernel that keeps its vectors in half the memory.
#[inline]
pub fn l2_sq_f16(a: &[f32], b: &[u16]) -> f32 {
    reduce_f16(
        a,
        b,
        |acc, x, y| {
            let d = x.sub(y);
            acc.mul_add(d, d)
        },
        |x, y| (x - y) * (x - y),
    )
}

/// Inner product of floats and half-precision values.
#[inline]
pub fn dot_f16(a: &[f32], b: &[u16]) -> f32 {
    reduce_f16(a, b, |acc, x, y| acc.mul_add(x, y), |x, y| x * y)
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
    fn half_precision_round_trips_every_half() {
        for h in 0..=u16::MAX {
            let x = f32_from_f16(h);
            if x.is_nan() {
                assert!(f16_from_f32(x) & 0x7c00 == 0x7c00 && f16_from_f32(x) & 0x3ff != 0);
            } else {
                assert_eq!(f16_from_f32(x), h, "half {h:#06x} = {x}");
            }
        }
        assert_eq!(f32_from_f16(0x3c00), 1.0);
        assert_eq!(f32_from_f16(0x0001), 2f32.powi(-24));
        assert_eq!(f32_from_f16(0xfc00), f32::NEG_INFINITY);
    }

    /// Rounding as the CPU's own conversion rounds (F16C's `vcvtps2ph`, to
    /// nearest), on floats of every magnitude.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn half_precision_rounds_as_the_cpu_does() {
        use core::arch::x86_64::*;
        if !std::arch::is_x86_feature_detected!("f16c") {
            return;
        }
        #[target_feature(enable = "f16c")]
        fn cpu(x: f32) -> u16 {
            _mm_extract_epi16::<0>(_mm_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm_set1_ps(x))) as u16
        }
        let mut rng = crate::sdk::SplitMix64::new(3);
        for i in 0..2_000_000u32 {
            // Any bit pattern; any float of the magnitudes halves span; and
            // the exact midpoint between two neighbouring halves.
            let r = rng.next_u64();
            let x = match i % 3 {
                0 => f32::from_bits(r as u32),
                1 => f32::from_bits((r as u32 & 0x807f_ffff) | (101 + (r >> 32) as u32 % 43) << 23),
                _ => f32::from_bits(f32_from_f16(r as u16 & 0xfbff).to_bits() + 0x1000),
            };
            // SAFETY: F16C was detected above.
            let want = unsafe { cpu(x) };
            let got = f16_from_f32(x);
            if x.is_nan() {
                assert!(got & 0x7c00 == 0x7c00 && got & 0x3ff != 0);
            } else {
                assert_eq!(got, want, "{x:e} ({:#010x})", x.to_bits());
            }
        }
    }

    #[test]
    fn half_precision_distances_match_their_floats() {
        let mut rng = crate::sdk::SplitMix64::new(5);
        for n in 0..90 {
            let a: Vec<f32> = (0..n).map(|_| rng.next_f32() * 4.0 - 2.0).collect();
            let h: Vec<u16> = (0..n)
                .map(|_| f16_from_f32(rng.next_f32() * 4.0 - 2.0))
                .collect();
            let b: Vec<f32> = h.iter().map(|&x| f32_from_f16(x)).collect();
            let tol = 1e-4 * (1.0 + n as f32);
            assert!((l2_sq_f16(&a, &h) - l2_sq(&a, &b)).abs() < tol, "l2 n={n}");
            assert!((dot_f16(&a, &h) - dot(&a, &b)).abs() < tol, "dot n={n}");
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
