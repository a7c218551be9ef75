//! A stored object read by synchronous code (the `tar` crate, a decompressor) on a blocking
//! thread, and hashed on the way: the digest covers every byte downloaded, even those the
//! reader no longer wanted, so it says with certainty whether the object is the one stored.

use crate::digest::{ContentDigest, DigestWriter};
use crate::storage::{ByteStream, StorageError};
use futures::StreamExt as _;
use tokio::io::{AsyncWriteExt as _, DuplexStream};
use tokio_util::io::SyncIoBridge;

/// Bytes in flight between the download and the blocking reader.
const PIPE_BYTES: usize = 256 * 1024;

/// What the blocking reader made of the object, and the object's digest.
pub struct HashedRead<T> {
    pub digest: ContentDigest,
    /// `None` when the reader's thread panicked; the message says why.
    pub read: Result<T, String>,
}

/// Downloads `stream`, handing its bytes to `read` on a blocking thread and hashing them.
/// A reader that stops early (a damaged archive) does not stop the download: the rest is
/// still hashed. Fails only when the download does.
pub async fn hashed_read<T, F>(
    mut stream: ByteStream,
    read: F,
) -> Result<HashedRead<T>, StorageError>
where
    T: Send + 'static,
    F: FnOnce(SyncIoBridge<DuplexStream>) -> T + Send + 'static,
{
    let (mut pipe, reader) = tokio::io::duplex(PIPE_BYTES);
    let bridge = SyncIoBridge::new(reader);
    let reading = tokio::task::spawn_blocking(move || read(bridge));
    let mut digest = DigestWriter::new();
    let mut reader_listens = true;
    let mut downloaded = Ok(());
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => {
                downloaded = Err(error);
                break;
            }
        };
        digest.update(&chunk);
        // A reader that gave up closed its end; the rest is still hashed.
        if reader_listens && pipe.write_all(&chunk).await.is_err() {
            reader_listens = false;
        }
    }
    let _ = pipe.shutdown().await;
    drop(pipe);
    let read = reading
        .await
        .map_err(|panic| format!("the reading thread panicked: {panic}"));
    downloaded?;
    Ok(HashedRead {
        digest: digest.finish(),
        read,
    })
}
