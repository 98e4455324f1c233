//! Quantised codes: 8-bit (unsigned and signed) and 4-bit integer codes with
//! exact integer distances, and a scalar quantiser that makes them from
//! floats. (Half-precision storage with float distances is in [`super::simd`]:
//! [`super::l2_sq_f16`], [`super::dot_f16`].)
//!
//! Every distance here is exact integer arithmetic, so both engines return
//! the same value bit for bit. In the sandbox the codes widen to 16 bits and
//! meet in `i32x4.dot_i16x8` (16 codes per step); natively the same widening
//! meets in `vpmaddwd`, 32 codes per step with AVX-512 BW, 16 with AVX2.

/// Squared Euclidean distance between two 8-bit code vectors.
#[inline]
pub fn l2_sq_u8(a: &[u8], b: &[u8]) -> u32 {
    assert_eq!(
        a.len(),
        b.len(),
        "distance between codes of different lengths"
    );
    let blocks = a.len() / imp::BYTES;
    // SAFETY: both slices hold `blocks * BYTES` bytes.
    let mut sum = unsafe { imp::l2_sq_u8(a.as_ptr(), b.as_ptr(), blocks) };
    for i in blocks * imp::BYTES..a.len() {
        let d = a[i].abs_diff(b[i]) as u32;
        sum += d * d;
    }
    sum
}

/// Inner product of two signed 8-bit code vectors.
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    assert_eq!(
        a.len(),
        b.len(),
        "distance between codes of different lengths"
    );
    let blocks = a.len() / imp::BYTES;
    // SAFETY: both slices hold `blocks * BYTES` bytes.
    let mut sum = unsafe { imp::dot_i8(a.as_ptr(), b.as_ptr(), blocks) };
    for i in blocks * imp::BYTES..a.len() {
        sum += a[i] as i32 * b[i] as i32;
    }
    sum
}

/// Squared Euclidean distance between two 4-bit code vectors packed by
/// [`pack_u4`] (two codes per byte).
#[inline]
pub fn l2_sq_u4(a: &[u8], b: &[u8]) -> u32 {
    assert_eq!(
        a.len(),
        b.len(),
        "distance between codes of different lengths"
    );
    let blocks = a.len() / imp::BYTES;
    // SAFETY: both slices hold `blocks * BYTES` bytes.
    let mut sum = unsafe { imp::l2_sq_u4(a.as_ptr(), b.as_ptr(), blocks) };
    for i in blocks * imp::BYTES..a.len() {
        let lo = (a[i] & 15).abs_diff(b[i] & 15) as u32;
        let hi = (a[i] >> 4).abs_diff(b[i] >> 4) as u32;
        sum += lo * lo + hi * hi;
    }
    sum
}

/// Packs 4-bit codes (each below 16) two to a byte, the first in the low
/// half, and appends them to `out`; an odd count is padded with a zero code,
/// which adds nothing to a distance between two packed vectors.
pub fn pack_u4(codes: &[u8], out: &mut Vec<u8>) {
    for pair in codes.chunks(2) {
        let (lo, hi) = (pair[0], pair.get(1).copied().unwrap_or(0));
        assert!(lo < 16 && hi < 16, "a 4-bit code must be below 16");
        out.push(lo | hi << 4);
    }
}

/// A uniform scalar quantiser: `levels` evenly spaced values from `lo` in
/// steps of `step`, one code per value. As every dimension shares the grid,
/// the squared distance between two code vectors times `step²` approximates
/// the squared distance between the vectors they encode.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScalarQuantizer {
    /// The value of code 0.
    pub lo: f32,
    /// The distance between neighbouring codes' values.
    pub step: f32,
    /// How many codes there are: 256 for 8-bit codes, 16 for 4-bit.
    pub levels: u32,
}

