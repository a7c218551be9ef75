//! A stored base backup read back into a data directory, hashed on the way: the digest is
//! what says with certainty whether the bytes are the ones stored.

use super::BaseCompression;
use crate::digest::ContentDigest;
use crate::hashed_read::hashed_read;
use crate::storage::{ByteStream, StorageError};
use std::io::{self, Read};
use std::path::Path;

pub struct UnpackedBase {
    pub digest: ContentDigest,
    pub unpacked: io::Result<()>,
}

/// Decompresses and unpacks `stream` into `dir`, which must exist and be empty.
pub async fn unpack_base(
    stream: ByteStream,
    compression: BaseCompression,
    dir: &Path,
) -> Result<UnpackedBase, StorageError> {
    let target = dir.to_owned();
    let hashed = hashed_read(stream, move |bridge| unpack(bridge, compression, &target)).await?;
    Ok(UnpackedBase {
        digest: hashed.digest,
        unpacked: hashed
            .read
            .unwrap_or_else(|panic| Err(io::Error::other(panic))),
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
