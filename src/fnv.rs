//! The 64-bit FNV-1a hash (draft-eastlake-fnv): stable across builds, platforms and languages
//! (std's hasher is not), and a few lines to write again anywhere, so that others can
//! reproduce what apollo derives from it (a video's sample hash, a path's shard).

/// FNV-1a state: the offset basis, then each byte XORed in and multiplied by the FNV prime.
pub struct Fnv1a(pub u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// The hash of `bytes` alone.
    pub fn of(bytes: &[u8]) -> u64 {
        let mut hash = Self::default();
        hash.write(bytes);
        hash.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_is_the_published_function() {
        // Test vectors of the FNV reference (draft-eastlake-fnv).
        assert_eq!(Fnv1a::of(b""), 0xcbf29ce484222325);
        assert_eq!(Fnv1a::of(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(Fnv1a::of(b"foobar"), 0x85944171f73967e8);
    }
}
