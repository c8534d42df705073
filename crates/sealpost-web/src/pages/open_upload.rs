//! Reading the `payload` field of a urlencoded `POST /open` as the body arrives. A 20 MB
//! message is a body of some 28 MB; collecting it, percent-decoding it into a `String`,
//! copying it without whitespace and base64-decoding that kept four copies of it in memory
//! at once. Here every piece of the body is percent-decoded into a small scratch buffer and
//! base64-decoded straight into the envelope's buffer, so the envelope is the only large
//! allocation; other fields are skipped unread, and a second `payload` field is refused, as
//! the form extractor did. A large envelope is stored chunk by chunk while the rest of it is
//! still arriving ([`Spool`]), so storing it adds little to the request.

use axum::body::Body;
use http_body_util::BodyExt;
use sealpost_core::open::{OpenError, check_upload};
use sealpost_crypto::{EnvelopeError, PayloadDecoder};
use sealpost_store::{Store, TEMP_OPEN_CHUNK, TempOpenWriter};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::WebError;
use crate::ratelimit::{UploadRefused, UploadSlot};

/// What sealing adds to a message at most (header with the recipient address, nonce, tag),
/// rounded up generously.
const ENVELOPE_FRAMING: usize = 64 * 1024;

/// Room for the secure.htm page around an uploaded payload, and for form fields besides it.
const BODY_FRAMING: usize = 1024 * 1024;

/// How large an upload may be: derived from the message-size limit, since no envelope this
/// portal made is larger than the largest message it accepts, sealed.
#[derive(Debug, Clone, Copy)]
pub(super) struct UploadSize {
    /// The largest envelope (decoded bytes).
    pub envelope: usize,
    /// The largest request body: base64 is 4/3 of the envelope; a form escapes '+' and '/'
    /// (three bytes each) and the line breaks (six), together under a further 15 %.
    pub body: usize,
}

impl UploadSize {
    pub(super) fn for_message_size(max_message_size: usize) -> Self {
        let envelope = max_message_size.saturating_add(ENVELOPE_FRAMING);
        let base64 = envelope.saturating_add(2) / 3 * 4;
        UploadSize {
            envelope,
            body: base64
                .saturating_add(base64 / 20 * 3)
                .saturating_add(BODY_FRAMING),
        }
    }
}

/// The page for an upload the limits refuse.
pub(super) fn refusal(refused: UploadRefused) -> WebError {
    match refused {
        UploadRefused::ClientFull => WebError::TooManyRequests,
        UploadRefused::Busy | UploadRefused::NodeFull => {
            tracing::warn!(reason = ?refused, "upload refused: the node is at its limit");
            WebError::Busy
        }
    }
}

/// The envelope bytes of the body's `payload` field, stored through `spool` as they come.
/// `content_length`: the announced size, if any (refused at once when over the limit, and
/// the hint for the envelope buffer).
pub(super) async fn urlencoded_payload(
    body: Body,
    limits: UploadSize,
    content_length: Option<usize>,
    spool: &mut Spool<'_>,
) -> Result<Vec<u8>, WebError> {
    if content_length.is_some_and(|n| n > limits.body) {
        return Err(WebError::Open(OpenError::TooLarge));
    }
    let expected = content_length.unwrap_or(0).min(limits.body) / 4 * 3 + 3;
    spool.expect(expected.min(limits.envelope));
    let mut scanner = FormScanner::new(expected.min(limits.envelope));
    let mut body = body;
    let mut received = 0usize;
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| WebError::BadRequest)?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            received = received.saturating_add(data.len());
            if received > limits.body {
                return Err(WebError::Open(OpenError::TooLarge));
            }
            scanner.feed(&data)?;
            if scanner.decoded().len() > limits.envelope {
                return Err(WebError::Open(OpenError::TooLarge));
            }
            spool.offer(scanner.decoded()).await?;
        }
        Ok(())
    }
    .await;
    match read {
        Ok(()) => scanner.finish(),
        Err(e @ (WebError::BadRequest | WebError::Open(OpenError::TooLarge))) => Err(e),
        Err(e) => {
            // Refused on content: the rest of the body (within the limit) is read and
            // dropped, so the answer comes when it would for a stored upload (a refusal must
            // not be told apart by its timing) and the client is not cut off mid-request.
            while let Some(Ok(frame)) = body.frame().await {
                received = received.saturating_add(frame.data_ref().map_or(0, |d| d.len()));
                if received > limits.body {
                    break;
                }
            }
            Err(e)
        }
    }
}

