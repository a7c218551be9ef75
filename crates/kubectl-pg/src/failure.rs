//! The one-line errors: what is wrong and what to do, from whatever failed.

use std::fmt;

/// A failure the user reads: one line, no backtrace.
#[derive(Debug)]
pub struct Failure(String);

impl Failure {
    pub fn new(message: impl Into<String>) -> Self {
        Failure(one_line(&message.into()))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Joins the lines of a message, so an error from a library stays one line.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What a failed API call was about, for the message.
pub struct Call<'a> {
    /// e.g. `get`, `list`, `patch`.
    pub verb: &'a str,
    /// Kind as the user knows it, e.g. `Database`.
    pub kind: &'a str,
    /// The object's name; `None` for a list.
    pub name: Option<&'a str>,
    pub namespace: &'a str,
}

impl Call<'_> {
    /// The message for `error`: missing objects, refusals by RBAC and an unreachable API
    /// server each say what to do about them.
    pub fn failed(&self, error: kube::Error) -> Failure {
        let Call {
            verb,
            kind,
            name,
            namespace,
        } = self;
        let what = match name {
            Some(name) => format!("{kind} {name}"),
            None => format!("{kind}s"),
        };
        match error {
            kube::Error::Api(status) if status.code == 404 && is_missing_type(&status.message) => {
                Failure::new(format!(
                    "the API server does not know {kind}s: the database.example.com CRDs are not installed \
                     (install the operators' charts or apply deploy/crds)"
                ))
            }
            kube::Error::Api(status) if status.code == 404 => Failure::new(format!(
                "no {what} in namespace {namespace}: check the name, or pass -n NAMESPACE \
                 (`kubectl pg status -n {namespace}` lists the Databases)"
            )),
            kube::Error::Api(status) if status.code == 403 => Failure::new(format!(
                "not permitted by RBAC to {verb} {what} in namespace {namespace}: {}; \
                 ask your cluster administrator for that right",
                status.message.trim_end_matches('.')
            )),
            kube::Error::Api(status) if status.code == 401 => Failure::new(
                "the API server did not accept your credentials: log in again or fix your kubeconfig",
            ),
            kube::Error::Api(status) => Failure::new(format!(
                "could not {verb} {what} in namespace {namespace}: {} ({})",
                status.message, status.reason
            )),
            kube::Error::HyperError(_) | kube::Error::Service(_) => Failure::new(format!(
                "cannot reach the Kubernetes API server ({}): check that the cluster runs and that \
                 KUBECONFIG/--context point at it",
                one_line(&error.to_string())
            )),
            other => Failure::new(format!(
                "could not {verb} {what} in namespace {namespace}: {}",
                one_line(&other.to_string())
            )),
        }
    }
}

/// A 404 for the resource type itself rather than for one object of it.
fn is_missing_type(message: &str) -> bool {
    message.contains("could not find the requested resource")
}

/// The error mapper for `Call { .. }`, for `map_err`.
pub fn call<'a>(
    verb: &'a str,
    kind: &'a str,
    name: Option<&'a str>,
    namespace: &'a str,
) -> impl FnOnce(kube::Error) -> Failure + 'a {
    move |error| {
        Call {
            verb,
            kind,
            name,
            namespace,
        }
        .failed(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(Status::failure(message, "Reason").with_code(code).boxed())
    }

    #[test]
    fn each_failure_is_one_line_that_says_what_to_do() {
        let rows = [
            (
                api(404, "databases.database.example.com \"x\" not found"),
                "no Database shop in namespace prod",
            ),
            (
                api(404, "the server could not find the requested resource"),
                "CRDs are not installed",
            ),
            (
                api(
                    403,
                    "databases.database.example.com \"shop\" is forbidden: User \"bob\" cannot get resource",
                ),
                "not permitted by RBAC to get Database shop in namespace prod: databases.database.example.com",
            ),
            (api(401, "Unauthorized"), "log in again"),
        ];
        for (error, want) in rows {
            let message = call("get", "Database", Some("shop"), "prod")(error).to_string();
            assert!(message.contains(want), "{message:?} lacks {want:?}");
            assert!(!message.contains('\n'), "{message:?}");
        }
    }

    #[test]
    fn messages_are_joined_into_one_line() {
        assert_eq!(Failure::new("a\n  b\tc").to_string(), "a b c");
    }
}
