//! The pure core of continuous WAL archiving and point-in-time recovery: WAL file names and
//! positions, timeline histories, which archived files a recovery needs, what an archive can
//! restore to, and what retention may delete. No I/O: callers list and read the archive.
//!
//! The flow it supports: an archiver ships segments, `.partial` segments and history files
//! to a destination; a recovery Job lists the destination ([`Archive::from_names`]), reads
//! the history files ([`TimelineHistory::parse`]), picks a timeline
//! ([`recovery_plan::latest_timeline`]) and asks [`recovery_plan::plan`] which files to fetch.

pub mod archive;
pub mod history;
pub mod recovery_plan;
pub mod retention;
pub mod segment;
pub mod stored;
pub mod window;

pub use archive::Archive;
pub use history::{HistoryError, TimelineHistory};
pub use recovery_plan::{BaseBackupPosition, PlanError, RecoveryPlan};
pub use retention::{WalRetention, wal_retention};
pub use segment::{Lsn, SegmentSize, Timeline, WalFile, WalSegment};
pub use stored::{StoredWal, WalListing};
pub use window::{BaseBackup, SegmentMeta, SegmentTimes, Window, window};