/// Stores a posted envelope under its token: once more than one chunk has been decoded, the
/// chunks go to the database (in a task of their own, so reading the body and writing go on
/// side by side) while the rest is still being read; a small one is stored in one row at the
/// end. Nothing is stored before the envelope's header has been checked against the accounts
/// and keys of this portal and the client's room for parked bytes has been reserved.
/// Dropped before [`finish`](Self::finish), the chunks written so far are removed again and
/// the reservation is given back.
pub(super) struct Spool<'a> {
    store: &'a Store,
    token_hash: String,
    now: i64,
    expires_at: i64,
    slot: UploadSlot<'a>,
    /// The envelope size the body announced, reserved with the first chunk.
    expected: usize,
    /// Bytes handed to the writer task so far.
    sent: usize,
    tx: Option<mpsc::Sender<Vec<u8>>>,
    task: Option<JoinHandle<Result<TempOpenWriter, sealpost_store::StoreError>>>,
}

impl<'a> Spool<'a> {
    pub(super) fn new(
        store: &'a Store,
        token_hash: &str,
        now: i64,
        expires_at: i64,
        slot: UploadSlot<'a>,
    ) -> Self {
        Spool {
            store,
            token_hash: token_hash.to_string(),
            now,
            expires_at,
            slot,
            expected: 0,
            sent: 0,
            tx: None,
            task: None,
        }
    }

    fn expect(&mut self, envelope_bytes: usize) {
        self.expected = envelope_bytes;
    }

    fn reserve(&mut self, bytes: usize) -> Result<(), WebError> {
        self.slot.reserve_up_to(bytes).map_err(refusal)
    }

    /// Hands every complete chunk of `decoded` (the envelope so far) not yet sent to the
    /// writer, keeping at least one byte back for [`finish`](Self::finish).
    async fn offer(&mut self, decoded: &[u8]) -> Result<(), WebError> {
        while decoded.len() > self.sent + TEMP_OPEN_CHUNK {
            if self.tx.is_none() {
                // Damaged, foreign or forged uploads, and clients without room, are refused
                // on the first chunk, before anything is stored.
                check_upload(self.store, decoded).await?;
                self.reserve(self.expected.max(decoded.len()))?;
                self.start();
            }
            self.reserve(self.sent + TEMP_OPEN_CHUNK)?;
            let chunk = decoded[self.sent..self.sent + TEMP_OPEN_CHUNK].to_vec();
            let sent = match &self.tx {
                Some(tx) => tx.send(chunk).await.is_ok(),
                None => false,
            };
            if !sent {
                return Err(self.writer_failure().await);
            }
            self.sent += TEMP_OPEN_CHUNK;
        }
        Ok(())
    }
    fn start(&mut self) {
        // A few chunks in flight: the body is read on while the database writes.
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(32);
        let mut writer = self
            .store
            .temp_open_writer(&self.token_hash, self.now, self.expires_at);
        self.task = Some(tokio::spawn(async move {
            while let Some(chunk) = rx.recv().await {
                writer.write_chunk(&chunk).await?;
            }
            Ok(writer)
        }));
        self.tx = Some(tx);
    }

    /// The writer task's error, after it stopped taking chunks.
    async fn writer_failure(&mut self) -> WebError {
        self.tx = None;
        match self.task.take() {
            Some(task) => match task.await {
                Ok(Err(e)) => WebError::Store(e),
                _ => WebError::Open(OpenError::Internal),
            },
            None => WebError::Open(OpenError::Internal),
        }
    }

