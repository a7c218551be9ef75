//! Which complete runs a retention count keeps.

use super::manifest::Manifest;

/// Splits runs sorted newest first into the `keep` newest and the rest.
///
/// Zero is refused rather than read as "delete everything": it is far more
/// likely a missing setting than a wish to lose the backup just taken.
pub fn split_for_retention(
    newest_first: Vec<Manifest>,
    keep: usize,
) -> Result<(Vec<Manifest>, Vec<Manifest>), ZeroRetention> {
    if keep == 0 {
        return Err(ZeroRetention);
    }
    let mut kept = newest_first;
    let expired = if kept.len() > keep {
        kept.split_off(keep)
    } else {
        Vec::new()
    };
    Ok((kept, expired))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("retention must keep at least 1 backup")]
pub struct ZeroRetention;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::ContentDigest;
    use crate::storage::layout::{BackupRef, RunId};
    use chrono::Utc;

    fn runs(ids: &[&str]) -> Vec<Manifest> {
        let backup = BackupRef::new("app", "nightly").unwrap();
        let digest = ContentDigest {
            size_bytes: 1,
            sha256: String::new(),
        };
        ids.iter()
            .map(|id| {
                Manifest::new(
                    &backup.run(RunId::new(id).unwrap()),
                    Utc::now(),
                    "15",
                    &digest,
                )
            })
            .collect()
    }

    fn ids(manifests: &[Manifest]) -> Vec<&str> {
        manifests.iter().map(|m| m.run_id.as_str()).collect()
    }

    #[test]
    fn keeps_the_newest_and_expires_the_rest() {
        let (kept, expired) = split_for_retention(runs(&["d", "c", "b", "a"]), 2).unwrap();
        assert_eq!(ids(&kept), ["d", "c"]);
        assert_eq!(ids(&expired), ["b", "a"]);
    }

    #[test]
    fn fewer_runs_than_retention_expires_nothing() {
        let (kept, expired) = split_for_retention(runs(&["b", "a"]), 5).unwrap();
        assert_eq!(ids(&kept), ["b", "a"]);
        assert!(expired.is_empty());
    }

    #[test]
    fn zero_is_refused() {
        assert_eq!(split_for_retention(runs(&["a"]), 0), Err(ZeroRetention));
    }
}
