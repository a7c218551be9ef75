//! SHA-256 and byte count of a stream, computed as it passes through.

use sha2::{Digest as _, Sha256};

/// What identifies an artifact's content: checked on verify and on restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentDigest {
    pub size_bytes: u64,
    /// Lowercase hex.
    pub sha256: String,
}

/// Feeds every chunk of a stream; cheap enough to sit on the hot path.
#[derive(Default)]
pub struct DigestWriter {
    hasher: Sha256,
    size_bytes: u64,
}

impl DigestWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
        self.size_bytes += chunk.len() as u64;
    }

    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    pub fn finish(self) -> ContentDigest {
        ContentDigest {
            size_bytes: self.size_bytes,
            sha256: hex::encode(self.hasher.finalize()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_input_gives_the_digest_of_the_whole() {
        let mut digest = DigestWriter::new();
        digest.update(b"ab");
        digest.update(b"c");
        let result = digest.finish();
        assert_eq!(result.size_bytes, 3);
        assert_eq!(
            result.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
