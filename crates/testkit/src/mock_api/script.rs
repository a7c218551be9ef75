//! Scripted answers: each expected request, in order, with its reply.

use http::Method;
use kube::client::Body;
use serde_json::{Value, json};

use super::request::Request;
use super::response;

pub enum Reply {
    /// 200 with this object.
    Json(Value),
    /// 201 with the request's body, as a create or apply answers.
    Echo,
    /// An API error with this code.
    Status(u16),
    /// 200 with this object after the request's fields (`spec`, `status`, ...) are set over
    /// it, as the API server answers an apply or a status patch.
    Applied(Value),
}

pub struct Expect {
    pub method: Method,
    pub path: String,
    /// Text the decoded query must contain, e.g. a label selector.
    pub query: Option<&'static str>,
    pub reply: Reply,
}

/// The next request is `method path`, answered with `reply`.
pub fn expect(method: Method, path: &str, reply: Reply) -> Expect {
    Expect {
        method,
        path: path.into(),
        query: None,
        reply,
    }
}

impl Expect {
    pub fn with_query(mut self, query: &'static str) -> Self {
        self.query = Some(query);
        self
    }
}

/// A list response.
pub fn list(kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "1"}, "items": items})
}

/// Answers `request` with `expected`, or says how it differs from what the script expected.
pub(super) fn answer(
    expected: Option<Expect>,
    request: &Request,
) -> Result<http::Response<Body>, String> {
    let Some(expected) = expected else {
        return Err(format!("{} after the script ended", request.line()));
    };
    if (&request.method, request.path.as_str()) != (&expected.method, expected.path.as_str()) {
        return Err(format!(
            "{} where {} {} was expected; body: {}",
            request.line(),
            expected.method,
            expected.path,
            request.body
        ));
    }
    if let Some(want) = expected.query
        && !request.decoded_query().contains(want)
    {
        return Err(format!("{} lacks {want}", request.line()));
    }
    Ok(match expected.reply {
        Reply::Json(value) => response::json(200, &value),
        Reply::Echo => response::json(201, &request.body),
        Reply::Applied(mut object) => {
            if let Some(fields) = request.body.as_object() {
                for (field, value) in fields {
                    if !matches!(field.as_str(), "apiVersion" | "kind" | "metadata") {
                        object[field] = value.clone();
                    }
                }
            }
            response::json(200, &object)
        }
        Reply::Status(code) => {
            let reason = response::reason(code);
            response::status(code, reason, reason)
        }
    })
}
