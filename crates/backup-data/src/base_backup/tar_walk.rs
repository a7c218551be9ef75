//! The tar `pg_basebackup` streams, walked header by header as it passes: whether it is a
//! whole archive (every header intact, every entry as long as its header says, the two
//! end-of-archive blocks) holding `backup_label` and the `backup_manifest` whose WAL ranges
//! place it in the WAL. Only headers are read and only the manifest is kept, so the walk
//! costs next to nothing beside the copy it rides on.

use super::position::{self, WalPoints};

const BLOCK: usize = 512;

/// The walk so far; [`TarWalk::feed`] the stream in pieces of any size, then
/// [`TarWalk::finish`].
#[derive(Default)]
pub struct TarWalk {
    /// The bytes of a header not yet whole.
    header: Vec<u8>,
    /// Data and padding of the current entry still to pass.
    skip: u64,
    /// Data of `backup_manifest` still to keep (`skip` includes it).
    keep: u64,
    manifest: Option<Vec<u8>>,
    label: bool,
    /// All-zero header blocks in a row; two end the archive.
    zero_blocks: u8,
    entries: u64,
    error: Option<String>,
}

impl TarWalk {
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && self.error.is_none() {
            if self.ended() {
                // Writers may pad the archive with zeros after its end; anything else
                // is not part of a tar.
                if bytes.iter().any(|b| *b != 0) {
                    self.error = Some("data follows the end of the archive".to_owned());
                }
                return;
            }
            if self.skip > 0 {
                let n = usize::try_from(self.skip)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                if self.keep > 0 {
                    let kept = usize::try_from(self.keep).unwrap_or(usize::MAX).min(n);
                    if let Some(manifest) = &mut self.manifest {
                        manifest.extend_from_slice(&bytes[..kept]);
                    }
                    self.keep -= kept as u64;
                }
                self.skip -= n as u64;
                bytes = &bytes[n..];
                continue;
            }
            let wanted = (BLOCK - self.header.len()).min(bytes.len());
            self.header.extend_from_slice(&bytes[..wanted]);
            bytes = &bytes[wanted..];
            if self.header.len() == BLOCK {
                let header = std::mem::take(&mut self.header);
                if let Err(error) = self.read_header(&header) {
                    self.error = Some(error);
                }
            }
        }
    }

    fn ended(&self) -> bool {
        self.zero_blocks >= 2
    }

    fn read_header(&mut self, header: &[u8]) -> Result<(), String> {
        if header.iter().all(|b| *b == 0) {
            self.zero_blocks += 1;
            return Ok(());
        }
        if self.zero_blocks > 0 {
            return Err(format!(
                "a lone end-of-archive block before entry {}",
                self.entries + 1
            ));
        }
        self.entries += 1;
        let at = |what: &str| format!("the header of entry {} {what}", self.entries);
        let recorded = octal(&header[148..156]).ok_or_else(|| at("has no checksum"))?;
        // The checksum field itself counts as eight spaces.
        let computed: u64 = header
            .iter()
            .enumerate()
            .map(|(i, b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(*b)
                }
            })
            .sum();
        if recorded != computed {
            return Err(at("is damaged (its checksum does not match)"));
        }
        let size = entry_size(&header[124..136]).ok_or_else(|| at("has no size"))?;
        self.skip = size.div_ceil(BLOCK as u64) * BLOCK as u64;
        let name = &header[..100];
        let name = &name[..name.iter().position(|b| *b == 0).unwrap_or(name.len())];
        match name {
            b"backup_label" => self.label = true,
            b"backup_manifest" => {
                self.manifest = Some(Vec::with_capacity(usize::try_from(size).unwrap_or(0)));
                self.keep = size;
            }
            _ => {}
        }
        Ok(())
    }

    /// The WAL points, or why the stream is not a whole base backup.
    pub fn finish(self) -> Result<WalPoints, String> {
        if let Some(error) = self.error {
            return Err(format!("the archive cannot be read as a tar: {error}"));
        }
        if !self.ended() {
            return Err(format!(
                "the archive ends after {} entries without its end-of-archive blocks: it is cut short",
                self.entries
            ));
        }
        if !self.label {
            return Err("the archive has no backup_label".to_owned());
        }
        let manifest = self.manifest.ok_or("the archive has no backup_manifest")?;
        position::wal_points(&manifest)
    }
}