impl ScalarQuantizer {
    /// The grid of `bits`-bit codes (1 to 8) spanning `values`.
    pub fn fit(values: &[f32], bits: u32) -> Self {
        assert!(
            (1..=8).contains(&bits),
            "codes have 1 to 8 bits, not {bits}"
        );
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for &v in values {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if lo > hi {
            (lo, hi) = (0.0, 0.0);
        }
        let levels = 1u32 << bits;
        let step = if hi > lo {
            (hi - lo) / (levels - 1) as f32
        } else {
            1.0
        };
        ScalarQuantizer { lo, step, levels }
    }

    /// The code nearest to `v` (values beyond the grid take its end codes).
    #[inline]
    pub fn code(&self, v: f32) -> u8 {
        let c = ((v - self.lo) / self.step).round();
        c.clamp(0.0, (self.levels - 1) as f32) as u8
    }

    /// Appends the code of every value of `v` to `out`, one per byte.
    pub fn encode(&self, v: &[f32], out: &mut Vec<u8>) {
        out.extend(v.iter().map(|&x| self.code(x)));
    }

    /// The value code `c` stands for.
    #[inline]
    pub fn value(&self, c: u8) -> f32 {
        self.lo + c as f32 * self.step
    }
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod imp {
    use core::arch::wasm32::*;

    /// Bytes per step.
    pub const BYTES: usize = 16;

    /// |a - b| of unsigned bytes.
    #[inline(always)]
    fn abs_diff(a: v128, b: v128) -> v128 {
        v128_or(u8x16_sub_sat(a, b), u8x16_sub_sat(b, a))
    }

    /// Sums of squares of unsigned bytes, four 32-bit partial sums.
    #[inline(always)]
    fn squares(d: v128) -> v128 {
        let (lo, hi) = (u16x8_extend_low_u8x16(d), u16x8_extend_high_u8x16(d));
        i32x4_add(i32x4_dot_i16x8(lo, lo), i32x4_dot_i16x8(hi, hi))
    }

    #[inline(always)]
    fn sum(v: v128) -> i32 {
        i32x4_extract_lane::<0>(v)
            .wrapping_add(i32x4_extract_lane::<1>(v))
            .wrapping_add(i32x4_extract_lane::<2>(v).wrapping_add(i32x4_extract_lane::<3>(v)))
    }

    /// # Safety
    /// `a` and `b` must point to `blocks * BYTES` readable bytes.
    #[inline(always)]
    pub unsafe fn l2_sq_u8(a: *const u8, b: *const u8, blocks: usize) -> u32 {
        let mut acc = i32x4_splat(0);
        for i in 0..blocks {
            // SAFETY: the caller guarantees `blocks * BYTES` bytes.
            let (x, y) = unsafe {
                (
                    v128_load(a.add(i * BYTES) as *const v128),
                    v128_load(b.add(i * BYTES) as *const v128),
                )
            };
            acc = i32x4_add(acc, squares(abs_diff(x, y)));
        }
        sum(acc) as u32
    }

    /// # Safety
    /// `a` and `b` must point to `blocks * BYTES` readable bytes.
    #[inline(always)]
    pub unsafe fn dot_i8(a: *const i8, b: *const i8, blocks: usize) -> i32 {
        let mut acc = i32x4_splat(0);
        for i in 0..blocks {
            // SAFETY: the caller guarantees `blocks * BYTES` bytes.
            let (x, y) = unsafe {
                (
                    v128_load(a.add(i * BYTES) as *const v128),
                    v128_load(b.add(i * BYTES) as *const v128),
                )
            };
            let lo = i32x4_dot_i16x8(i16x8_extend_low_i8x16(x), i16x8_extend_low_i8x16(y));
            let hi = i32x4_dot_i16x8(i16x8_extend_high_i8x16(x), i16x8_extend_high_i8x16(y));
            acc = i32x4_add(acc, i32x4_add(lo, hi));
        }
        sum(acc)
    }

    /// # Safety
    /// `a` and `b` must point to `blocks * BYTES` readable bytes.
    #[inline(always)]
    pub unsafe fn l2_sq_u4(a: *const u8, b: *const u8, blocks: usize) -> u32 {
        let mask = u8x16_splat(15);
        let mut acc = i32x4_splat(0);
        for i in 0..blocks {
            // SAFETY: the caller guarantees `blocks * BYTES` bytes.
            let (x, y) = unsafe {
                (
                    v128_load(a.add(i * BYTES) as *const v128),
                    v128_load(b.add(i * BYTES) as *const v128),
                )
            };
            let lo = abs_diff(v128_and(x, mask), v128_and(y, mask));
            let hi = abs_diff(u8x16_shr(x, 4), u8x16_shr(y, 4));
            acc = i32x4_add(acc, i32x4_add(squares(lo), squares(hi)));
        }
        sum(acc) as u32
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "avx512bw"))]
mod imp {
    use core::arch::x86_64::*;

