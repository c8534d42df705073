//! The sealed envelope: a versioned binary header, authenticated as AEAD
//! associated data, followed by a 192-bit nonce and the XChaCha20-Poly1305
//! ciphertext of the (optionally zstd-compressed) RFC 5322 message.
//! The byte layout is specified in `docs/ENVELOPE.md`.
//!
//! Version 1 encrypts under the recipient key. Version 2 (message control) encrypts under a
//! content key derived from the recipient key and a per-message secret held by the server
//! ([`MessageSecret`]), and carries a check value of that secret in its header, so a missing
//! secret, a secret of another envelope and a changed byte are told apart.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadInPlace, KeyInit, Payload};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::compress::{self, DecompressError};
use crate::keys::{KEY_LEN, KeyId, NONCE_LEN, RecipientKey, TAG_LEN};
use crate::message_secret::MessageSecret;

/// Format version 1: sealed under the recipient key alone ([`seal`], [`seal_prepared`]).
pub const ENVELOPE_VERSION: u8 = 1;

/// Format version 2: sealed under a key derived from the recipient key and a message secret
/// ([`seal_v2`], [`seal_prepared_v2`]); the default for new mail.
pub const ENVELOPE_VERSION_2: u8 = 2;

/// HKDF info of a version-2 content key.
const V2_CONTENT_KEY_INFO: &[u8] = b"sealpost/v2/envelope-content-key";

/// HKDF info of a version-2 secret check value.
const V2_SECRET_CHECK_INFO: &[u8] = b"sealpost/v2/envelope-secret-check";

/// Length of the secret check value in a version-2 header.
const SECRET_CHECK_LEN: usize = 16;

/// First three bytes of every envelope.
const MAGIC: &[u8; 3] = b"SPX";

/// Flag bit 0: the plaintext was zstd-compressed before encryption.
const FLAG_COMPRESSED: u8 = 0x01;

/// Longest recipient address accepted, in bytes (RFC 5321 path limit is 256
/// octets; 320 leaves room for 64-octet local part + 255-octet domain + "@").
const MAX_RECIPIENT_LEN: usize = 320;

/// Bytes of the header before the recipient: magic 3, version 1, flags 1,
/// message id 16, created_at 8, account id 16, key version 4, recipient len 2.
const FIXED_HEADER_LEN: usize = 3 + 1 + 1 + 16 + 8 + 16 + 4 + 2;

/// Base64 line length of the payload (as in MIME, RFC 2045).
const LINE_LEN: usize = 76;

/// The authenticated header of an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeHeader {
    /// Format version: [`ENVELOPE_VERSION`] or [`ENVELOPE_VERSION_2`].
    pub version: u8,
    /// Random 128-bit id of this sealed message, for audit and logs.
    pub message_id: [u8; 16],
    /// The recipient address the envelope was sealed for.
    pub recipient: String,
    /// Which account key (and version) opens it.
    pub key_id: KeyId,
    /// Seconds since the Unix epoch at sealing time.
    pub created_at: i64,
    /// Whether the plaintext was zstd-compressed.
    pub compressed: bool,
    /// Version 2 only: HKDF(salt = message id, ikm = message secret) truncated to 16 bytes,
    /// so the opener can tell a secret of another envelope from a changed byte.
    pub secret_check: Option<[u8; SECRET_CHECK_LEN]>,
}

impl EnvelopeHeader {
    /// The message id as 32 lower-case hex digits.
    pub fn message_id_hex(&self) -> String {
        hex::encode(self.message_id)
    }

    /// Serialises the header: exactly the bytes that are authenticated as
    /// associated data (everything before the nonce).
    fn encode(&self) -> Vec<u8> {
        let r = self.recipient.as_bytes();
        let mut out = Vec::with_capacity(FIXED_HEADER_LEN + r.len());
        out.extend_from_slice(MAGIC);
        out.push(self.version);
        out.push(if self.compressed { FLAG_COMPRESSED } else { 0 });
        out.extend_from_slice(&self.message_id);
        out.extend_from_slice(&self.created_at.to_be_bytes());
        out.extend_from_slice(self.key_id.account_id.as_bytes());
        out.extend_from_slice(&self.key_id.version.to_be_bytes());
        // Callers check the length first (1..=320), so it fits in a u16.
        out.extend_from_slice(&(r.len() as u16).to_be_bytes());
        out.extend_from_slice(r);
        if let Some(check) = &self.secret_check {
            out.extend_from_slice(check);
        }
        out
    }
}

