//! The sealed envelope: a versioned binary header, authenticated as AEAD
//! associated data, followed by a 192-bit nonce and the XChaCha20-Poly1305
//! ciphertext of the (optionally zstd-compressed) RFC 5322 message.
//! The byte layout is specified in `docs/ENVELOPE.md`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use crate::compress::{self, DecompressError};
use crate::keys::{KeyId, NONCE_LEN, RecipientKey, TAG_LEN};

/// The only envelope format version this code writes and reads.
pub const ENVELOPE_VERSION: u8 = 1;

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
    /// Format version (currently always [`ENVELOPE_VERSION`]).
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
        out
    }
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
}

/// Seals `message` for `recipient` under `key`.
///
/// A random 128-bit message id is generated. The message is zstd-compressed
/// (level 3); if that does not make it smaller it is stored raw and the
/// header says `compressed = false`. Returns the header and the envelope.
pub fn seal(
    key: &RecipientKey,
    key_id: KeyId,
    recipient: &str,
    created_at: i64,
    message: &[u8],
) -> Result<(EnvelopeHeader, Vec<u8>), EnvelopeError> {
    if recipient.is_empty() {
        return Err(EnvelopeError::Malformed("empty recipient"));
    }
    if recipient.len() > MAX_RECIPIENT_LEN {
        return Err(EnvelopeError::RecipientTooLong);
    }

    let compressed = compress::compress(message).map_err(|_| EnvelopeError::Compression)?;
    let use_compressed = compressed.len() < message.len();
    let plaintext: &[u8] = if use_compressed { &compressed } else { message };

    let mut message_id = [0u8; 16];
    OsRng.fill_bytes(&mut message_id);
    let header = EnvelopeHeader {
        version: ENVELOPE_VERSION,
        message_id,
        recipient: recipient.to_owned(),
        key_id,
        created_at,
        compressed: use_compressed,
    };
    let mut out = header.encode();

    // Random 192-bit nonces: collision probability is negligible even for
    // billions of envelopes under one key, so no state has to be kept.
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
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
    if version != ENVELOPE_VERSION {
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
    let aad_len = FIXED_HEADER_LEN + recipient_len;
    if e.len() < aad_len + NONCE_LEN + TAG_LEN {
        return Err(EnvelopeError::Truncated);
    }
    let recipient = std::str::from_utf8(&e[FIXED_HEADER_LEN..aad_len])
        .map_err(|_| EnvelopeError::Malformed("recipient is not UTF-8"))?
        .to_owned();

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
/// decompressor streams and stops at the cap, so memory stays bounded.
pub fn open(
    key: &RecipientKey,
    envelope: &[u8],
    max_plaintext: usize,
) -> Result<(EnvelopeHeader, Vec<u8>), EnvelopeError> {
    let (header, aad_len) = parse(envelope)?;
    // `parse` checked these lengths; the checked forms keep it panic-free.
    let (aad, rest) = envelope
        .split_at_checked(aad_len)
        .ok_or(EnvelopeError::Truncated)?;
    let (nonce, ciphertext) = rest
        .split_first_chunk::<NONCE_LEN>()
        .ok_or(EnvelopeError::Truncated)?;

    let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
    let plaintext = Zeroizing::new(
        cipher
            .decrypt(
                nonce.into(),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map_err(|_| EnvelopeError::Authentication)?,
    );

    let mut message = if header.compressed {
        compress::decompress_capped(&plaintext, max_plaintext).map_err(|e| match e {
            DecompressError::TooLarge => EnvelopeError::TooLarge,
            DecompressError::Corrupt => EnvelopeError::Compression,
        })?
    } else {
        if plaintext.len() > max_plaintext {
            return Err(EnvelopeError::TooLarge);
        }
        plaintext
    };
    // Hand the buffer to the caller without a copy; the emptied wrapper
    // has nothing left to wipe.
    Ok((header, std::mem::take(&mut *message)))
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
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    STANDARD
        .decode(compact)
        .map_err(|_| EnvelopeError::BadEncoding)
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
