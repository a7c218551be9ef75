//! What the benchmark's environment variables ask for, read from their values.

use anyhow::{Context, Result, bail};

/// The revision the scale part compares against when `BENCH_BASELINE` is unset: the commit
/// before, so that a run shows what the last change did.
pub const DEFAULT_BASELINE: &str = "HEAD~1";

/// The numbers of Databases the scale part runs with, one run each: `BENCH_SIZES`
/// (comma-separated), else `BENCH_OBJECTS` (one size, as before there were several), else
/// 100 and 1,000.
pub fn sizes(sizes: Option<&str>, objects: Option<&str>) -> Result<Vec<usize>> {
    let (name, list) = match (sizes, objects) {
        (Some(list), _) => ("BENCH_SIZES", list),
        (None, Some(one)) => ("BENCH_OBJECTS", one),
        (None, None) => return Ok(vec![100, 1000]),
    };
    let parsed = list
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            item.parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .with_context(|| format!("{name}={list:?}: {item:?} is not a positive number"))
        })
        .collect::<Result<Vec<_>>>()?;
    if parsed.is_empty() {
        bail!("{name}={list:?} names no size");
    }
    Ok(parsed)
}

/// The git revision to build and measure beside this tree (`BENCH_BASELINE`), or `None` when
/// it is empty or `none`.
pub fn baseline(value: Option<&str>) -> Option<String> {
    match value.map(str::trim) {
        None => Some(DEFAULT_BASELINE.to_string()),
        Some("" | "none") => None,
        Some(revision) => Some(revision.to_string()),
    }
}

/// The other implementation the scale part measures beside ours (`BENCH_COMPARE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compare {
    /// `bench/controller-runtime`, the default.
    ControllerRuntime,
}

impl Compare {
    /// The value that asks for it, also the label of its columns.
    pub fn name(self) -> &'static str {
        match self {
            Compare::ControllerRuntime => "controller-runtime",
        }
    }
}

/// What `BENCH_COMPARE` asks for: `controller-runtime` when unset, nothing for `none` or an
/// empty value; anything else is refused, so that a typo does not silently skip a run.
pub fn compare(value: Option<&str>) -> Result<Option<Compare>> {
    match value.map(str::trim) {
        None | Some("controller-runtime") => Ok(Some(Compare::ControllerRuntime)),
        Some("" | "none") => Ok(None),
        Some(other) => {
            bail!("BENCH_COMPARE={other:?}: expected `controller-runtime` or `none`")
        }
    }
}

/// The whole number in the setting `name` (`value`, from the environment), or `default` when
/// it is unset or empty.
pub fn number<T: std::str::FromStr>(name: &str, value: Option<&str>, default: T) -> Result<T> {
    match value.map(str::trim) {
        None | Some("") => Ok(default),
        Some(value) => value
            .parse()
            .ok()
            .with_context(|| format!("{name}={value:?} is not a whole number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_default_to_a_hundred_and_a_thousand() {
        assert_eq!(sizes(None, None).unwrap(), [100, 1000]);
    }

    #[test]
    fn sizes_come_from_the_list_before_the_single_size() {
        assert_eq!(sizes(Some("50, 500,"), Some("7")).unwrap(), [50, 500]);
        assert_eq!(sizes(None, Some("7")).unwrap(), [7]);
    }

    #[test]
    fn sizes_that_are_not_positive_numbers_are_refused() {
        let error = sizes(Some("100,lots"), None).unwrap_err().to_string();
        assert!(
            error.contains("BENCH_SIZES") && error.contains("lots"),
            "{error}"
        );
        assert!(sizes(None, Some("0")).is_err());
        assert!(sizes(Some(" , "), None).is_err());
    }

    #[test]
    fn baseline_defaults_to_the_commit_before_and_can_be_skipped() {
        assert_eq!(baseline(None).as_deref(), Some("HEAD~1"));
        assert_eq!(baseline(Some("f53b16a")).as_deref(), Some("f53b16a"));
        assert_eq!(baseline(Some("")), None);
        assert_eq!(baseline(Some("none")), None);
    }

    #[test]
    fn compare_defaults_to_controller_runtime_and_can_be_skipped() {
        assert_eq!(compare(None).unwrap(), Some(Compare::ControllerRuntime));
        assert_eq!(
            compare(Some(" controller-runtime ")).unwrap(),
            Some(Compare::ControllerRuntime)
        );
        assert_eq!(compare(Some("none")).unwrap(), None);
        assert_eq!(compare(Some("")).unwrap(), None);
        let error = compare(Some("kopf")).unwrap_err().to_string();
        assert!(
            error.contains("BENCH_COMPARE") && error.contains("kopf"),
            "{error}"
        );
        assert_eq!(Compare::ControllerRuntime.name(), "controller-runtime");
    }
}
