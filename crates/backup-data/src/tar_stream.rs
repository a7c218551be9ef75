//! A pg_dump directory as one artifact: its files packed into a tar stream on the way to
//! storage, and unpacked from the stream on the way back. pg_dump's directory format is
//! the only one it writes with several jobs, and it cannot write to a pipe; packing keeps
//! the artifact one checksummed object, so storage, verification, retention and restore
//! treat it like any other. Memory stays at the pipe's size whatever the dump's.
//!
//! The `tar` crate is synchronous: it runs on a blocking thread and talks to the async side
//! through an in-memory pipe.

use crate::digest::ContentDigest;
use crate::hashed_read::hashed_read;
use crate::storage::{ArtifactWriter, ByteStream, StorageError};
use futures::StreamExt as _;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use tokio_util::io::{ReaderStream, SyncIoBridge};

/// Bytes in flight between the tar thread and the async side.
const PIPE_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("could not pack pg_dump's directory {dir} into the artifact")]
    Read {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("the backup destination cannot be written")]
    Storage(#[source] StorageError),
}

/// Streams the files of `dir` (flat, as pg_dump writes them) into `writer` as a tar archive.
pub async fn pack_directory(dir: &Path, writer: &mut ArtifactWriter) -> Result<(), PackError> {
    let (reader, pipe) = tokio::io::duplex(PIPE_BYTES);
    let bridge = SyncIoBridge::new(pipe);
    let source = dir.to_owned();
    let packing = tokio::task::spawn_blocking(move || pack(&source, bridge));
    let mut chunks = ReaderStream::with_capacity(reader, PIPE_BYTES);
    let mut stored = Ok(());
    while let Some(chunk) = chunks.next().await {
        // The pipe itself cannot fail; the packer's errors come from its join handle.
        let Ok(chunk) = chunk else { break };
        if let Err(error) = writer.write(chunk).await {
            stored = Err(PackError::Storage(error));
            break;
        }
    }
    // Closing the pipe stops a packer whose output is no longer wanted.
    drop(chunks);
    let packed = packing.await.unwrap_or_else(|panic| {
        Err(io::Error::other(format!(
            "the tar thread panicked: {panic}"
        )))
    });
    stored?;
    packed.map_err(|source| PackError::Read {
        dir: dir.to_owned(),
        source,
    })
}

fn pack(dir: &Path, output: impl Write) -> io::Result<()> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a regular file", entry.path().display()),
            ));
        }
        names.push(entry.file_name());
    }
    // A stable order makes equal dumps equal artifacts.
    names.sort();
    let mut builder = tar::Builder::new(output);
    builder.mode(tar::HeaderMode::Deterministic);
    for name in names {
        builder.append_path_with_name(dir.join(&name), &name)?;
    }
    let mut output = builder.into_inner()?;
    output.flush()
}

/// What reading an artifact into a directory found: the digest of every byte downloaded,
/// and whether unpacking worked. A corrupt artifact usually fails both; the digest is what
/// says so with certainty, so it is computed to the end even when unpacking stopped.
pub struct Unpacked {
    pub digest: ContentDigest,
    pub unpacked: io::Result<()>,
}

/// Downloads `stream` into `dir` (which must exist), hashing on the way.
pub async fn unpack_stream(stream: ByteStream, dir: &Path) -> Result<Unpacked, StorageError> {
    let target = dir.to_owned();
    let hashed = hashed_read(stream, move |bridge| unpack(bridge, &target)).await?;
    Ok(Unpacked {
        digest: hashed.digest,
        unpacked: hashed
            .read
            .unwrap_or_else(|panic| Err(io::Error::other(panic))),
    })
}

fn unpack(input: impl Read, dir: &Path) -> io::Result<()> {
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let name = plain_file_name(&path, entry.header().entry_type())?;
        entry.unpack(dir.join(name))?;
    }
    // The end-of-archive blocks may be followed by padding; reading it lets the writer
    // finish instead of seeing a closed pipe.
    io::copy(&mut archive.into_inner(), &mut io::sink())?;
    Ok(())
}

/// pg_dump's directory holds only regular files; anything else (a path with directories,
/// `..`, a link) did not come from [`pack_directory`] and is refused rather than written.
fn plain_file_name(path: &Path, kind: tar::EntryType) -> io::Result<&std::ffi::OsStr> {
    let mut components = path.components();
    match (kind, components.next(), components.next()) {
        (tar::EntryType::Regular, Some(Component::Normal(name)), None) => Ok(name),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the artifact holds {} ({kind:?}), which a pg_dump directory does not",
                path.display()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_file_names_are_unpacked() {
        let regular = tar::EntryType::Regular;
        assert!(plain_file_name(Path::new("toc.dat"), regular).is_ok());
        assert!(plain_file_name(Path::new("3456.dat.zst"), regular).is_ok());
        for path in ["../etc/passwd", "/etc/passwd", "a/b.dat", "."] {
            assert!(plain_file_name(Path::new(path), regular).is_err(), "{path}");
        }
        assert!(plain_file_name(Path::new("toc.dat"), tar::EntryType::Symlink).is_err());
    }

    #[test]
    fn packed_files_unpack_to_the_same_bytes() {
        let source = tempfile::tempdir().unwrap();
        std::fs::write(source.path().join("toc.dat"), b"table of contents").unwrap();
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(source.path().join("3001.dat.zst"), &big).unwrap();
        let mut archive = Vec::new();
        pack(source.path(), &mut archive).unwrap();

        let target = tempfile::tempdir().unwrap();
        unpack(&archive[..], target.path()).unwrap();
        assert_eq!(
            std::fs::read(target.path().join("toc.dat")).unwrap(),
            b"table of contents"
        );
        assert_eq!(
            std::fs::read(target.path().join("3001.dat.zst")).unwrap(),
            big
        );
    }

    #[test]
    fn a_directory_with_a_subdirectory_is_not_packed() {
        let source = tempfile::tempdir().unwrap();
        std::fs::create_dir(source.path().join("nested")).unwrap();
        let error = pack(source.path(), Vec::new()).unwrap_err();
        assert!(error.to_string().contains("not a regular file"), "{error}");
    }
}