/// The version-2 content key: HKDF-SHA256(salt = message id, ikm = recipient key || message
/// secret, info = "sealpost/v2/envelope-content-key"). Without the secret it cannot be
/// computed, whatever else an attacker holds.
fn v2_content_key(
    key: &RecipientKey,
    secret: &MessageSecret,
    message_id: &[u8; 16],
) -> Zeroizing<[u8; KEY_LEN]> {
    let mut ikm = Zeroizing::new([0u8; 2 * KEY_LEN]);
    ikm[..KEY_LEN].copy_from_slice(key.as_bytes());
    ikm[KEY_LEN..].copy_from_slice(secret.as_bytes());
    let hk = Hkdf::<Sha256>::new(Some(message_id), ikm.as_slice());
    let mut okm = Zeroizing::new([0u8; KEY_LEN]);
    // Cannot fail: 32 bytes is far below HKDF's 255 * 32 limit.
    let _ = hk.expand(V2_CONTENT_KEY_INFO, okm.as_mut_slice());
    okm
}

/// The version-2 secret check value (see [`EnvelopeHeader::secret_check`]).
fn v2_secret_check(secret: &MessageSecret, message_id: &[u8; 16]) -> [u8; SECRET_CHECK_LEN] {
    let hk = Hkdf::<Sha256>::new(Some(message_id), secret.as_bytes());
    let mut okm = [0u8; SECRET_CHECK_LEN];
    let _ = hk.expand(V2_SECRET_CHECK_INFO, &mut okm);
    okm
}

/// Why an envelope could not be sealed or opened. Each maps to a clear error
/// page in the portal; none of them reveals anything about the plaintext.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EnvelopeError {
    /// The envelope ends before its structure is complete.
    #[error("the envelope is incomplete (truncated)")]
    Truncated,
    /// It does not start with the Sealpost magic bytes.
    #[error("this is not a Sealpost envelope")]
    BadMagic,
    /// A format version this build does not understand.
    #[error("unsupported envelope version {0}")]
    UnsupportedVersion(u8),
    /// The header is structurally invalid.
    #[error("malformed envelope: {0}")]
    Malformed(&'static str),
    /// Decryption failed: wrong key, or the envelope was altered.
    #[error("the envelope could not be decrypted: wrong key, or it was altered")]
    Authentication,
    /// The message is larger than the caller's limit.
    #[error("the message is larger than the allowed maximum")]
    TooLarge,
    /// The payload text is not valid base64.
    #[error("the payload is not valid base64")]
    BadEncoding,
    /// Compression or decompression failed.
    #[error("the message could not be (de)compressed")]
    Compression,
    /// The recipient address does not fit the header (more than 320 bytes).
    #[error("the recipient address is longer than {MAX_RECIPIENT_LEN} bytes")]
    RecipientTooLong,
    /// A version-2 envelope opened without its message secret: the secret was deleted
    /// (revocation, expiry) or never given. It can never be opened again.
    #[error("the message secret of this envelope is gone (revoked or expired)")]
    SecretMissing,
    /// The message secret given belongs to another envelope.
    #[error("the message secret given belongs to another envelope")]
    WrongSecret,
}

/// A message compressed once and ready to be sealed for any number of recipients: the
/// compression is the costly part of sealing and does not depend on the recipient.
pub struct PreparedMessage<'a> {
    bytes: PreparedBytes<'a>,
}

enum PreparedBytes<'a> {
    Compressed(Zeroizing<Vec<u8>>),
    Raw(&'a [u8]),
}

