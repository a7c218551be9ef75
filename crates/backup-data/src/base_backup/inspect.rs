//! Reading a base backup as a tar: whether it decompresses into one holding `backup_label`
//! and the `backup_manifest` whose WAL ranges place it in the WAL, read as `pg_basebackup`
//! writes it.

use super::BaseCompression;
use super::position::{self, WalPoints};
use bytes::Bytes;
use std::io::{self, Read};
use tokio::io::{AsyncWriteExt as _, DuplexStream};
use tokio::task::JoinHandle;
use tokio_util::io::SyncIoBridge;

/// Bytes in flight between the upload and the reading thread.
const PIPE_BYTES: usize = 1024 * 1024;

/// The archive read on a blocking thread from the chunks the upload hands over, so its WAL
/// points are known when the upload ends and the stored copy need not be decompressed again.
pub struct InFlight {
    /// `None` once the reader stopped listening (the archive is damaged); its error comes
    /// from [`InFlight::finish`].
    pipe: Option<DuplexStream>,
    reading: JoinHandle<Result<WalPoints, String>>,
}

impl InFlight {
    pub fn start(compression: BaseCompression) -> InFlight {
        let (pipe, reader) = tokio::io::duplex(PIPE_BYTES);
        let bridge = SyncIoBridge::new(reader);
        InFlight {
            pipe: Some(pipe),
            reading: tokio::task::spawn_blocking(move || read_points(bridge, compression)),
        }
    }

    pub async fn feed(&mut self, chunk: &Bytes) {
        if let Some(pipe) = &mut self.pipe
            && pipe.write_all(chunk).await.is_err()
        {
            self.pipe = None;
        }
    }

    /// The WAL points, or why the archive is not a usable base backup.
    pub async fn finish(mut self) -> Result<WalPoints, String> {
        if let Some(mut pipe) = self.pipe.take() {
            let _ = pipe.shutdown().await;
        }
        self.reading
            .await
            .unwrap_or_else(|panic| Err(format!("the reading thread panicked: {panic}")))
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    const MANIFEST: &[u8] =
        br#"{"WAL-Ranges": [{"Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100"}]}"#;

    /// An lz4 tar of `files`, as `pg_basebackup -Ft --compress=client-lz4` writes one.
    fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o600);
            header.set_cksum();
            tar.append_data(&mut header, name, *data).unwrap();
        }
        let mut lz4 = lz4_flex::frame::FrameEncoder::new(Vec::new());
        lz4.write_all(&tar.into_inner().unwrap()).unwrap();
        lz4.finish().unwrap()
    }

    /// Fed in chunks of `size`, as the upload hands them over.
    async fn read_in_chunks(bytes: &[u8], size: usize) -> Result<WalPoints, String> {
        let mut in_flight = InFlight::start(BaseCompression::Lz4);
        for chunk in bytes.chunks(size) {
            in_flight.feed(&Bytes::copy_from_slice(chunk)).await;
        }
        in_flight.finish().await
    }

    #[tokio::test]
    async fn a_base_backup_gives_its_wal_points_whatever_the_chunks() {
        let bytes = archive(&[
            ("backup_label", b"START WAL LOCATION: 0/2000028"),
            ("base/1/1259", &[7; 20_000]),
            ("backup_manifest", MANIFEST),
        ]);
        for size in [1, 100, 1 << 20] {
            let points = read_in_chunks(&bytes, size).await.unwrap();
            assert_eq!(points.start.to_string(), "0/2000028");
            assert_eq!(points.end.to_string(), "0/2000100");
        }
    }

    #[tokio::test]
    async fn what_is_not_a_whole_base_backup_is_refused() {
        let no_label = archive(&[("backup_manifest", MANIFEST)]);
        let error = read_in_chunks(&no_label, 4096).await.unwrap_err();
        assert!(error.contains("no backup_label"), "{error}");

        let whole = archive(&[("backup_label", b"x"), ("backup_manifest", MANIFEST)]);
        let cut = &whole[..whole.len() / 2];
        let error = read_in_chunks(cut, 4096).await.unwrap_err();
        assert!(error.contains("cannot be read as a tar"), "{error}");

        let error = read_in_chunks(&[0x55; 10_000], 4096).await.unwrap_err();
        assert!(error.contains("cannot be read as a tar"), "{error}");
    }
}
