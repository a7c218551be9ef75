//! Reading a base backup as it uploads: the compressed chunks go to a thread that
//! decompresses them and walks the tar ([`super::tar_walk`]), so its WAL points are known
//! when the upload ends and the stored copy need not be decompressed again.

use super::BaseCompression;
use super::position::WalPoints;
use super::tar_walk::TarWalk;
use bytes::{Buf as _, Bytes};
use std::io::{self, Read};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Chunks in flight between the upload and the reading thread.
const IN_FLIGHT: usize = 16;
/// What the thread decompresses at a time.
const READ_BYTES: usize = 256 * 1024;

pub struct InFlight {
    /// `None` once the reader stopped listening (the archive is damaged); its error comes
    /// from [`InFlight::finish`].
    chunks: Option<mpsc::Sender<Bytes>>,
    reading: JoinHandle<Result<WalPoints, String>>,
}

impl InFlight {
    pub fn start(compression: BaseCompression) -> InFlight {
        let (chunks, received) = mpsc::channel(IN_FLIGHT);
        let input = Chunks {
            received,
            current: Bytes::new(),
        };
        InFlight {
            chunks: Some(chunks),
            reading: tokio::task::spawn_blocking(move || read_points(input, compression)),
        }
    }

    /// Hands a chunk to the reading thread; no copy, the bytes are shared.
    pub async fn feed(&mut self, chunk: &Bytes) {
        if let Some(chunks) = &self.chunks
            && chunks.send(chunk.clone()).await.is_err()
        {
            self.chunks = None;
        }
    }

    /// The WAL points, or why the archive is not a usable base backup.
    pub async fn finish(mut self) -> Result<WalPoints, String> {
        // The end of the input: the reader sees the end of the stream.
        self.chunks = None;
        self.reading
            .await
            .unwrap_or_else(|panic| Err(format!("the reading thread panicked: {panic}")))
    }
}

/// The chunks handed over, read as one stream on the reading thread.
struct Chunks {
    received: mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for Chunks {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.received.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buffer.len().min(self.current.len());
        buffer[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

fn read_points(input: Chunks, compression: BaseCompression) -> Result<WalPoints, String> {
    let mut input: Box<dyn Read> = match compression {
        BaseCompression::None => Box::new(input),
        BaseCompression::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(input)),
        BaseCompression::Gzip => Box::new(flate2::read::GzDecoder::new(input)),
    };
    let mut walk = TarWalk::default();
    let mut buffer = vec![0; READ_BYTES];
    loop {
        let n = match input.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("the archive cannot be decompressed: {e}")),
        };
        walk.feed(&buffer[..n]);
    }
    walk.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    use crate::base_backup::tar_walk::tests::{MANIFEST, tar_of};

    /// An lz4 tar of `files`, as `pg_basebackup -Ft --compress=client-lz4` writes one.
    fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut lz4 = lz4_flex::frame::FrameEncoder::new(Vec::new());
        lz4.write_all(&tar_of(files)).unwrap();
        lz4.finish().unwrap()
    }

    fn decompressed(lz4: &[u8]) -> Vec<u8> {
        let mut tar = Vec::new();
        lz4_flex::frame::FrameDecoder::new(lz4)
            .read_to_end(&mut tar)
            .unwrap();
        tar
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
        assert!(error.contains("cannot be decompressed"), "{error}");

        let error = read_in_chunks(&[0x55; 10_000], 4096).await.unwrap_err();
        assert!(error.contains("cannot be decompressed"), "{error}");

        // Whole lz4, but the tar inside it stops before its end.
        let tar_cut = {
            let tar = decompressed(&whole);
            let mut lz4 = lz4_flex::frame::FrameEncoder::new(Vec::new());
            lz4.write_all(&tar[..tar.len() - 1024]).unwrap();
            lz4.finish().unwrap()
        };
        let error = read_in_chunks(&tar_cut, 4096).await.unwrap_err();
        assert!(error.contains("cut short"), "{error}");
    }
}
