//! Little-endian byte writer and reader for `Kernel::save` / `Kernel::load`.
//!
//! Slices of `u32` and `f32` are copied in one go on little-endian targets
//! (WebAssembly and x86-64), so restoring a large index before each timed pass
//! stays cheap.

/// Appends values to a byte buffer.
pub struct ByteWriter<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> ByteWriter<'a> {
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        ByteWriter { out }
    }

    pub fn u8(&mut self, v: u8) {
        self.out.push(v);
    }

    pub fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    pub fn f32(&mut self, v: f32) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    /// Writes the length, then the values.
    pub fn u32s(&mut self, v: &[u32]) {
        self.u64(v.len() as u64);
        #[cfg(target_endian = "little")]
        // SAFETY: u32 has no padding and any byte pattern is a valid u8.
        self.out.extend_from_slice(unsafe {
            core::slice::from_raw_parts(v.as_ptr() as *const u8, size_of_val(v))
        });
        #[cfg(not(target_endian = "little"))]
        v.iter().for_each(|x| self.u32(*x));
    }

    /// Writes the length, then the values.
    pub fn f32s(&mut self, v: &[f32]) {
        self.u64(v.len() as u64);
        #[cfg(target_endian = "little")]
        // SAFETY: f32 has no padding and any byte pattern is a valid u8.
        self.out.extend_from_slice(unsafe {
            core::slice::from_raw_parts(v.as_ptr() as *const u8, size_of_val(v))
        });
        #[cfg(not(target_endian = "little"))]
        v.iter().for_each(|x| self.f32(*x));
    }

    /// Writes the length, then the bytes.
    pub fn bytes(&mut self, v: &[u8]) {
        self.u64(v.len() as u64);
        self.out.extend_from_slice(v);
    }
}

/// Reads values back in the order they were written. Running past the end
/// panics with a message naming what was being read: the bytes are the
/// kernel's own, so that is a bug in its `save` or `load`.
pub struct ByteReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> ByteReader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        ByteReader { bytes, pos: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> &'a [u8] {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            panic!(
                "saved index truncated: reading {what} needs {n} bytes at offset {}, {} left",
                self.pos,
                self.remaining()
            );
        };
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        s
    }

    fn array<const N: usize>(&mut self, what: &str) -> [u8; N] {
        self.take(N, what)
            .try_into()
            .expect("take returned N bytes")
    }

    pub fn u8(&mut self) -> u8 {
        self.array::<1>("u8")[0]
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array("u32"))
    }

    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array("u64"))
    }

    pub fn f32(&mut self) -> f32 {
        f32::from_le_bytes(self.array("f32"))
    }

    fn len(&mut self, elem: usize, what: &str) -> usize {
        let n = self.u64();
        match usize::try_from(n).ok().and_then(|n| n.checked_mul(elem)) {
            Some(bytes) if bytes <= self.remaining() => n as usize,
            _ => {
                panic!("saved index corrupt: {what} claims {n} elements, more than the bytes left")
            }
        }
    }

    pub fn u32s(&mut self) -> Vec<u32> {
        let n = self.len(4, "u32 slice");
        let raw = self.take(n * 4, "u32 slice");
        raw.chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("chunk of 4")))
            .collect()
    }

    pub fn f32s(&mut self) -> Vec<f32> {
        let n = self.len(4, "f32 slice");
        let raw = self.take(n * 4, "f32 slice");
        raw.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("chunk of 4")))
            .collect()
    }

    pub fn bytes(&mut self) -> &'a [u8] {
        let n = self.len(1, "byte slice");
        self.take(n, "byte slice")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut buf = Vec::new();
        let mut w = ByteWriter::new(&mut buf);
        w.u8(3);
        w.u32(0xdead_beef);
        w.u64(1 << 40);
        w.f32(-1.5);
        w.u32s(&[1, 2, 3]);
        w.f32s(&[0.25, f32::MAX]);
        w.bytes(b"xyz");
        let mut r = ByteReader::new(&buf);
        assert_eq!(r.u8(), 3);
        assert_eq!(r.u32(), 0xdead_beef);
        assert_eq!(r.u64(), 1 << 40);
        assert_eq!(r.f32(), -1.5);
        assert_eq!(r.u32s(), vec![1, 2, 3]);
        assert_eq!(r.f32s(), vec![0.25, f32::MAX]);
        assert_eq!(r.bytes(), b"xyz");
        assert_eq!(r.remaining(), 0);
    }

    #[test]
    #[should_panic(expected = "saved index truncated")]
    fn truncation_is_named() {
        ByteReader::new(&[1, 2]).u32();
    }

    #[test]
    #[should_panic(expected = "saved index corrupt")]
    fn absurd_length_is_refused_before_allocating() {
        let mut buf = Vec::new();
        ByteWriter::new(&mut buf).u64(u64::MAX / 2);
        ByteReader::new(&buf).f32s();
    }
}
