//! Reading a stored base backup back: its SHA-256, and whether it decompresses into a tar
//! holding `backup_label` and the `backup_manifest` whose WAL ranges place it in the WAL.

use super::BaseCompression;
use super::position::{self, WalPoints};
use crate::digest::ContentDigest;
use crate::hashed_read::hashed_read;
use crate::storage::{ByteStream, StorageError};
use std::io::{self, Read};

pub struct Inspected {
    pub digest: ContentDigest,
    /// Why the archive is not a usable base backup, if it is not.
    pub points: Result<WalPoints, String>,
}

pub async fn inspect(
    stream: ByteStream,
    compression: BaseCompression,
) -> Result<Inspected, StorageError> {
    let hashed = hashed_read(stream, move |bridge| read_points(bridge, compression)).await?;
    Ok(Inspected {
        digest: hashed.digest,
        points: hashed.read.unwrap_or_else(Err),
    })
}

fn read_points(input: impl Read, compression: BaseCompression) -> Result<WalPoints, String> {
    let mut input: Box<dyn Read> = match compression {
        BaseCompression::None => Box::new(input),
        BaseCompression::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(input)),
        BaseCompression::Gzip => Box::new(flate2::read::GzDecoder::new(input)),
    };
    let mut archive = tar::Archive::new(&mut input);
    let mut manifest = None;
    let mut label = false;
    let unreadable = |e: io::Error| format!("the stored archive cannot be read as a tar: {e}");
    for entry in archive.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        let path = entry.path().map_err(unreadable)?.into_owned();
        if path.as_os_str() == "backup_manifest" {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).map_err(unreadable)?;
            manifest = Some(bytes);
        } else if path.as_os_str() == "backup_label" {
            label = true;
        }
        // Reading every entry's data to the end is what checks it decompresses.
        io::copy(&mut entry, &mut io::sink()).map_err(unreadable)?;
    }
    io::copy(&mut input, &mut io::sink()).map_err(unreadable)?;
    if !label {
        return Err("the stored archive has no backup_label".to_owned());
    }
    let manifest = manifest.ok_or("the stored archive has no backup_manifest")?;
    position::wal_points(&manifest)
}