/// zstd-compresses `message` (level 3) for [`seal_prepared`]; if that does not make it smaller
/// it is kept raw and its envelopes will say `compressed = false`.
pub fn prepare(message: &[u8]) -> Result<PreparedMessage<'_>, EnvelopeError> {
    // `compress` already returns its output in a zeroising buffer.
    let compressed = compress::compress(message).map_err(|_| EnvelopeError::Compression)?;
    let bytes = if compressed.len() < message.len() {
        PreparedBytes::Compressed(compressed)
    } else {
        PreparedBytes::Raw(message)
    };
    Ok(PreparedMessage { bytes })
}

/// Seals `message` for `recipient` under `key`: [`prepare`] then [`seal_prepared`].
///
/// A random 128-bit message id is generated. Returns the header and the envelope.
pub fn seal(
    key: &RecipientKey,
    key_id: KeyId,
    recipient: &str,
    created_at: i64,
    message: &[u8],
) -> Result<(EnvelopeHeader, Vec<u8>), EnvelopeError> {
    check_recipient(recipient)?;
    seal_prepared(key, key_id, recipient, created_at, &prepare(message)?)
}

fn check_recipient(recipient: &str) -> Result<(), EnvelopeError> {
    if recipient.is_empty() {
        return Err(EnvelopeError::Malformed("empty recipient"));
    }
    if recipient.len() > MAX_RECIPIENT_LEN {
        return Err(EnvelopeError::RecipientTooLong);
    }
    Ok(())
}

/// Seals a prepared message for one recipient: a fresh message id and nonce every time, so
/// envelopes of one message for different recipients share nothing but the plaintext.
pub fn seal_prepared(
    key: &RecipientKey,
    key_id: KeyId,
    recipient: &str,
    created_at: i64,
    message: &PreparedMessage<'_>,
) -> Result<(EnvelopeHeader, Vec<u8>), EnvelopeError> {
    seal_with(key, None, key_id, recipient, created_at, message)
}

/// Seals `message` as a version-2 envelope: [`prepare`] then [`seal_prepared_v2`].
pub fn seal_v2(
    key: &RecipientKey,
    secret: &MessageSecret,
    key_id: KeyId,
    recipient: &str,
    created_at: i64,
    message: &[u8],
) -> Result<(EnvelopeHeader, Vec<u8>), EnvelopeError> {
    check_recipient(recipient)?;
    seal_prepared_v2(
        key,
        secret,
        key_id,
        recipient,
        created_at,
        &prepare(message)?,
    )
}

/// [`seal_prepared`] in format version 2: the content key is derived from `key` and
/// `secret` (a fresh [`MessageSecret`] per envelope, kept by the caller in the ledger).
pub fn seal_prepared_v2(
    key: &RecipientKey,
    secret: &MessageSecret,
    key_id: KeyId,
    recipient: &str,
    created_at: i64,
    message: &PreparedMessage<'_>,
) -> Result<(EnvelopeHeader, Vec<u8>), EnvelopeError> {
    seal_with(key, Some(secret), key_id, recipient, created_at, message)
}

fn seal_with(
    key: &RecipientKey,
    secret: Option<&MessageSecret>,
    key_id: KeyId,
    recipient: &str,
    created_at: i64,
    message: &PreparedMessage<'_>,
) -> Result<(EnvelopeHeader, Vec<u8>), EnvelopeError> {
    check_recipient(recipient)?;
    let (plaintext, use_compressed): (&[u8], bool) = match &message.bytes {
        PreparedBytes::Compressed(c) => (c, true),
        PreparedBytes::Raw(r) => (r, false),
    };

    let mut message_id = [0u8; 16];
    OsRng.fill_bytes(&mut message_id);
    let header = EnvelopeHeader {
        version: if secret.is_some() {
            ENVELOPE_VERSION_2
        } else {
            ENVELOPE_VERSION
        },
        message_id,
        recipient: recipient.to_owned(),
        key_id,
        created_at,
        compressed: use_compressed,
        secret_check: secret.map(|s| v2_secret_check(s, &message_id)),
    };
    let mut out = header.encode();
    let content_key = match secret {
        Some(secret) => v2_content_key(key, secret, &message_id),
        None => Zeroizing::new(*key.as_bytes()),
    };

    // Random 192-bit nonces: collision probability is negligible even for
    // billions of envelopes under one key, so no state has to be kept.
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let cipher = XChaCha20Poly1305::new(content_key.as_slice().into());
    let ciphertext = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plaintext,
                aad: &out,
            },
        )
        // Only plaintexts beyond the cipher's ~256 GiB limit fail here.
        .map_err(|_| EnvelopeError::TooLarge)?;

    out.reserve_exact(NONCE_LEN + ciphertext.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok((header, out))
}