    /// Bytes per step.
    pub const BYTES: usize = 32;

    /// # Safety
    /// `p` must point to 32 readable bytes.
    #[inline(always)]
    unsafe fn load(p: *const u8) -> __m256i {
        // SAFETY: the caller guarantees 32 bytes; loadu needs no alignment.
        unsafe { _mm256_loadu_si256(p as *const __m256i) }
    }

    /// # Safety
    /// `a` and `b` must point to `blocks * BYTES` readable bytes.
    #[inline(always)]
    pub unsafe fn l2_sq_u8(a: *const u8, b: *const u8, blocks: usize) -> u32 {
        // SAFETY: AVX-512 BW is enabled for this build; the caller guarantees
        // the bytes.
        unsafe {
            let mut acc = _mm512_setzero_si512();
            for i in 0..blocks {
                let x = _mm512_cvtepu8_epi16(load(a.add(i * BYTES)));
                let y = _mm512_cvtepu8_epi16(load(b.add(i * BYTES)));
                let d = _mm512_sub_epi16(x, y);
                acc = _mm512_add_epi32(acc, _mm512_madd_epi16(d, d));
            }
            _mm512_reduce_add_epi32(acc) as u32
        }
    }

    /// # Safety
    /// `a` and `b` must point to `blocks * BYTES` readable bytes.
    #[inline(always)]
    pub unsafe fn dot_i8(a: *const i8, b: *const i8, blocks: usize) -> i32 {
        // SAFETY: as above.
        unsafe {
            let mut acc = _mm512_setzero_si512();
            for i in 0..blocks {
                let x = _mm512_cvtepi8_epi16(load(a.add(i * BYTES) as *const u8));
                let y = _mm512_cvtepi8_epi16(load(b.add(i * BYTES) as *const u8));
                acc = _mm512_add_epi32(acc, _mm512_madd_epi16(x, y));
            }
            _mm512_reduce_add_epi32(acc)
        }
    }

    /// # Safety
    /// `a` and `b` must point to `blocks * BYTES` readable bytes.
    #[inline(always)]
    pub unsafe fn l2_sq_u4(a: *const u8, b: *const u8, blocks: usize) -> u32 {
        // SAFETY: as above.
        unsafe {
            let mask = _mm256_set1_epi8(15);
            let mut acc = _mm512_setzero_si512();
            for i in 0..blocks {
                let (x, y) = (load(a.add(i * BYTES)), load(b.add(i * BYTES)));
                for (x, y) in [
                    (_mm256_and_si256(x, mask), _mm256_and_si256(y, mask)),
                    (
                        _mm256_and_si256(_mm256_srli_epi16::<4>(x), mask),
                        _mm256_and_si256(_mm256_srli_epi16::<4>(y), mask),
                    ),
                ] {
                    let d = _mm512_sub_epi16(_mm512_cvtepu8_epi16(x), _mm512_cvtepu8_epi16(y));
                    acc = _mm512_add_epi32(acc, _mm512_madd_epi16(d, d));
                }
            }
            _mm512_reduce_add_epi32(acc) as u32
        }
    }
}

#[cfg(all(
    target_arch = "x86_64",
    target_feature = "avx2",
    not(target_feature = "avx512bw")
))]
mod imp {
    use core::arch::x86_64::*;