    /// Checks the whole `envelope` (a small one was not checked yet), stores the rest of it,
    /// makes it readable and keeps its bytes counted for the client; returns it for the
    /// in-memory hand-off.
    pub(super) async fn finish(mut self, envelope: Vec<u8>) -> Result<Vec<u8>, WebError> {
        check_upload(self.store, &envelope).await?;
        self.reserve(envelope.len())?;
        let Some(tx) = self.tx.take() else {
            self.store
                .insert_temp_open(&self.token_hash, &envelope, self.now, self.expires_at)
                .await?;
            self.slot.keep(envelope.len());
            return Ok(envelope);
        };
        for chunk in envelope
            .get(self.sent..)
            .unwrap_or_default()
            .chunks(TEMP_OPEN_CHUNK)
        {
            if tx.send(chunk.to_vec()).await.is_err() {
                return Err(self.writer_failure().await);
            }
        }
        drop(tx);
        let writer = match self.task.take() {
            Some(task) => task
                .await
                .map_err(|_| WebError::Open(OpenError::Internal))??,
            None => return Err(WebError::Open(OpenError::Internal)),
        };
        if writer.written() != envelope.len() {
            return Err(WebError::Open(OpenError::Internal));
        }
        writer.finish().await?;
        self.slot.keep(envelope.len());
        Ok(envelope)
    }
}

/// Where the scanner is in `key=value&key=value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Key,
    /// The value of a field other than `payload`: skipped.
    Skip,
    /// The value of `payload`: decoded.
    Payload,
}

/// Longest key kept for comparison; longer ones are not `payload` anyway.
const MAX_KEY: usize = 64;

pub(super) struct FormScanner {
    mode: Mode,
    key: Vec<u8>,
    key_too_long: bool,
    /// An escape cut by the end of a piece: '%' and maybe one hex digit.
    escape: Vec<u8>,
    decoder: Option<PayloadDecoder>,
    capacity: usize,
    envelope: Option<Vec<u8>>,
    scratch: Vec<u8>,
}

impl FormScanner {
    pub(super) fn new(capacity: usize) -> Self {
        FormScanner {
            mode: Mode::Key,
            key: Vec::with_capacity(MAX_KEY),
            key_too_long: false,
            escape: Vec::with_capacity(3),
            decoder: None,
            capacity,
            envelope: None,
            scratch: Vec::new(),
        }
    }