/// Parses and validates the header without decrypting, so the caller can
/// look up the key it names. Also checks that the envelope is long enough
/// to hold a nonce and an authentication tag.
pub fn read_header(envelope: &[u8]) -> Result<EnvelopeHeader, EnvelopeError> {
    parse(envelope).map(|(h, _)| h)
}

/// Returns the header and the length of the associated data (= offset of
/// the nonce).
fn parse(e: &[u8]) -> Result<(EnvelopeHeader, usize), EnvelopeError> {
    // Magic: say "not ours" as soon as a present byte differs, and
    // "truncated" only for a correct but incomplete prefix.
    let have = e.len().min(MAGIC.len());
    if e[..have] != MAGIC[..have] {
        return Err(EnvelopeError::BadMagic);
    }
    if e.len() < MAGIC.len() + 1 {
        return Err(EnvelopeError::Truncated);
    }
    // The version decides how everything after it is laid out, so nothing
    // else is interpreted before it is known.
    let version = e[3];
    if version != ENVELOPE_VERSION && version != ENVELOPE_VERSION_2 {
        return Err(EnvelopeError::UnsupportedVersion(version));
    }
    if e.len() < FIXED_HEADER_LEN {
        return Err(EnvelopeError::Truncated);
    }

    let mut r = Reader { buf: e, pos: 4 };
    let flags = r.array::<1>()[0];
    if flags & !FLAG_COMPRESSED != 0 {
        return Err(EnvelopeError::Malformed("unknown flag bits set"));
    }
    let message_id = r.array::<16>();
    let created_at = i64::from_be_bytes(r.array::<8>());
    let account_id = uuid::Uuid::from_bytes(r.array::<16>());
    let key_version = u32::from_be_bytes(r.array::<4>());
    let recipient_len = usize::from(u16::from_be_bytes(r.array::<2>()));
    if recipient_len == 0 || recipient_len > MAX_RECIPIENT_LEN {
        return Err(EnvelopeError::Malformed("recipient length out of range"));
    }
    let recipient_end = FIXED_HEADER_LEN + recipient_len;
    let check_len = if version == ENVELOPE_VERSION_2 {
        SECRET_CHECK_LEN
    } else {
        0
    };
    let aad_len = recipient_end + check_len;
    if e.len() < aad_len + NONCE_LEN + TAG_LEN {
        return Err(EnvelopeError::Truncated);
    }
    let recipient = std::str::from_utf8(&e[FIXED_HEADER_LEN..recipient_end])
        .map_err(|_| EnvelopeError::Malformed("recipient is not UTF-8"))?
        .to_owned();
    let secret_check = (check_len > 0).then(|| {
        let mut r = Reader {
            buf: e,
            pos: recipient_end,
        };
        r.array::<SECRET_CHECK_LEN>()
    });

    Ok((
        EnvelopeHeader {
            version,
            message_id,
            recipient,
            key_id: KeyId {
                account_id,
                version: key_version,
            },
            created_at,
            compressed: flags & FLAG_COMPRESSED != 0,
            secret_check,
        },
        aad_len,
    ))
}

/// Reads fixed-size fields from a buffer whose length was already checked.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        // The caller verified the length; `get` keeps this panic-free anyway
        // (a short read would leave zeros, never index out of bounds).
        if let Some(s) = self.buf.get(self.pos..self.pos + N) {
            a.copy_from_slice(s);
        }
        self.pos += N;
        a
    }
}