    /// Bytes per step.
    pub const BYTES: usize = 16;

    /// # Safety
    /// `p` must point to 16 readable bytes.
    #[inline(always)]
    unsafe fn load(p: *const u8) -> __m128i {
        // SAFETY: the caller guarantees 16 bytes; loadu needs no alignment.
        unsafe { _mm_loadu_si128(p as *const __m128i) }
    }

    #[inline(always)]
    fn sum(v: __m256i) -> i32 {
        // SAFETY: AVX2 is enabled for this build.
        unsafe {
            let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
            let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
            let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
            _mm_cvtsi128_si32(s)
        }
    }

    /// # Safety
    /// `a` and `b` must point to `blocks * BYTES` readable bytes.
    #[inline(always)]
    pub unsafe fn l2_sq_u8(a: *const u8, b: *const u8, blocks: usize) -> u32 {
        // SAFETY: AVX2 is enabled for this build; the caller guarantees the
        // bytes.
        unsafe {
            let mut acc = _mm256_setzero_si256();
            for i in 0..blocks {
                let x = _mm256_cvtepu8_epi16(load(a.add(i * BYTES)));
                let y = _mm256_cvtepu8_epi16(load(b.add(i * BYTES)));
                let d = _mm256_sub_epi16(x, y);
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(d, d));
            }
            sum(acc) as u32
        }
    }

    /// # Safety
    /// `a` and `b` must point to `blocks * BYTES` readable bytes.
    #[inline(always)]
    pub unsafe fn dot_i8(a: *const i8, b: *const i8, blocks: usize) -> i32 {
        // SAFETY: as above.
        unsafe {
            let mut acc = _mm256_setzero_si256();
            for i in 0..blocks {
                let x = _mm256_cvtepi8_epi16(load(a.add(i * BYTES) as *const u8));
                let y = _mm256_cvtepi8_epi16(load(b.add(i * BYTES) as *const u8));
                acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, y));
            }
            sum(acc)
        }
    }

    /// # Safety
    /// `a` and `b` must point to `blocks * BYTES` readable bytes.
    #[inline(always)]
    pub unsafe fn l2_sq_u4(a: *const u8, b: *const u8, blocks: usize) -> u32 {
        // SAFETY: as above.
        unsafe {
            let mask = _mm_set1_epi8(15);
            let mut acc = _mm256_setzero_si256();
            for i in 0..blocks {
                let (x, y) = (load(a.add(i * BYTES)), load(b.add(i * BYTES)));
                for (x, y) in [
                    (_mm_and_si128(x, mask), _mm_and_si128(y, mask)),
                    (
                        _mm_and_si128(_mm_srli_epi16::<4>(x), mask),
                        _mm_and_si128(_mm_srli_epi16::<4>(y), mask),
                    ),
                ] {
                    let d = _mm256_sub_epi16(_mm256_cvtepu8_epi16(x), _mm256_cvtepu8_epi16(y));
                    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(d, d));
                }
            }
            sum(acc) as u32
        }
    }
}

/// Everywhere else, the callers' scalar loops do all the work (and the
/// compiler vectorises them for the target it has).
#[cfg(not(any(
    all(target_arch = "wasm32", target_feature = "simd128"),
    all(target_arch = "x86_64", target_feature = "avx2")
)))]
mod imp {
    /// No whole blocks: the scalar tail covers the vector.
    pub const BYTES: usize = usize::MAX;

    /// # Safety
    /// Always safe: there are never any blocks.
    #[inline(always)]
    pub unsafe fn l2_sq_u8(_: *const u8, _: *const u8, _: usize) -> u32 {
        0
    }

