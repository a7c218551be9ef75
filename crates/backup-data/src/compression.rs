//! How a dump is compressed: the setting as the Job receives it (`zstd`, `gzip:6`, `none`),
//! the choice made when none is given, and the `pg_dump --compress` argument. Pure, so the
//! rules are tested without a server.

use crate::pg::PgVersion;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

/// pg_dump 16 added lz4 and zstd to its custom and directory formats, and the
/// `METHOD[:DETAIL]` syntax of `--compress`.
pub const METHODS_SINCE_MAJOR: u32 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    Zstd,
    Lz4,
    Gzip,
    None,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Zstd => "zstd",
            Self::Lz4 => "lz4",
            Self::Gzip => "gzip",
            Self::None => "none",
        }
    }

    /// The levels pg_dump accepts for the algorithm; `None` takes no level. zstd's negative
    /// "fast" levels are left out: at level 1 it already outruns the server's COPY.
    pub fn levels(self) -> Option<RangeInclusive<i32>> {
        match self {
            Self::Zstd => Some(1..=22),
            Self::Lz4 => Some(1..=12),
            Self::Gzip => Some(1..=9),
            Self::None => None,
        }
    }

    /// The oldest PostgreSQL major whose pg_dump writes, and pg_restore reads, this algorithm.
    pub fn needs_major(self) -> u32 {
        match self {
            Self::Zstd | Self::Lz4 => METHODS_SINCE_MAJOR,
            Self::Gzip | Self::None => 0,
        }
    }
}

/// An algorithm and, optionally, its level (the tool's default when unset).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compression {
    pub algorithm: Algorithm,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<i32>,
}

impl Compression {
    /// What the default Backup uses where the tools allow it: zstd at level 1. Measured
    /// with pg_dump 17 on 2 cores (docs/performance.md): on pgbench rows it writes a third of
    /// gzip's size at the speed of the server's COPY, which bounds the dump; on data that
    /// hardly compresses (hex of random bytes) it is ten times faster than gzip's default
    /// and four times faster than zstd's own default level 3, and no larger.
    pub const DEFAULT: Self = Self {
        algorithm: Algorithm::Zstd,
        level: Some(1),
    };
    /// What older tools fall back to: pg_dump's own default, readable by every pg_restore.
    pub const FALLBACK: Self = Self {
        algorithm: Algorithm::Gzip,
        level: None,
    };
    /// What a manifest without a compression field was written with (pg_dump -Fc's default).
    pub const LEGACY: Self = Self::FALLBACK;

