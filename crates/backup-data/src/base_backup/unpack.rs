//! A stored base backup read back into a data directory, hashed on the way: the digest is
//! what says with certainty whether the bytes are the ones stored.

use super::BaseCompression;
use crate::digest::{ContentDigest, DigestWriter};
use crate::storage::{ByteStream, StorageError};
use futures::StreamExt as _;
use std::io::{self, Read};
use std::path::Path;
use tokio::io::AsyncWriteExt as _;
use tokio_util::io::SyncIoBridge;

const PIPE_BYTES: usize = 1024 * 1024;

pub struct UnpackedBase {
    pub digest: ContentDigest,
    pub unpacked: io::Result<()>,
}

/// Decompresses and unpacks `stream` into `dir`, which must exist and be empty.
pub async fn unpack_base(
    mut stream: ByteStream,
    compression: BaseCompression,
    dir: &Path,
) -> Result<UnpackedBase, StorageError> {
    let (mut pipe, reader) = tokio::io::duplex(PIPE_BYTES);
    let bridge = SyncIoBridge::new(reader);
    let target = dir.to_owned();
    let unpacking = tokio::task::spawn_blocking(move || unpack(bridge, compression, &target));
    let mut digest = DigestWriter::new();
    let mut unpacker_listens = true;
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
        if unpacker_listens && pipe.write_all(&chunk).await.is_err() {
            unpacker_listens = false;
        }
    }
    let _ = pipe.shutdown().await;
    drop(pipe);
    let unpacked = unpacking.await.unwrap_or_else(|panic| {
        Err(io::Error::other(format!(
            "the tar thread panicked: {panic}"
        )))
    });
    downloaded?;
    Ok(UnpackedBase {
        digest: digest.finish(),
        unpacked,
    })
}

fn unpack(input: impl Read, compression: BaseCompression, dir: &Path) -> io::Result<()> {
    let mut input: Box<dyn Read> = match compression {
        BaseCompression::None => Box::new(input),
        BaseCompression::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(input)),
        BaseCompression::Gzip => Box::new(flate2::read::GzDecoder::new(input)),
    };
    let mut archive = tar::Archive::new(&mut input);
    archive.set_preserve_permissions(true);
    // Refuses entries that would land outside `dir`.
    archive.unpack(dir)?;
    io::copy(&mut input, &mut io::sink())?;
    Ok(())
}
