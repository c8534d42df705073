//! Envelope parsing and opening. Three shapes of input, chosen by the first byte:
//! 0: raw bytes as an envelope (header parser, length checks, AEAD rejection);
//! 1: the input as base64 payload text (`decode_payload`) and then as an envelope;
//! 2: a correctly authenticated envelope whose plaintext is the fuzz input, flagged as
//!    compressed: only a key holder can build these, but it drives the capped zstd
//!    decompressor with arbitrary frames (bombs, corrupt frames, huge declared sizes);
//! 3: seal the input, flip one byte chosen by the input, open: must fail unless unchanged,
//!    and an untouched round trip must give the input back.
#![no_main]

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use libfuzzer_sys::fuzz_target;
use sealpost_crypto::{EnvelopeError, KeyId, RecipientKey};

const CAP: usize = 256 * 1024;
const RECIPIENT: &str = "kunde@example.com";

fn key() -> RecipientKey {
    RecipientKey::from_bytes([0x42; 32])
}

fn key_id() -> KeyId {
    KeyId {
        account_id: uuid::Uuid::from_bytes([0x11; 16]),
        version: 3,
    }
}

/// The header layout from docs/ENVELOPE.md, written independently of the crate's encoder.
fn header(compressed: bool) -> Vec<u8> {
    let mut h = b"SPX\x01".to_vec();
    h.push(u8::from(compressed));
    h.extend_from_slice(&[0xab; 16]);
    h.extend_from_slice(&1_700_000_000i64.to_be_bytes());
    h.extend_from_slice(key_id().account_id.as_bytes());
    h.extend_from_slice(&key_id().version.to_be_bytes());
    h.extend_from_slice(&(RECIPIENT.len() as u16).to_be_bytes());
    h.extend_from_slice(RECIPIENT.as_bytes());
    h
}

fn check_open(envelope: &[u8]) {
    let header = sealpost_crypto::read_header(envelope);
    let opened = sealpost_crypto::open(&key(), envelope, CAP);
    if let Ok((h, m)) = &opened {
        assert_eq!(Ok(h), header.as_ref(), "open and read_header disagree");
        assert!(m.len() <= CAP, "cap exceeded");
    }
    if header.is_err() {
        assert!(
            opened.is_err(),
            "opened an envelope whose header is invalid"
        );
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, data)) = input.split_first() else {
        return;
    };
    match mode % 4 {
        0 => check_open(data),
        1 => {
            let text = String::from_utf8_lossy(data);
            if let Ok(envelope) = sealpost_crypto::decode_payload(&text) {
                check_open(&envelope);
            }
        }
        2 => {
            let aad = header(true);
            let nonce = [7u8; 24];
            let cipher = XChaCha20Poly1305::new(key().as_bytes().into());
            let Ok(ct) = cipher.encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: data,
                    aad: &aad,
                },
            ) else {
                return;
            };
            let mut envelope = aad;
            envelope.extend_from_slice(&nonce);
            envelope.extend_from_slice(&ct);
            match sealpost_crypto::open(&key(), &envelope, CAP) {
                Ok((h, m)) => {
                    assert!(h.compressed);
                    assert!(m.len() <= CAP);
                }
                Err(e) => assert!(
                    matches!(e, EnvelopeError::TooLarge | EnvelopeError::Compression),
                    "unexpected error {e:?}"
                ),
            }
        }
        _ => {
            let Some((&flip, message)) = data.split_first() else {
                return;
            };
            let (h, mut envelope) =
                sealpost_crypto::seal(&key(), key_id(), RECIPIENT, 1_700_000_000, message)
                    .expect("seal");
            let payload = sealpost_crypto::encode_payload(&envelope);
            assert_eq!(
                sealpost_crypto::decode_payload(&payload).as_ref(),
                Ok(&envelope)
            );
            let (h2, back) =
                sealpost_crypto::open(&key(), &envelope, message.len().max(1)).expect("open");
            assert_eq!(h, h2);
            assert_eq!(back, message);
            let pos = (usize::from(flip) * 7919) % envelope.len();
            envelope[pos] ^= 1 + (flip & 0x7f);
            assert!(
                sealpost_crypto::open(&key(), &envelope, CAP).is_err(),
                "altered envelope opened (byte {pos})"
            );
        }
    }
});