    /// The `--compress` argument for pg_dump of major `client`. Older pg_dumps know only a
    /// gzip level (0 meaning none); callers check [`Algorithm::needs_major`] first.
    pub fn pg_dump_arg(&self, client: u32) -> String {
        if client >= METHODS_SINCE_MAJOR {
            match self.level {
                Some(level) => format!("--compress={}:{level}", self.algorithm.as_str()),
                None => format!("--compress={}", self.algorithm.as_str()),
            }
        } else {
            match (self.algorithm, self.level) {
                (Algorithm::None, _) => "--compress=0".into(),
                // zlib's default level, what pg_dump -Fc uses without -Z.
                (_, level) => format!("--compress={}", level.unwrap_or(6)),
            }
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.level {
            Some(level) => write!(f, "{}:{level}", self.algorithm.as_str()),
            None => f.write_str(self.algorithm.as_str()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompressionError {
    #[error("unknown compression {0:?}: use zstd, lz4, gzip or none, optionally with :LEVEL")]
    Unknown(String),

    #[error("compression {algorithm} takes no level")]
    NoLevel { algorithm: &'static str },

    #[error("compression level {level} is out of range for {algorithm}: use {min} to {max}")]
    Level {
        algorithm: &'static str,
        level: i32,
        min: i32,
        max: i32,
    },

    #[error(
        "compression {algorithm} needs pg_dump {needs} or newer, but the client is pg_dump {client}: use the operator's backup image (PostgreSQL 17 tools) or choose gzip"
    )]
    ClientTooOld {
        algorithm: &'static str,
        needs: u32,
        client: PgVersion,
    },
}

impl FromStr for Compression {
    type Err = CompressionError;

    /// `ALGORITHM` or `ALGORITHM:LEVEL`, as in the Job's environment.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (name, level) = match text.split_once(':') {
            Some((name, level)) => (name, Some(level)),
            None => (text, None),
        };
        let algorithm = match name.trim().to_ascii_lowercase().as_str() {
            "zstd" => Algorithm::Zstd,
            "lz4" => Algorithm::Lz4,
            "gzip" => Algorithm::Gzip,
            "none" => Algorithm::None,
            _ => return Err(CompressionError::Unknown(text.into())),
        };
        let level = level
            .map(|level| {
                level
                    .trim()
                    .parse::<i32>()
                    .map_err(|_| CompressionError::Unknown(text.into()))
            })
            .transpose()?;
        let compression = Self { algorithm, level };
        compression.check_level()?;
        Ok(compression)
    }
}

impl Compression {
    fn check_level(&self) -> Result<(), CompressionError> {
        let algorithm = self.algorithm.as_str();
        match (self.algorithm.levels(), self.level) {
            (_, None) => Ok(()),
            (None, Some(_)) => Err(CompressionError::NoLevel { algorithm }),
            (Some(range), Some(level)) if !range.contains(&level) => Err(CompressionError::Level {
                algorithm,
                level,
                min: *range.start(),
                max: *range.end(),
            }),
            (Some(_), Some(_)) => Ok(()),
        }
    }
}

/// The compression a run uses, and why it is not the default when it is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub compression: Compression,
    /// Set when the default could not be used; the Backup's status shows it.
    pub note: Option<String>,
}

/// What to compress with. An explicit setting is used as given when pg_dump can write it
/// (the compression happens in pg_dump, whatever the server). Without one, zstd when both
/// the server and pg_dump are PostgreSQL 16 or newer, else gzip with a note: a Database
/// still on an older PostgreSQL keeps the compression every pg_restore reads, and its
/// owners are told why it is not the default.
pub fn choose(
    requested: Option<Compression>,
    client: &PgVersion,
    server: &PgVersion,
) -> Result<Choice, CompressionError> {
    if let Some(compression) = requested {
        compression.check_level()?;
        let needs = compression.algorithm.needs_major();
        if client.major < needs {
            return Err(CompressionError::ClientTooOld {
                algorithm: compression.algorithm.as_str(),
                needs,
                client: client.clone(),
            });
        }
        return Ok(Choice {
            compression,
            note: None,
        });
    }
    let needs = Compression::DEFAULT.algorithm.needs_major();
    if client.major >= needs && server.major >= needs {
        return Ok(Choice {
            compression: Compression::DEFAULT,
            note: None,
        });
    }
    let older = if server.major < needs {
        format!("the server runs PostgreSQL {server}")
    } else {
        format!("pg_dump is version {client}")
    };
    Ok(Choice {
        compression: Compression::FALLBACK,
        note: Some(format!(
            "compressed with gzip instead of the default zstd, which needs PostgreSQL {needs} or newer on the server and in pg_dump: {older}"
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(major: u32) -> PgVersion {
        PgVersion { major, minor: 2 }
    }

    #[test]
    fn settings_parse_with_and_without_a_level() {
        let cases = [
            ("zstd", Algorithm::Zstd, None),
            ("zstd:19", Algorithm::Zstd, Some(19)),
            ("LZ4:1", Algorithm::Lz4, Some(1)),
            ("gzip:9", Algorithm::Gzip, Some(9)),
            ("none", Algorithm::None, None),
        ];
        for (text, algorithm, level) in cases {
            let parsed: Compression = text.parse().unwrap();
            assert_eq!(parsed, Compression { algorithm, level }, "{text}");
        }
        assert_eq!(
            Compression::from_str("zstd:19").unwrap().to_string(),
            "zstd:19"
        );
    }

    #[test]
    fn bad_settings_say_what_is_accepted() {
        let cases = [
            ("brotli", "use zstd, lz4, gzip or none"),
            ("zstd:fast", "use zstd, lz4, gzip or none"),
            ("zstd:23", "use 1 to 22"),
            ("lz4:13", "use 1 to 12"),
            ("gzip:0", "use 1 to 9"),
            ("none:1", "none takes no level"),
        ];
        for (text, message) in cases {
            let error = Compression::from_str(text).unwrap_err().to_string();
            assert!(error.contains(message), "{text}: {error}");
        }
    }

    #[test]
    fn pg_dump_arguments_follow_the_clients_syntax() {
        let zstd = Compression::from_str("zstd").unwrap();
        let zstd9 = Compression::from_str("zstd:9").unwrap();
        let none = Compression::from_str("none").unwrap();
        let gzip = Compression::FALLBACK;
        let gzip1 = Compression::from_str("gzip:1").unwrap();
        assert_eq!(zstd.pg_dump_arg(17), "--compress=zstd");
        assert_eq!(Compression::DEFAULT.pg_dump_arg(17), "--compress=zstd:1");
        assert_eq!(zstd9.pg_dump_arg(16), "--compress=zstd:9");
        assert_eq!(none.pg_dump_arg(17), "--compress=none");
        assert_eq!(none.pg_dump_arg(15), "--compress=0");
        assert_eq!(gzip.pg_dump_arg(15), "--compress=6");
        assert_eq!(gzip1.pg_dump_arg(15), "--compress=1");
        assert_eq!(gzip1.pg_dump_arg(17), "--compress=gzip:1");
    }

    #[test]
    fn default_is_zstd_only_where_server_and_client_are_16_or_newer() {
        let chosen = choose(None, &version(17), &version(16)).unwrap();
        assert_eq!(chosen.compression, Compression::DEFAULT);
        assert_eq!(chosen.note, None);

        let old_server = choose(None, &version(17), &version(15)).unwrap();
        assert_eq!(old_server.compression, Compression::FALLBACK);
        let note = old_server.note.unwrap();
        assert!(
            note.contains("gzip instead of the default zstd")
                && note.contains("server runs PostgreSQL 15.2"),
            "{note}"
        );

        let old_client = choose(None, &version(15), &version(17)).unwrap();
        assert_eq!(old_client.compression, Compression::FALLBACK);
        assert!(old_client.note.unwrap().contains("pg_dump is version 15.2"));
    }

    #[test]
    fn an_explicit_setting_is_kept_or_refused_never_replaced() {
        let lz4 = Compression::from_str("lz4").unwrap();
        let chosen = choose(Some(lz4), &version(17), &version(14)).unwrap();
        assert_eq!((chosen.compression, chosen.note), (lz4, None));

        let error = choose(Some(lz4), &version(15), &version(17)).unwrap_err();
        assert!(
            error.to_string().contains("lz4 needs pg_dump 16 or newer"),
            "{error}"
        );
        let gzip = Compression::from_str("gzip:3").unwrap();
        assert_eq!(
            choose(Some(gzip), &version(15), &version(15))
                .unwrap()
                .compression,
            gzip
        );
    }
}
