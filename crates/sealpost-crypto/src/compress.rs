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
/// exceed `max` bytes. Every intermediate buffer is wiped, including on error.
///
/// A frame that states its content size (our sealer always writes it) and
/// whose size is within `max` is decompressed in one pass into a buffer of
/// exactly that size: no window, no chunk copies, no regrowth. zstd itself
/// refuses to write past that buffer, so a frame lying about its size fails
/// there and takes the streaming path, which enforces the cap as it goes.
pub(crate) fn decompress_capped(
    data: &[u8],
    max: usize,
) -> Result<Zeroizing<Vec<u8>>, DecompressError> {
    if let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(data)
        && let Ok(size) = usize::try_from(size)
        && size <= max
    {
        let mut out: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::with_capacity(size));
        let mut decompressor =
            zstd::bulk::Decompressor::new().map_err(|_| DecompressError::Corrupt)?;
        if let Ok(n) = decompressor.decompress_to_buffer(data, &mut *out)
            && n == size
        {
            return Ok(out);
        }
        // Wrong size or more than one frame: `out` is wiped on drop, stream instead.
    }
    decompress_streaming(data, max)
}

/// The general case: the output buffer grows by doubling but is never
/// allocated beyond `max` (so at most about 1.5 × `max` is live while it
/// grows, plus one read chunk and the decoder window), whatever size the
/// frame claims.
fn decompress_streaming(data: &[u8], max: usize) -> Result<Zeroizing<Vec<u8>>, DecompressError> {
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
    fn frames_without_or_with_wrong_sizes_take_the_streaming_path() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 13) as u8).collect();
        // Two frames: the first states only its own size.
        let mut two = zstd::bulk::compress(&data, 3).expect("compress");
        two.extend_from_slice(&zstd::bulk::compress(&data, 3).expect("compress"));
        let d = decompress_capped(&two, 1 << 20).expect("both frames");
        assert_eq!(d.len(), 2 * data.len());
        assert!(matches!(
            decompress_capped(&two, 2 * data.len() - 1),
            Err(DecompressError::TooLarge)
        ));
        // A frame from the streaming encoder states no size.
        let streamed = zstd::stream::encode_all(&data[..], 3).expect("encode");
        let d = decompress_capped(&streamed, data.len()).expect("streamed");
        assert_eq!(d.as_slice(), data.as_slice());
        assert!(matches!(
            decompress_capped(&streamed, data.len() - 1),
            Err(DecompressError::TooLarge)
        ));
    }

    #[test]
    fn garbage_is_corrupt() {
        assert!(matches!(
            decompress_capped(b"definitely not zstd", 1 << 20),
            Err(DecompressError::Corrupt)
        ));
    }
}
