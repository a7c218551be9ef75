//! The ETag S3 gives a multipart upload, computed on our side from the bytes sent.
//!
//! For an object uploaded in parts without SSE-KMS or SSE-C, S3 acknowledges each part with
//! the MD5 of its bytes, and the completed object with the MD5 of those part MD5s
//! (concatenated, binary) followed by `-<number of parts>`; MinIO, Ceph RGW and s3s do the
//! same. Computing that value from what was sent and comparing it with what the store
//! answered checks, without downloading anything, that the store took every part whole and
//! in order. Other stores (SSE-KMS, some S3-compatible servers) use other ETags, which is
//! why a mismatch only means "read it back to be sure", never "it is corrupt".

use md5::{Digest as _, Md5};
use std::fmt;

/// MD5 of each part of a stream cut into parts of a fixed size, the way
/// `object_store::WriteMultipart` cuts it: every part full but the last.
pub struct PartHasher {
    part_size: usize,
    current: Md5,
    in_current: usize,
    parts: Vec<[u8; 16]>,
}

impl PartHasher {
    pub fn new(part_size: usize) -> Self {
        assert!(part_size > 0, "parts have at least one byte");
        Self {
            part_size,
            current: Md5::new(),
            in_current: 0,
            parts: Vec::new(),
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = data.len().min(self.part_size - self.in_current);
            self.current.update(&data[..take]);
            self.in_current += take;
            data = &data[take..];
            if self.in_current == self.part_size {
                self.finish_part();
            }
        }
    }

    fn finish_part(&mut self) {
        let part = std::mem::take(&mut self.current).finalize();
        self.parts.push(part.into());
        self.in_current = 0;
    }

    /// The ETag of the completed upload. An upload of nothing still has one (empty) part:
    /// S3 refuses to complete an upload without parts, so `object_store` sends an empty one.
    pub fn finish(mut self) -> MultipartEtag {
        if self.in_current > 0 || self.parts.is_empty() {
            self.finish_part();
        }
        let mut of_parts = Md5::new();
        for part in &self.parts {
            of_parts.update(part);
        }
        MultipartEtag {
            md5_of_parts: of_parts.finalize().into(),
            parts: self.parts.len(),
        }
    }
}

/// `<hex MD5 of the part MD5s>-<parts>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartEtag {
    md5_of_parts: [u8; 16],
    parts: usize,
}

impl fmt::Display for MultipartEtag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", hex::encode(self.md5_of_parts), self.parts)
    }
}

impl MultipartEtag {
    /// Whether the store's ETag is this one. `Err` says why not: an ETag of another form
    /// (or none), or one of this form with another value.
    pub fn confirms(&self, answered: Option<&str>) -> Result<(), String> {
        let Some(answered) = answered else {
            return Err("the store answered without an ETag".into());
        };
        let value = unquote(answered);
        if !is_multipart_form(value) {
            return Err(format!(
                "the store's ETag {answered} is not of the form <MD5 of the part MD5s>-<parts>"
            ));
        }
        if !value.eq_ignore_ascii_case(&self.to_string()) {
            return Err(format!(
                "the store's ETag {answered} differs from {self}, the ETag of the parts sent"
            ));
        }
        Ok(())
    }
}

/// The value of an ETag without its quotes; a weak one (`W/"..."`) is left as it is, so it
/// never passes for a strong one.
pub fn unquote(etag: &str) -> &str {
    let etag = etag.trim();
    etag.strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or(etag)
}

fn is_multipart_form(value: &str) -> bool {
    let Some((digest, parts)) = value.split_once('-') else {
        return false;
    };
    digest.len() == 32
        && digest.bytes().all(|byte| byte.is_ascii_hexdigit())
        && !parts.is_empty()
        && parts.bytes().all(|byte| byte.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md5(data: &[u8]) -> [u8; 16] {
        Md5::digest(data).into()
    }

    /// The rule written out once by hand, to check the streaming version against.
    fn by_hand(parts: &[&[u8]]) -> String {
        let mut concatenated = Vec::new();
        for part in parts {
            concatenated.extend_from_slice(&md5(part));
        }
        format!("{}-{}", hex::encode(md5(&concatenated)), parts.len())
    }

    #[test]
    fn chunks_of_any_size_give_the_etag_of_the_parts() {
        let data: Vec<u8> = (0..=255u8).cycle().take(10 * 7 + 3).collect();
        let expected = by_hand(&data.chunks(10).collect::<Vec<_>>());
        for chunk in [1, 3, 10, 11, 73, 100] {
            let mut hasher = PartHasher::new(10);
            for piece in data.chunks(chunk) {
                hasher.update(piece);
            }
            assert_eq!(hasher.finish().to_string(), expected, "chunk size {chunk}");
        }
    }

    #[test]
    fn an_exact_multiple_of_the_part_size_has_no_empty_last_part() {
        let mut hasher = PartHasher::new(4);
        hasher.update(b"abcdefgh");
        assert_eq!(hasher.finish().to_string(), by_hand(&[b"abcd", b"efgh"]));
    }

    #[test]
    fn nothing_is_one_empty_part() {
        let etag = PartHasher::new(4).finish();
        assert_eq!(etag.to_string(), by_hand(&[b""]));
        assert!(etag.to_string().ends_with("-1"));
    }

    #[test]
    fn the_store_confirms_only_the_same_etag_in_the_multipart_form() {
        let mut hasher = PartHasher::new(4);
        hasher.update(b"abcdef");
        let etag = hasher.finish();
        let text = etag.to_string();
        assert_eq!(etag.confirms(Some(&format!("\"{text}\""))), Ok(()));
        assert_eq!(etag.confirms(Some(&text.to_uppercase())), Ok(()));

        let other = format!("{}-2", "0".repeat(32));
        assert!(etag.confirms(Some(&other)).unwrap_err().contains("differs"));
        for unrecognized in [
            format!("W/\"{text}\""),
            text[..32].to_owned(),
            format!("{}-", &text[..32]),
            "not-an-etag".to_owned(),
        ] {
            let reason = etag.confirms(Some(&unrecognized)).unwrap_err();
            assert!(
                reason.contains("not of the form"),
                "{unrecognized}: {reason}"
            );
        }
        assert!(etag.confirms(None).unwrap_err().contains("without an ETag"));
    }
}
