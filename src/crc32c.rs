//! CRC-32 with the Castagnoli polynomial, as etcd uses for `hashkv` and `snapshot status`,
//! computed by the `crc32c` crate (SSE 4.2 / ARMv8 instructions where the CPU has them).

/// A running CRC-32C (Go's `crc32.MakeTable(crc32.Castagnoli)`), fed piece by piece.
#[derive(Debug, Default, Clone, Copy)]
pub struct Crc32c(u32);

impl Crc32c {
    /// A fresh checksum.
    pub fn new() -> Self {
        Self(0)
    }

    /// Adds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0 = ::crc32c::crc32c_append(self.0, data);
    }

    /// The checksum.
    pub fn finish(&self) -> u32 {
        self.0
    }
}
