//! CRC-32 with the Castagnoli polynomial, as etcd uses for `hashkv` and `snapshot status`.

/// CRC-32 with the Castagnoli polynomial (Go's `crc32.MakeTable(crc32.Castagnoli)`).
pub struct Crc32c(u32);

/// The reflected Castagnoli polynomial.
const CASTAGNOLI: u32 = 0x82F6_3B78;

#[allow(clippy::cast_possible_truncation)] // i < 256
static CRC32C_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ CASTAGNOLI
            } else {
                c >> 1
            };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

impl Crc32c {
    /// A fresh checksum.
    pub fn new() -> Self {
        Self(!0)
    }

    /// Adds bytes.
    pub fn update(&mut self, data: &[u8]) {
        let mut c = self.0;
        for &b in data {
            c = CRC32C_TABLE[usize::from(c.to_le_bytes()[0] ^ b)] ^ (c >> 8);
        }
        self.0 = c;
    }

    /// The checksum.
    pub fn finish(&self) -> u32 {
        !self.0
    }
}

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}
