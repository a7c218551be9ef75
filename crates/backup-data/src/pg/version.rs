//! PostgreSQL versions as the server (`server_version_num`) and the client programs
//! (`pg_dump --version`) report them. Which compression a dump may use, and whether a
//! pg_restore can read an artifact, depend on the major version.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PgVersion {
    pub major: u32,
    pub minor: u32,
}

impl fmt::Display for PgVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read a PostgreSQL version from {0:?}")]
pub struct UnreadableVersion(pub String);

impl PgVersion {
    /// `SHOW server_version_num`: `170002` is 17.2; before 10 it was `90624` for 9.6.24.
    pub fn from_version_num(text: &str) -> Result<Self, UnreadableVersion> {
        let number: u32 = text
            .trim()
            .parse()
            .map_err(|_| UnreadableVersion(text.into()))?;
        if number >= 100_000 {
            Ok(Self {
                major: number / 10_000,
                minor: number % 10_000,
            })
        } else if number >= 10_000 {
            // 9.6 is major 9 here: everything this module decides treats it as old.
            Ok(Self {
                major: number / 10_000,
                minor: number / 100 % 100,
            })
        } else {
            Err(UnreadableVersion(text.into()))
        }
    }

    /// `pg_dump (PostgreSQL) 17.2 (Debian 17.2-1.pgdg120+1)`, `pg_restore (PostgreSQL) 18beta1`
    /// or, as the manifest records it, `17.2`: the first token that starts with a digit.
    pub fn from_tool_output(text: &str) -> Result<Self, UnreadableVersion> {
        let token = text
            .split_whitespace()
            .find(|token| token.starts_with(|c: char| c.is_ascii_digit()))
            .ok_or_else(|| UnreadableVersion(text.trim().into()))?;
        let mut numbers = token
            .split(|c: char| !c.is_ascii_digit())
            .filter(|part| !part.is_empty());
        let major: u32 = numbers
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| UnreadableVersion(text.trim().into()))?;
        // `18beta1` has no minor; its `1` belongs to the beta.
        let minor = if token[major.to_string().len()..].starts_with('.') {
            numbers.next().and_then(|n| n.parse().ok()).unwrap_or(0)
        } else {
            0
        };
        Ok(Self { major, minor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_version_numbers() {
        let cases = [
            ("170002", 17, 2),
            ("160010\n", 16, 10),
            ("100023", 10, 23),
            ("90624", 9, 6),
        ];
        for (text, major, minor) in cases {
            assert_eq!(
                PgVersion::from_version_num(text).unwrap(),
                PgVersion { major, minor },
                "{text}"
            );
        }
        assert!(PgVersion::from_version_num("17.2").is_err());
        assert!(PgVersion::from_version_num("").is_err());
    }

    #[test]
    fn tool_version_lines() {
        let cases = [
            ("pg_dump (PostgreSQL) 17.11\n", 17, 11),
            ("pg_dump (PostgreSQL) 17.2 (Debian 17.2-1.pgdg120+1)", 17, 2),
            (
                "pg_restore (PostgreSQL) 15.8 (Debian 15.8-0+deb12u1)",
                15,
                8,
            ),
            ("pg_restore (PostgreSQL) 18beta1", 18, 0),
            ("17.2", 17, 2),
        ];
        for (text, major, minor) in cases {
            assert_eq!(
                PgVersion::from_tool_output(text).unwrap(),
                PgVersion { major, minor },
                "{text}"
            );
        }
        assert!(PgVersion::from_tool_output("pg_dump (PostgreSQL)").is_err());
    }

    #[test]
    fn versions_order_by_major_then_minor() {
        let v = |major, minor| PgVersion { major, minor };
        assert!(v(17, 0) > v(16, 10));
        assert!(v(16, 2) > v(16, 1));
        assert_eq!(v(17, 2).to_string(), "17.2");
    }
}
