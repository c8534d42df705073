//! zstd compression with a hard cap on the decompressed size, so that a small
//! envelope cannot expand into gigabytes in memory (decompression bomb).

use std::io::{self, Read};

use zeroize::Zeroizing;

/// zstd level used for sealing: fast, and most of the gain for e-mail text.
const LEVEL: i32 = 3;

/// Largest zstd window we agree to allocate while decoding (16 MiB). Our
/// own sealer at level 3 uses far smaller windows; this only stops a crafted
/// frame from making the decoder reserve up to its 128 MiB default.
const WINDOW_LOG_MAX: u32 = 24;

/// Chunk size of the streaming decoder's reads.
const CHUNK: usize = 64 * 1024;

/// Why decompression stopped.
#[derive(Debug)]
pub(crate) enum DecompressError {
    /// Output would exceed the cap.
    TooLarge,
    /// The input is not a valid zstd stream.
    Corrupt,
}

/// Compresses `data` with zstd; the result is wiped on drop because it is the
/// (compressed) plaintext of a message.
pub(crate) fn compress(data: &[u8]) -> io::Result<Zeroizing<Vec<u8>>> {
    zstd::bulk::compress(data, LEVEL).map(Zeroizing::new)
}

/// Decompresses `data`, failing with `TooLarge` as soon as the output would
/// exceed `max` bytes. The output buffer grows by doubling but is never
/// allocated beyond `max` (so at most about 1.5 × `max` is live while it
/// grows, plus one read chunk and the decoder window), whatever size the
/// frame claims. Every intermediate buffer is wiped, including on error.
pub(crate) fn decompress_capped(
    data: &[u8],
    max: usize,
) -> Result<Zeroizing<Vec<u8>>, DecompressError> {
    let mut decoder =
        zstd::stream::read::Decoder::with_buffer(data).map_err(|_| DecompressError::Corrupt)?;
    decoder
        .window_log_max(WINDOW_LOG_MAX)
        .map_err(|_| DecompressError::Corrupt)?;

    let mut out: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::new());
    let mut chunk = Zeroizing::new(vec![0u8; CHUNK]);
    loop {
        let n = match decoder.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(DecompressError::Corrupt),
        };
        let needed = out.len().saturating_add(n);
        if needed > max {
            return Err(DecompressError::TooLarge);
        }
        if needed > out.capacity() {
            // Grow by doubling (amortised linear copying) but never past the
            // cap. Growing into a fresh buffer instead of `reserve` lets the
            // old one be wiped, where a realloc would free it unwiped.
            let new_cap = out.capacity().saturating_mul(2).max(needed).min(max);
            let mut bigger = Vec::with_capacity(new_cap);
            bigger.extend_from_slice(&out);
            out = Zeroizing::new(bigger);
        }
        out.extend_from_slice(&chunk[..n]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_cap_boundary() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let c = compress(&data).expect("compress");
        assert!(c.len() < data.len());
        let d = decompress_capped(&c, data.len()).expect("exactly at cap");
        assert_eq!(d.as_slice(), data.as_slice());
        assert!(d.capacity() <= data.len());
        assert!(matches!(
            decompress_capped(&c, data.len() - 1),
            Err(DecompressError::TooLarge)
        ));
    }

    #[test]
    fn empty_input_round_trips() {
        let c = compress(b"").expect("compress");
        let d = decompress_capped(&c, 0).expect("empty");
        assert!(d.is_empty());
    }

    #[test]
    fn garbage_is_corrupt() {
        assert!(matches!(
            decompress_capped(b"definitely not zstd", 1 << 20),
            Err(DecompressError::Corrupt)
        ));
    }
}
