//! Keeps the end of a child's stderr: that is where PostgreSQL tools say why
//! they failed, and the whole of it could be large.

use tokio::io::{AsyncRead, AsyncReadExt as _};

/// Enough for a few error lines while leaving room in the 4 KiB
/// termination message for the rest of the result.
pub(super) const TAIL_BYTES: usize = 2048;

/// Reads `reader` to its end and returns its last `TAIL_BYTES` bytes as text.
pub(super) async fn read_tail(mut reader: impl AsyncRead + Unpin) -> String {
    let mut tail: Vec<u8> = Vec::with_capacity(TAIL_BYTES * 2);
    let mut buffer = [0u8; 8192];
    let mut truncated = false;
    // A read error ends the capture; the exit status still reports failure.
    while let Ok(read) = reader.read(&mut buffer).await {
        if read == 0 {
            break;
        }
        tail.extend_from_slice(&buffer[..read]);
        if tail.len() > TAIL_BYTES * 2 {
            tail.drain(..tail.len() - TAIL_BYTES);
            truncated = true;
        }
    }
    if tail.len() > TAIL_BYTES {
        tail.drain(..tail.len() - TAIL_BYTES);
        truncated = true;
    }
    let text = String::from_utf8_lossy(&tail);
    let text = text.trim();
    if truncated {
        format!("...{text}")
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn short_output_is_kept_whole() {
        assert_eq!(
            read_tail(&b"pg_dump: error: boom\n"[..]).await,
            "pg_dump: error: boom"
        );
    }

    #[tokio::test]
    async fn long_output_keeps_its_end() {
        let mut input = vec![b'x'; 100_000];
        input.extend_from_slice(b"the reason");
        let tail = read_tail(&input[..]).await;
        assert!(tail.starts_with("..."));
        assert!(tail.ends_with("the reason"));
        assert!(tail.len() <= TAIL_BYTES + 3);
    }
}
