//! Bounded line reading shared by the server session and the client.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Result of reading one line from a peer.
#[derive(Debug)]
pub(crate) enum ReadLine {
    /// The line without its terminator (CRLF or bare LF).
    Line(Vec<u8>),
    /// The line exceeded the limit; it has been read and discarded up to and
    /// including its terminator so the next read starts on a fresh line.
    TooLong,
    /// The peer closed the connection (a partial last line is dropped: a
    /// command or reply without a terminator is not complete).
    Eof,
}

/// Reads one line of at most `max` bytes (terminator excluded), consuming the
/// buffer in chunks rather than byte by byte.
pub(crate) async fn read_line<R>(reader: &mut R, max: usize) -> std::io::Result<ReadLine>
where
    R: AsyncBufRead + Unpin,
{
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(ReadLine::Eof);
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if !too_long {
            // +2 leaves room for the CRLF, which does not count against `max`.
            if line.len() + take > max.saturating_add(2) {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(&buf[..take]);
            }
        }
        reader.consume(take);
        if done {
            break;
        }
    }
    if too_long {
        return Ok(ReadLine::TooLong);
    }
    strip_terminator(&mut line);
    if line.len() > max {
        return Ok(ReadLine::TooLong);
    }
    Ok(ReadLine::Line(line))
}

/// Removes a trailing LF and, if present, the CR before it.
pub(crate) fn strip_terminator(line: &mut Vec<u8>) {
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
}

/// Replaces CR, LF and other control characters so that text from a peer or
/// a handler cannot break out of a single SMTP reply line or header line.
pub(crate) fn sanitize_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic on failure
mod tests {
    use super::*;
    use tokio::io::BufReader;

    #[tokio::test]
    async fn reads_lines_and_limits() {
        let input: &[u8] = b"abc\r\ndef\nlonglonglong\r\nok\r\npartial";
        let mut r = BufReader::with_capacity(4, input);
        assert!(matches!(read_line(&mut r, 5).await.unwrap(), ReadLine::Line(l) if l == b"abc"));
        assert!(matches!(read_line(&mut r, 5).await.unwrap(), ReadLine::Line(l) if l == b"def"));
        assert!(matches!(
            read_line(&mut r, 5).await.unwrap(),
            ReadLine::TooLong
        ));
        assert!(matches!(read_line(&mut r, 5).await.unwrap(), ReadLine::Line(l) if l == b"ok"));
        assert!(matches!(read_line(&mut r, 5).await.unwrap(), ReadLine::Eof));
    }

    #[test]
    fn sanitizes_control_characters() {
        assert_eq!(sanitize_line("a\r\nb\tc"), "a  b c");
    }
}
