//! Redaction: Secrets lose their values, and every file loses any text equal to one of them.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;

use super::Entry;

pub const REDACTED: &str = "REDACTED";

/// Values shorter than this are not searched for: replacing every `1` or `true` in the
/// bundle would hide more than it protects. Such values are still redacted in the Secrets.
const SHORTEST_SCRUBBED: usize = 6;

/// The Secret with every value in `data` and `stringData` replaced, and the annotation
/// kubectl keeps a copy of applied objects in removed (it holds the values too).
pub fn secret(mut secret: Secret) -> Secret {
    if let Some(data) = &mut secret.data {
        for value in data.values_mut() {
            *value = ByteString(REDACTED.as_bytes().to_vec());
        }
    }
    if let Some(data) = &mut secret.string_data {
        for value in data.values_mut() {
            *value = REDACTED.into();
        }
    }
    if let Some(annotations) = &mut secret.metadata.annotations {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
    secret.metadata.managed_fields = None;
    secret
}

/// Every value of `secrets`, as text and as base64, for [`scrub`].
pub fn values(secrets: &[Secret]) -> Vec<String> {
    let mut out = Vec::new();
    for secret in secrets {
        let data = secret
            .data
            .iter()
            .flat_map(BTreeMap::values)
            .map(|v| v.0.clone());
        let string_data = secret
            .string_data
            .iter()
            .flat_map(BTreeMap::values)
            .map(|v| v.as_bytes().to_vec());
        for bytes in data.chain(string_data) {
            if let Ok(text) = String::from_utf8(bytes.clone()) {
                out.push(text);
            }
            out.push(base64(&bytes));
        }
    }
    out.retain(|v| v.len() >= SHORTEST_SCRUBBED);
    // Longest first, so a value containing another is replaced whole.
    out.sort_by_key(|v| std::cmp::Reverse(v.len()));
    out.dedup();
    out
}

pub fn scrub(entries: Vec<Entry>, values: &[String]) -> Vec<Entry> {
    entries
        .into_iter()
        .map(|mut entry| {
            for value in values {
                if entry.text.contains(value.as_str()) {
                    entry.text = entry.text.replace(value.as_str(), REDACTED);
                }
            }
            entry
        })
        .collect()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn credentials() -> Secret {
        serde_json::from_value(json!({
            "metadata": {"name": "shop-credentials", "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{\"stringData\":{\"password\":\"s3cr3t-pass\"}}"}},
            "data": {"password": base64(b"s3cr3t-pass"), "port": base64(b"5432")}
        }))
        .unwrap()
    }

    #[test]
    fn base64_matches_the_api_encoding() {
        for (bytes, want) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
        ] {
            assert_eq!(base64(bytes), want);
        }
    }

    #[test]
    fn secrets_keep_their_keys_and_lose_their_values() {
        let redacted = secret(credentials());
        let text = serde_yaml::to_string(&redacted).unwrap();
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(!text.contains(&base64(b"s3cr3t-pass")), "{text}");
        assert!(!text.contains("last-applied"), "{text}");
        assert_eq!(redacted.data.unwrap()["port"].0, REDACTED.as_bytes());
    }

    #[test]
    fn every_file_is_scrubbed_of_every_long_value() {
        let values = values(&[credentials()]);
        let entries = vec![Entry {
            path: "logs/shop-0/postgres.log".into(),
            text: format!(
                "LOG: password s3cr3t-pass in {} port 5432",
                base64(b"s3cr3t-pass")
            ),
        }];
        let scrubbed = scrub(entries, &values);
        assert_eq!(
            scrubbed[0].text,
            "LOG: password REDACTED in REDACTED port 5432"
        );
    }
}