/// Verifies and decrypts an envelope, then decompresses it. A plaintext
/// larger than `max_plaintext` gives [`EnvelopeError::TooLarge`]; the
/// decompressor stops at the cap, so memory stays bounded.
/// [`open_owned`] does the same without copying the envelope first. A version-2 envelope
/// needs its message secret: [`open_with_secret`]; here it is [`EnvelopeError::SecretMissing`].
pub fn open(
    key: &RecipientKey,
    envelope: &[u8],
    max_plaintext: usize,
) -> Result<(EnvelopeHeader, Vec<u8>), EnvelopeError> {
    // Decryption needs a writable buffer anyway (the AEAD copied the ciphertext before).
    open_owned(key, envelope.to_vec(), max_plaintext)
}

/// [`open`] for either version: `secret` is the envelope's message secret, `None` when the
/// ledger holds none (a version-1 envelope, or one whose secret was deleted).
pub fn open_with_secret(
    key: &RecipientKey,
    secret: Option<&MessageSecret>,
    envelope: &[u8],
    max_plaintext: usize,
) -> Result<(EnvelopeHeader, Vec<u8>), EnvelopeError> {
    open_owned_with_secret(key, secret, envelope.to_vec(), max_plaintext)
}

/// [`open`] for an envelope the caller no longer needs: it is verified and decrypted in
/// place, so the only other large buffer is the decompressed message. The envelope's buffer
/// is wiped before it is freed (it held plaintext), also on every error after decryption.
pub fn open_owned(
    key: &RecipientKey,
    envelope: Vec<u8>,
    max_plaintext: usize,
) -> Result<(EnvelopeHeader, Vec<u8>), EnvelopeError> {
    open_owned_with_secret(key, None, envelope, max_plaintext)
}

/// [`open_owned`] for either version (see [`open_with_secret`]). For version 2 the order is:
/// no secret → [`EnvelopeError::SecretMissing`]; a secret whose check value differs from the
/// header's → [`EnvelopeError::WrongSecret`]; then the AEAD, where any changed byte is
/// [`EnvelopeError::Authentication`]. A secret given for a version-1 envelope is ignored.
pub fn open_owned_with_secret(
    key: &RecipientKey,
    secret: Option<&MessageSecret>,
    envelope: Vec<u8>,
    max_plaintext: usize,
) -> Result<(EnvelopeHeader, Vec<u8>), EnvelopeError> {
    let (header, aad_len) = parse(&envelope)?;
    let content_key = match (&header.secret_check, secret) {
        (None, _) => Zeroizing::new(*key.as_bytes()),
        (Some(_), None) => return Err(EnvelopeError::SecretMissing),
        (Some(check), Some(secret)) => {
            let expected = v2_secret_check(secret, &header.message_id);
            if !bool::from(expected.ct_eq(check)) {
                return Err(EnvelopeError::WrongSecret);
            }
            v2_content_key(key, secret, &header.message_id)
        }
    };
    let mut envelope = Zeroizing::new(envelope);
    // `parse` checked these lengths; the checked forms keep it panic-free.
    let (aad, rest) = envelope
        .split_at_mut_checked(aad_len)
        .ok_or(EnvelopeError::Truncated)?;
    let (nonce, rest) = rest
        .split_first_chunk_mut::<NONCE_LEN>()
        .ok_or(EnvelopeError::Truncated)?;
    let (body, tag) = rest
        .split_last_chunk_mut::<TAG_LEN>()
        .ok_or(EnvelopeError::Truncated)?;

    // The tag is verified over the whole ciphertext before a byte is decrypted.
    let cipher = XChaCha20Poly1305::new(content_key.as_slice().into());
    cipher
        .decrypt_in_place_detached(&XNonce::from(*nonce), aad, body, &Tag::from(*tag))
        .map_err(|_| EnvelopeError::Authentication)?;

    if header.compressed {
        let mut message =
            compress::decompress_capped(body, max_plaintext).map_err(|e| match e {
                DecompressError::TooLarge => EnvelopeError::TooLarge,
                DecompressError::Corrupt => EnvelopeError::Compression,
            })?;
        // Hand the buffer to the caller without a copy; the emptied wrapper has nothing
        // left to wipe. `envelope` (decrypted compressed text) is wiped on drop.
        return Ok((header, std::mem::take(&mut *message)));
    }
    let len = body.len();
    if len > max_plaintext {
        return Err(EnvelopeError::TooLarge);
    }
    // Uncompressed: the plaintext already sits in the buffer; move it to the front.
    let start = aad_len + NONCE_LEN;
    envelope.copy_within(start..start + len, 0);
    envelope.truncate(len);
    // What is left past the end is a stale copy of the plaintext's tail (and the tag).
    zeroize::Zeroize::zeroize(envelope.spare_capacity_mut());
    Ok((header, std::mem::take(&mut *envelope)))
}