    /// # Safety
    /// Always safe: there are never any blocks.
    #[inline(always)]
    pub unsafe fn dot_i8(_: *const i8, _: *const i8, _: usize) -> i32 {
        0
    }

    /// # Safety
    /// Always safe: there are never any blocks.
    #[inline(always)]
    pub unsafe fn l2_sq_u4(_: *const u8, _: *const u8, _: usize) -> u32 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::SplitMix64;

    fn bytes(rng: &mut SplitMix64, n: usize) -> Vec<u8> {
        (0..n).map(|_| rng.next_u64() as u8).collect()
    }

    #[test]
    fn integer_distances_are_exact_for_every_length() {
        let mut rng = SplitMix64::new(11);
        for n in 0..200 {
            let (a, b) = (bytes(&mut rng, n), bytes(&mut rng, n));
            let l2: u32 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (*x as i32 - *y as i32).pow(2) as u32)
                .sum();
            assert_eq!(l2_sq_u8(&a, &b), l2, "u8 n={n}");
            let (sa, sb): (Vec<i8>, Vec<i8>) = (
                a.iter().map(|&x| x as i8).collect(),
                b.iter().map(|&x| x as i8).collect(),
            );
            let ip: i32 = sa.iter().zip(&sb).map(|(x, y)| *x as i32 * *y as i32).sum();
            assert_eq!(dot_i8(&sa, &sb), ip, "i8 n={n}");
            let nib = |v: &[u8]| v.iter().flat_map(|x| [x & 15, x >> 4]).collect::<Vec<_>>();
            let l4: u32 = nib(&a)
                .iter()
                .zip(&nib(&b))
                .map(|(x, y)| (*x as i32 - *y as i32).pow(2) as u32)
                .sum();
            assert_eq!(l2_sq_u4(&a, &b), l4, "u4 n={n}");
        }
        // The extremes: every product and square at its largest.
        let (a, b) = (vec![255u8; 4096], vec![0u8; 4096]);
        assert_eq!(l2_sq_u8(&a, &b), 4096 * 255 * 255);
        assert_eq!(l2_sq_u4(&a, &b), 2 * 4096 * 15 * 15);
        assert_eq!(
            dot_i8(&vec![-128i8; 4096], &vec![-128i8; 4096]),
            4096 * 16384
        );
    }

    #[test]
    fn packing_keeps_the_distance_of_the_codes() {
        let q = ScalarQuantizer::fit(&[-1.0, 3.0], 4);
        let (mut ca, mut cb) = (Vec::new(), Vec::new());
        q.encode(&[-1.0, 0.0, 1.0, 3.0, 2.0], &mut ca);
        q.encode(&[3.0, 0.0, -1.0, -1.0, 2.0], &mut cb);
        assert_eq!((ca[0], ca[3]), (0, 15));
        let expect: u32 = ca
            .iter()
            .zip(&cb)
            .map(|(x, y)| (*x as i32 - *y as i32).pow(2) as u32)
            .sum();
        let (mut pa, mut pb) = (Vec::new(), Vec::new());
        pack_u4(&ca, &mut pa);
        pack_u4(&cb, &mut pb);
        assert_eq!(pa.len(), 3);
        assert_eq!(l2_sq_u4(&pa, &pb), expect);
    }

    #[test]
    fn the_quantiser_spans_its_values() {
        let q = ScalarQuantizer::fit(&[0.5, -2.0, 8.0], 8);
        assert_eq!(q.code(-2.0), 0);
        assert_eq!(q.code(8.0), 255);
        assert_eq!(q.code(100.0), 255);
        assert_eq!(q.code(-100.0), 0);
        assert!((q.value(q.code(0.5)) - 0.5).abs() <= q.step / 2.0);
        let flat = ScalarQuantizer::fit(&[3.0; 4], 8);
        assert_eq!((flat.code(3.0), flat.value(0)), (0, 3.0));
        assert_eq!(ScalarQuantizer::fit(&[], 8).code(1.0), 1);
    }
}
