//! A request as the mocked API server saw it.

use http::Method;
use kube::client::Body;
use serde_json::Value;

#[derive(Clone, Debug)]
pub struct Request {
    pub method: Method,
    pub path: String,
    /// As sent, percent-encoded.
    pub query: String,
    /// `Null` when the request had no JSON body.
    pub body: Value,
}

impl Request {
    pub(super) async fn read(request: http::Request<Body>) -> Request {
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let query = request.uri().query().unwrap_or_default().to_string();
        let bytes = request
            .into_body()
            .collect_bytes()
            .await
            .unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Request {
            method,
            path,
            query,
            body,
        }
    }

    /// `METHOD /path?query`, the form tests assert on.
    pub fn line(&self) -> String {
        if self.query.is_empty() {
            format!("{} {}", self.method, self.path)
        } else {
            format!("{} {}?{}", self.method, self.path, self.query)
        }
    }

    /// The query percent-decoded, for matching label selectors by their text.
    pub fn decoded_query(&self) -> String {
        decode(&self.query)
    }
}

fn decode(query: &str) -> String {
    let mut out = Vec::new();
    let bytes = query.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn selectors_decode_to_their_text() {
        assert_eq!(
            decode("labelSelector=a%2Fb%3Dc%2Cd%3De&x=y+z"),
            "labelSelector=a/b=c,d=e&x=y z"
        );
    }
}
