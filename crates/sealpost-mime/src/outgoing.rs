//! What every mail Sealpost writes shares: the headers each one carries and serialisation.
//!
//! Every generated mail carries `X-Sealpost-Kind`, a fresh Message-ID, a Date and
//! MIME-Version, uses CRLF line ends, and takes its texts from sealpost-i18n in the reader's
//! language.

use mail_builder::MessageBuilder;
use mail_builder::headers::message_id::MessageId;
use mail_builder::headers::raw::Raw;

use crate::kind::MailKind;
use crate::util::new_message_id;

/// Serialises a builder. Writing into a Vec cannot fail; should mail-builder
/// ever report an error anyway, an empty Vec is returned (callers treat an
/// empty mail as a failure to queue) instead of panicking.
pub(crate) fn finish(builder: MessageBuilder<'_>) -> Vec<u8> {
    builder.write_to_vec().unwrap_or_default()
}

/// Headers every generated mail has, in this order after the caller's own.
pub(crate) fn common_headers<'x>(
    builder: MessageBuilder<'x>,
    kind: MailKind,
    hostname: &str,
) -> MessageBuilder<'x> {
    builder
        .message_id(MessageId::new(new_message_id(hostname)))
        .header("MIME-Version", Raw::new("1.0"))
        .header("X-Sealpost-Kind", Raw::new(kind.as_str()))
}

/// Checks the wire form every generated mail must have: CRLF only, a header
/// section ended by a blank line, no header line over 998 characters.
#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
pub(crate) fn assert_crlf(raw: &[u8]) {
    for (i, b) in raw.iter().enumerate() {
        if *b == b'\n' {
            assert!(i > 0 && raw[i - 1] == b'\r', "bare LF at {i}");
        }
    }
    assert!(raw.windows(4).any(|w| w == b"\r\n\r\n"));
    let header_end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    for line in raw[..header_end].split(|b| *b == b'\n') {
        assert!(line.len() <= 998);
    }
}