/// Standard base64 of the envelope, in lines of 76 characters joined by
/// "\n" (no trailing newline), so it fits in HTML and mail without very long
/// lines.
pub fn encode_payload(envelope: &[u8]) -> String {
    let b64 = STANDARD.encode(envelope);
    let mut out = String::with_capacity(b64.len() + b64.len() / LINE_LEN + 1);
    // base64 output is ASCII, so splitting at any byte index is a char
    // boundary.
    for (i, line) in b64.as_bytes().chunks(LINE_LEN).enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
    }
    out
}

/// Decodes payload text, ignoring all ASCII whitespace (line breaks from
/// the HTML form arrive as CR LF, and mail clients may re-wrap lines).
pub fn decode_payload(text: &str) -> Result<Vec<u8>, EnvelopeError> {
    let mut decoder = PayloadDecoder::with_capacity(text.len() / 4 * 3 + 3);
    decoder.push(text.as_bytes())?;
    decoder.finish()
}

/// Characters decoded at a time by [`PayloadDecoder`] (a multiple of 4, so
/// no base64 quantum is ever split between two blocks).
const DECODE_BLOCK: usize = 16 * 1024;

/// Decodes payload text that arrives in pieces (a request body read as it
/// comes in) straight into the envelope's buffer, ignoring ASCII whitespace
/// like [`decode_payload`], with no copy of the whole text. Strict standard
/// base64 with padding, exactly as [`decode_payload`]: the text is accepted
/// or refused the same whichever way it is split.
pub struct PayloadDecoder {
    out: Vec<u8>,
    /// Characters not yet decoded (whitespace already dropped).
    pending: Box<[u8; DECODE_BLOCK]>,
    pending_len: usize,
    /// Set after a block that ended in padding: only whitespace may follow.
    ended: bool,
}

impl PayloadDecoder {
    /// `capacity`: the expected size of the decoded envelope (a hint; for a
    /// body of n characters at most n / 4 * 3 bytes).
    pub fn with_capacity(capacity: usize) -> Self {
        PayloadDecoder {
            out: Vec::with_capacity(capacity),
            pending: Box::new([0; DECODE_BLOCK]),
            pending_len: 0,
            ended: false,
        }
    }

    /// The bytes decoded so far (the beginning of the envelope).
    pub fn decoded(&self) -> &[u8] {
        &self.out
    }

