use super::*;
use crate::support::Destination;
use backup_data::wal::{Lsn, Timeline, WalSegment};
use bytes::Bytes;

/// The directory store deletes stale `<file>.partial` writes of dead dump runs; the WAL
/// area's streaming partials must survive that, and its own unfinished uploads are neither
/// listed nor kept.
#[tokio::test]
async fn dump_clean_up_never_touches_the_wal_area() {
    let destination = Destination::directory().await;
    let storage = destination.storage().await;
    let wal = WalStore::new(&storage, support::backup_ref(), size());
    let segment = WalSegment {
        timeline: Timeline::FIRST,
        number: 3,
    };
    let data = Bytes::from(vec![1u8; SMALL as usize]);
    let written_to = Some(Lsn(3 * SMALL + 100));
    wal.put(
        WalFile::Partial(segment),
        data.clone(),
        written_to,
        Utc::now(),
    )
    .await
    .unwrap();
    wal.put(WalFile::Segment(segment), data, None, Utc::now())
        .await
        .unwrap();
    let unfinished = destination.file_of("app/nightly/wal/000000010000000000000004.x.upload");
    std::fs::write(&unfinished, b"half").unwrap();

    let removed = storage
        .remove_stale(&support::backup_ref(), Duration::ZERO)
        .await
        .unwrap();
    assert!(removed.is_empty(), "{removed:?}");
    let listing = wal.list().await.unwrap();
    assert_eq!(listing.entries.len(), 2, "{listing:?}");
    assert!(listing.ignored.is_empty(), "{:?}", listing.ignored);
    let partial = &listing.entries[&WalFile::Partial(segment)];
    assert_eq!(partial.written_to, written_to);
    wal.fetch(partial).await.unwrap();

    wal.remove_unfinished().await.unwrap();
    assert!(!unfinished.exists());
    assert_eq!(wal.list().await.unwrap().entries.len(), 2);
}