    pub(super) fn feed(&mut self, mut data: &[u8]) -> Result<(), WebError> {
        while !data.is_empty() {
            match self.mode {
                Mode::Key => match memchr::memchr2(b'=', b'&', data) {
                    Some(i) => {
                        self.push_key(&data[..i]);
                        let is_value = data[i] == b'=';
                        data = &data[i + 1..];
                        self.end_key(is_value)?;
                    }
                    None => {
                        self.push_key(data);
                        data = &[];
                    }
                },
                Mode::Skip => match memchr::memchr(b'&', data) {
                    Some(i) => {
                        data = &data[i + 1..];
                        self.mode = Mode::Key;
                    }
                    None => data = &[],
                },
                Mode::Payload => {
                    let end = memchr::memchr(b'&', data);
                    let (value, rest) = match end {
                        Some(i) => (&data[..i], &data[i + 1..]),
                        None => (data, &[][..]),
                    };
                    self.push_value(value)?;
                    data = rest;
                    if end.is_some() {
                        self.end_payload()?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The envelope decoded so far.
    pub(super) fn decoded(&self) -> &[u8] {
        match (&self.decoder, &self.envelope) {
            (Some(decoder), _) => decoder.decoded(),
            (None, Some(envelope)) => envelope,
            (None, None) => &[],
        }
    }

    pub(super) fn finish(mut self) -> Result<Vec<u8>, WebError> {
        match self.mode {
            Mode::Payload => self.end_payload()?,
            // A trailing key without '=' (empty value) is not the payload, unless it is a
            // bare `payload`, which is an empty payload.
            Mode::Key if !self.key.is_empty() => self.end_key(false)?,
            _ => {}
        }
        self.envelope.ok_or(WebError::NoPayload)
    }

    fn push_key(&mut self, part: &[u8]) {
        if self.key.len() + part.len() > MAX_KEY * 3 {
            self.key_too_long = true;
        } else {
            self.key.extend_from_slice(part);
        }
    }

    /// A key is complete; `is_value`: an '=' follows (else '&' or the end: an empty value).
    fn end_key(&mut self, is_value: bool) -> Result<(), WebError> {
        let is_payload = !self.key_too_long && percent_decoded(&self.key) == b"payload";
        self.key.clear();
        self.key_too_long = false;
        if !is_payload {
            self.mode = if is_value { Mode::Skip } else { Mode::Key };
            return Ok(());
        }
        if self.envelope.is_some() || self.decoder.is_some() {
            return Err(WebError::NoPayload); // a second payload field
        }
        self.decoder = Some(PayloadDecoder::with_capacity(self.capacity));
        self.mode = Mode::Payload;
        if !is_value {
            self.end_payload()?;
        }
        Ok(())
    }

    /// Percent-decodes a piece of the payload's value into the scratch buffer and feeds it to
    /// the base64 decoder. '+' is a space (ignored by the decoder, like line breaks).
    fn push_value(&mut self, mut value: &[u8]) -> Result<(), WebError> {
        self.scratch.clear();
        while !self.escape.is_empty() && !value.is_empty() {
            self.escape.push(value[0]);
            value = &value[1..];
            if self.escape.len() == 3 {
                let byte = hex_pair(self.escape[1], self.escape[2]).ok_or_else(damaged)?;
                self.scratch.push(byte);
                self.escape.clear();
            }
        }
        let cut = unescape_into(value, &mut self.scratch)?;
        // An escape cut off by the end of this piece: completed by the next one.
        self.escape
            .extend_from_slice(value.get(cut..).unwrap_or_default());
        match self.decoder.as_mut() {
            Some(decoder) => decoder.push(&self.scratch).map_err(open_error),
            None => Ok(()),
        }
    }

    fn end_payload(&mut self) -> Result<(), WebError> {
        if !self.escape.is_empty() {
            return Err(damaged());
        }
        if let Some(decoder) = self.decoder.take() {
            self.envelope = Some(decoder.finish().map_err(open_error)?);
        }
        self.mode = Mode::Key;
        Ok(())
    }
}

/// Percent-decodes `value` into `out` ('+' is a space). Returns where an escape cut off by
/// the end of `value` starts (or its length); an invalid escape is an error, since the text
/// could not be base64 either.
fn unescape_into(value: &[u8], out: &mut Vec<u8>) -> Result<usize, WebError> {
    out.reserve(value.len());
    let mut done = 0;
    for i in memchr::memchr2_iter(b'%', b'+', value) {
        if i < done {
            continue; // never: hex digits are neither '%' nor '+'
        }
        out.extend_from_slice(&value[done..i]);
        match value[i..] {
            [b'%', hi, lo, ..] => {
                out.push(hex_pair(hi, lo).ok_or_else(damaged)?);
                done = i + 3;
            }
            [b'%', ..] => return Ok(i),
            _ => {
                out.push(b' ');
                done = i + 1;
            }
        }
    }
    out.extend_from_slice(&value[done..]);
    Ok(value.len())
}

fn damaged() -> WebError {
    open_error(EnvelopeError::BadEncoding)
}

fn open_error(e: EnvelopeError) -> WebError {
    WebError::Open(OpenError::from(e))
}

fn hex_pair(hi: u8, lo: u8) -> Option<u8> {
    let mut byte = [0u8; 1];
    hex::decode_to_slice([hi, lo], &mut byte).ok()?;
    Some(byte[0])
}

/// A (short) key, percent-decoded as application/x-www-form-urlencoded does ('+' is a
/// space, and only then are escapes decoded); an invalid escape stays as it is.
fn percent_decoded(key: &[u8]) -> Vec<u8> {
    let spaced: Vec<u8> = key
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_encoding::percent_decode(&spaced).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(pieces: &[&[u8]]) -> Result<Vec<u8>, WebError> {
        let mut s = FormScanner::new(0);
        for p in pieces {
            s.feed(p)?;
        }
        s.finish()
    }

    /// The body split at every position gives the same result as in one piece.
    fn scan_all_splits(body: &str) -> Result<Vec<u8>, String> {
        let whole = scan(&[body.as_bytes()]).map_err(|e| format!("{e:?}"));
        for i in 0..=body.len() {
            let (a, b) = body.as_bytes().split_at(i);
            let split = scan(&[a, b]).map_err(|e| format!("{e:?}"));
            assert_eq!(split, whole, "split at {i} of {body:?}");
        }
        let bytes: Vec<&[u8]> = body.as_bytes().chunks(1).collect();
        assert_eq!(
            scan(&bytes).map_err(|e| format!("{e:?}")),
            whole,
            "byte by byte"
        );
        whole
    }

    #[test]
    fn payload_anywhere_with_escapes_and_line_breaks() {
        let envelope: Vec<u8> = (0u8..=255).collect();
        let text = sealpost_crypto::encode_payload(&envelope).replace('\n', "\r\n");
        let value: String = form_encode(&text);
        for body in [
            format!("payload={value}"),
            format!("a=1&payload={value}&b=%26x"),
            format!("x&pay%6Coad={value}&"),
            format!("next=%2Fopen&payload={value}"),
        ] {
            assert_eq!(scan_all_splits(&body).expect("payload"), envelope, "{body}");
        }
    }

    #[test]
    fn missing_duplicate_and_damaged_payloads_are_refused() {
        assert!(matches!(scan(&[b"a=1&b=2"]), Err(WebError::NoPayload)));
        assert!(matches!(scan(&[b""]), Err(WebError::NoPayload)));
        assert!(matches!(
            scan(&[b"payloads=QUJD"]),
            Err(WebError::NoPayload)
        ));
        assert!(matches!(
            scan(&[b"payload=QUJD&payload=QUJD"]),
            Err(WebError::NoPayload)
        ));
        for bad in [
            "payload=QUJ%",
            "payload=QUJ%4",
            "payload=QU%ZZJD",
            "payload=QUJD%3D",
            "payload=QU*D",
        ] {
            assert!(
                matches!(
                    scan_all_splits(bad),
                    Err(e) if e.contains("Damaged")
                ),
                "{bad}"
            );
        }
        // An empty payload decodes to nothing; the header check refuses it later.
        assert_eq!(scan_all_splits("payload=").expect("empty"), b"");
        assert_eq!(scan_all_splits("payload").expect("empty"), b"");
    }

    #[test]
    fn unescaping_agrees_with_a_plain_loop_at_every_alignment() {
        let text = "ab+c%2Bd%2f%3D==xyz%41%42%43+++%25long run without escapes%20x";
        for start in 0..text.len() {
            let piece = &text.as_bytes()[start..];
            let mut fast = Vec::new();
            let cut = unescape_into(piece, &mut fast);
            let mut slow = Vec::new();
            let mut i = 0;
            let mut slow_cut = piece.len();
            while i < piece.len() {
                match piece[i] {
                    b'+' => slow.push(b' '),
                    b'%' if i + 2 < piece.len() => {
                        let h = std::str::from_utf8(&piece[i + 1..i + 3]).unwrap();
                        slow.push(u8::from_str_radix(h, 16).unwrap());
                        i += 2;
                    }
                    b'%' => {
                        slow_cut = i;
                        break;
                    }
                    b => slow.push(b),
                }
                i += 1;
            }
            assert_eq!(cut.ok(), Some(slow_cut), "from {start}");
            assert_eq!(fast, slow, "from {start}");
        }
        assert!(unescape_into(b"abcdefgh%G1", &mut Vec::new()).is_err());
    }

    #[test]
    fn keys_decode_plus_before_escapes_and_keep_invalid_escapes() {
        assert_eq!(percent_decoded(b"pay%6Coad"), b"payload");
        assert_eq!(percent_decoded(b"a+b%2Bc%zz%4"), b"a b+c%zz%4");
    }

    fn form_encode(text: &str) -> String {
        text.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
}