/// An octal number as tar writes them: digits, padded with spaces or NULs.
fn octal(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?;
    let digits = text.trim_matches(|c: char| c == ' ' || c == '\0');
    u64::from_str_radix(digits, 8).ok()
}

/// A size field: octal, or base-256 (high bit set) for entries of 8 GiB and more.
fn entry_size(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 == 0 {
        return octal(field);
    }
    let mut value: u64 = u64::from(field[0] & 0x7f);
    for byte in &field[1..] {
        value = value.checked_mul(256)?.checked_add(u64::from(*byte))?;
    }
    Some(value)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub const MANIFEST: &[u8] =
        br#"{"WAL-Ranges": [{"Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100"}]}"#;

    /// A tar of `files`, in pg_basebackup's ustar format.
    pub fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            header.set_mode(0o600);
            header.set_cksum();
            tar.append_data(&mut header, name, *data).unwrap();
        }
        tar.into_inner().unwrap()
    }

    fn walk_in_pieces(bytes: &[u8], size: usize) -> Result<WalPoints, String> {
        let mut walk = TarWalk::default();
        for piece in bytes.chunks(size) {
            walk.feed(piece);
        }
        walk.finish()
    }

    #[test]
    fn a_base_backup_gives_its_wal_points_whatever_the_pieces() {
        let bytes = tar_of(&[
            ("backup_label", b"START WAL LOCATION: 0/2000028"),
            ("base/1/1259", &[7; 20_000]),
            ("base/1/empty", b""),
            ("backup_manifest", MANIFEST),
        ]);
        for size in [1, 511, 512, 513, 100_000] {
            let points = walk_in_pieces(&bytes, size).unwrap();
            assert_eq!(points.start.to_string(), "0/2000028", "pieces of {size}");
            assert_eq!(points.end.to_string(), "0/2000100", "pieces of {size}");
        }
        // Zeros after the end, as writers that pad to a record size leave them.
        let mut padded = bytes.clone();
        padded.extend_from_slice(&[0; 10_240]);
        assert!(walk_in_pieces(&padded, 4096).is_ok());
    }

    #[track_caller]
    fn refused(bytes: &[u8], expected: &str) {
        match walk_in_pieces(bytes, 4096) {
            Ok(points) => panic!("{expected:?} expected, got {points:?}"),
            Err(error) => assert!(error.contains(expected), "{expected:?} in {error:?}"),
        }
    }

    #[test]
    fn what_is_not_a_whole_base_backup_is_refused() {
        refused(&tar_of(&[("backup_manifest", MANIFEST)]), "no backup_label");
        refused(&tar_of(&[("backup_label", b"x")]), "no backup_manifest");

        let whole = tar_of(&[
            ("backup_label", b"x"),
            ("base/1/1259", &[7; 20_000]),
            ("backup_manifest", MANIFEST),
        ]);
        // Cut inside an entry's data, and just before the end-of-archive blocks.
        refused(&whole[..whole.len() / 2], "cut short");
        refused(&whole[..whole.len() - 1024], "cut short");

        let mut damaged = whole.clone();
        damaged[1024 + 10] ^= 0x01; // the second header: after the first and its 1 byte
        refused(&damaged, "entry 2 is damaged");

        let mut trailing = whole.clone();
        trailing.extend_from_slice(b"more");
        refused(&trailing, "data follows the end");

        refused(&[0x55; 10_000], "entry 1 has no checksum");
    }

    #[test]
    fn sizes_are_read_in_octal_and_base_256() {
        assert_eq!(entry_size(b"00000001750\0"), Some(1000));
        assert_eq!(entry_size(b"     1750 \0\0"), Some(1000));
        let mut big = [0u8; 12];
        big[0] = 0x80;
        big[7] = 0x02; // 2 << 32: 8 GiB
        assert_eq!(entry_size(&big), Some(8 << 30));
        assert_eq!(entry_size(b"not a number"), None);
    }
}