    /// Feeds the next piece of text.
    pub fn push(&mut self, mut text: &[u8]) -> Result<(), EnvelopeError> {
        while !text.is_empty() {
            // Fast path: whole quanta without whitespace are decoded where they are.
            let direct = text.len().min(DECODE_BLOCK) / 4 * 4;
            if self.pending_len == 0
                && direct > 0
                && let Some((block, rest)) = text.split_at_checked(direct)
                && !block
                    .iter()
                    .fold(false, |ws, b| ws | b.is_ascii_whitespace())
            {
                decode_block(&mut self.out, &mut self.ended, block)?;
                text = rest;
                continue;
            }
            let room = DECODE_BLOCK - self.pending_len;
            let (now, rest) = text.split_at(room.min(text.len()));
            let pending = self.pending.get_mut(self.pending_len..).unwrap_or_default();
            self.pending_len += compact(now, pending);
            text = rest;
            if self.pending_len == DECODE_BLOCK {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Decodes what is left and returns the envelope bytes.
    pub fn finish(mut self) -> Result<Vec<u8>, EnvelopeError> {
        self.flush()?;
        Ok(self.out)
    }

    fn flush(&mut self) -> Result<(), EnvelopeError> {
        let len = std::mem::take(&mut self.pending_len);
        let block = self.pending.get(..len).unwrap_or_default();
        decode_block(&mut self.out, &mut self.ended, block)
    }
}

/// Copies `src` without its ASCII whitespace into `dst` (at least as long as
/// `src`); returns the number of bytes written. Payload text comes in lines
/// (of 76 characters, LF or CR LF) or in one piece, so it is taken a line at
/// a time: a line whose only whitespace is its end is copied whole, anything
/// else byte by byte.
fn compact(src: &[u8], dst: &mut [u8]) -> usize {
    let mut n = 0;
    let mut src = src;
    while !src.is_empty() {
        let end = memchr::memchr(b'\n', src).map_or(src.len(), |i| i + 1);
        let (line, rest) = src.split_at(end);
        src = rest;
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        let Some(out) = dst.get_mut(n..) else { break };
        if !body
            .iter()
            .fold(false, |ws, b| ws | b.is_ascii_whitespace())
            && let Some(out) = out.get_mut(..body.len())
        {
            out.copy_from_slice(body);
            n += body.len();
        } else {
            // Branch-free compaction: every byte is written, only the
            // non-whitespace ones advance.
            let mut k = 0;
            for &b in line {
                if let Some(slot) = out.get_mut(k) {
                    *slot = b;
                }
                k += usize::from(!b.is_ascii_whitespace());
            }
            n += k;
        }
    }
    n
}

/// Decodes one block of whitespace-free characters, appending to `out`.
fn decode_block(out: &mut Vec<u8>, ended: &mut bool, block: &[u8]) -> Result<(), EnvelopeError> {
    if block.is_empty() {
        return Ok(());
    }
    // Padding closes the text: another block after it would make the whole
    // text invalid base64, as one decode of all of it would say.
    if *ended {
        return Err(EnvelopeError::BadEncoding);
    }
    STANDARD
        .decode_vec(block, out)
        .map_err(|_| EnvelopeError::BadEncoding)?;
    *ended = block.last() == Some(&b'=');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kid() -> KeyId {
        KeyId {
            account_id: uuid::Uuid::from_bytes([0x11; 16]),
            version: 7,
        }
    }

    #[test]
    fn layout_offsets_match_the_documentation() {
        let key = RecipientKey::from_bytes([9; 32]);
        let (h, env) = seal(&key, kid(), "a@b.example", -5, b"x").expect("seal");
        assert_eq!(&env[..3], b"SPX");
        assert_eq!(env[3], 1);
        assert_eq!(env[4], 0); // one byte does not compress
        assert_eq!(&env[5..21], &h.message_id);
        assert_eq!(&env[21..29], &(-5i64).to_be_bytes());
        assert_eq!(&env[29..45], &[0x11; 16]);
        assert_eq!(&env[45..49], &7u32.to_be_bytes());
        assert_eq!(&env[49..51], &11u16.to_be_bytes());
        assert_eq!(&env[51..62], b"a@b.example");
        // nonce 24 + 1 byte ciphertext + 16 tag
        assert_eq!(env.len(), 62 + 24 + 1 + 16);
        assert_eq!(h.encode(), env[..62].to_vec());
        assert_eq!(h.message_id_hex().len(), 32);
    }

    #[test]
    fn one_prepared_message_seals_independently_for_each_recipient() {
        let text = b"Subject: x\r\n\r\n".repeat(200);
        let prepared = prepare(&text).expect("prepare");
        let k1 = RecipientKey::from_bytes([1; 32]);
        let k2 = RecipientKey::from_bytes([2; 32]);
        let (h1, e1) = seal_prepared(&k1, kid(), "one@x.example", 1, &prepared).expect("seal 1");
        let (h2, e2) = seal_prepared(&k2, kid(), "two@x.example", 1, &prepared).expect("seal 2");
        assert!(h1.compressed && h2.compressed, "repetitive text compresses");
        assert_ne!(h1.message_id, h2.message_id);
        assert_eq!(open(&k1, &e1, 1 << 20).expect("open 1").1, text);
        assert_eq!(open(&k2, &e2, 1 << 20).expect("open 2").1, text);
        assert!(
            open(&k1, &e2, 1 << 20).is_err(),
            "keys are not interchangeable"
        );

        // Incompressible input is sealed raw, as `seal` does.
        let noise: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let raw = prepare(&noise).expect("prepare noise");
        let (h, e) = seal_prepared(&k1, kid(), "one@x.example", 1, &raw).expect("seal raw");
        assert_eq!(
            h.compressed,
            seal(&k1, kid(), "one@x.example", 1, &noise)
                .expect("seal")
                .0
                .compressed
        );
        assert_eq!(open(&k1, &e, 1 << 20).expect("open raw").1, noise);
        assert!(matches!(
            seal_prepared(&k1, kid(), "", 1, &raw),
            Err(EnvelopeError::Malformed(_))
        ));
    }

    /// The worked example in docs/ENVELOPE.md, byte for byte.
    #[test]
    fn documented_aad_example() {
        let h = EnvelopeHeader {
            version: 1,
            message_id: [
                0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
                0xee, 0xff,
            ],
            recipient: "anna@example.org".to_owned(),
            key_id: KeyId {
                account_id: uuid::Uuid::parse_str("0f8fad5b-d9cb-469f-a165-70867728950e")
                    .expect("uuid"),
                version: 2,
            },
            created_at: 1_700_000_000,
            compressed: true,
            secret_check: None,
        };
        let doc = "5350580101\
                   00112233445566778899aabbccddeeff\
                   000000006553f100\
                   0f8fad5bd9cb469fa16570867728950e\
                   00000002\
                   0010\
                   616e6e61406578616d706c652e6f7267";
        assert_eq!(hex::encode(h.encode()), doc);

        // A real envelope with this header parses back to it.
        let key = RecipientKey::from_bytes([1; 32]);
        let mut env = h.encode();
        env.extend_from_slice(&[0u8; NONCE_LEN + TAG_LEN]);
        assert_eq!(read_header(&env), Ok(h));
        assert_eq!(open(&key, &env, 1024), Err(EnvelopeError::Authentication));
    }

    #[test]
    fn magic_errors() {
        assert_eq!(read_header(b""), Err(EnvelopeError::Truncated));
        assert_eq!(read_header(b"SP"), Err(EnvelopeError::Truncated));
        assert_eq!(read_header(b"X"), Err(EnvelopeError::BadMagic));
        assert_eq!(read_header(b"SPY\x01"), Err(EnvelopeError::BadMagic));
        assert_eq!(
            read_header(b"SPX\x09"),
            Err(EnvelopeError::UnsupportedVersion(9))
        );
    }

    #[test]
    fn unknown_flag_bits_are_malformed() {
        let key = RecipientKey::from_bytes([9; 32]);
        let (_, mut env) = seal(&key, kid(), "a@b.example", 0, b"x").expect("seal");
        env[4] |= 0x80;
        assert!(matches!(
            read_header(&env),
            Err(EnvelopeError::Malformed(_))
        ));
    }

    #[test]
    fn recipient_length_limits() {
        let key = RecipientKey::from_bytes([9; 32]);
        let long = "a".repeat(321);
        assert_eq!(
            seal(&key, kid(), &long, 0, b"m").map(|_| ()),
            Err(EnvelopeError::RecipientTooLong)
        );
        assert!(seal(&key, kid(), &long[..320], 0, b"m").is_ok());
        assert!(matches!(
            seal(&key, kid(), "", 0, b"m"),
            Err(EnvelopeError::Malformed(_))
        ));
    }

    #[test]
    fn encode_payload_wraps_at_76() {
        let text = encode_payload(&[0xA5; 200]);
        let lines: Vec<&str> = text.split('\n').collect();
        assert!(lines.len() > 1);
        assert!(lines[..lines.len() - 1].iter().all(|l| l.len() == 76));
        assert!(lines.last().is_some_and(|l| !l.is_empty() && l.len() <= 76));
        assert_eq!(decode_payload(&text).expect("decode"), vec![0xA5; 200]);
        assert_eq!(encode_payload(&[]), "");
    }
}
