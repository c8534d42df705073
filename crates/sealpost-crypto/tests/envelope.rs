//! Property and adversarial tests of the public envelope API.

use base64::Engine as _;
use proptest::prelude::*;
use sealpost_crypto::{
    ENVELOPE_VERSION, ENVELOPE_VERSION_2, EnvelopeError, KeyId, MasterKey, MessageSecret,
    PayloadDecoder, RecipientKey, decode_payload, encode_payload, open, open_owned,
    open_owned_with_secret, open_with_secret, read_header, seal, seal_v2,
};

const MAX: usize = 1 << 20;

fn key_id(version: u32) -> KeyId {
    KeyId {
        account_id: uuid::Uuid::new_v4(),
        version,
    }
}

/// Offset of the recipient-length field in the header.
const RLEN_OFFSET: usize = 49;

/// Re-encodes an envelope's header with another recipient, keeping the
/// nonce and ciphertext: what an attacker forwarding a payload would do.
fn with_recipient(envelope: &[u8], recipient: &str) -> Vec<u8> {
    let old_len = u16::from_be_bytes([envelope[RLEN_OFFSET], envelope[RLEN_OFFSET + 1]]) as usize;
    let start = RLEN_OFFSET + 2;
    let mut out = envelope[..RLEN_OFFSET].to_vec();
    out.extend_from_slice(&(recipient.len() as u16).to_be_bytes());
    out.extend_from_slice(recipient.as_bytes());
    out.extend_from_slice(&envelope[start + old_len..]);
    out
}

fn recipient_strategy() -> impl Strategy<Value = String> {
    // Arbitrary (also non-ASCII) text of 1..=320 UTF-8 bytes.
    "\\PC{1,80}".prop_filter("1..=320 bytes", |s| (1..=320).contains(&s.len()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn seal_open_round_trip(
        message in prop::collection::vec(any::<u8>(), 0..=64 * 1024),
        recipient in recipient_strategy(),
        created_at in any::<i64>(),
        version in any::<u32>(),
    ) {
        let key = RecipientKey::generate();
        let kid = key_id(version);
        let (header, env) = seal(&key, kid, &recipient, created_at, &message).expect("seal");
        prop_assert_eq!(header.version, ENVELOPE_VERSION);
        prop_assert_eq!(&header.recipient, &recipient);
        prop_assert_eq!(header.key_id, kid);
        prop_assert_eq!(header.created_at, created_at);
        prop_assert_eq!(read_header(&env).expect("header"), header.clone());
        let (opened_header, plain) = open(&key, &env, message.len()).expect("open");
        prop_assert_eq!(opened_header, header);
        prop_assert_eq!(&plain, &message);
        // Through the base64 payload too.
        let again = decode_payload(&encode_payload(&env)).expect("decode");
        prop_assert_eq!(&again, &env);
    }

    #[test]
    fn compressible_messages_round_trip(
        unit in prop::collection::vec(any::<u8>(), 1..16),
        repeats in 1usize..4000,
    ) {
        let message = unit.repeat(repeats);
        let key = RecipientKey::generate();
        let (header, env) = seal(&key, key_id(1), "r@example.org", 0, &message).expect("seal");
        if message.len() > 200 {
            prop_assert!(header.compressed);
            prop_assert!(env.len() < message.len());
        }
        let (_, plain) = open(&key, &env, message.len()).expect("open");
        prop_assert_eq!(plain, message);
    }

    #[test]
    fn any_single_bit_flip_is_rejected(
        message in prop::collection::vec(any::<u8>(), 0..2048),
        compressible in any::<bool>(),
        recipient in recipient_strategy(),
        bit in any::<prop::sample::Index>(),
    ) {
        let message = if compressible { message.repeat(8) } else { message };
        let key = RecipientKey::generate();
        let (_, mut env) = seal(&key, key_id(3), &recipient, 42, &message).expect("seal");
        let i = bit.index(env.len() * 8);
        env[i / 8] ^= 1 << (i % 8);
        prop_assert!(open(&key, &env, MAX).is_err(), "bit {} accepted", i);
    }

    #[test]
    fn decode_payload_ignores_any_ascii_whitespace(
        env in prop::collection::vec(any::<u8>(), 0..600),
        seps in prop::collection::vec(prop::sample::select(vec![" ", "\t", "\r\n", "\n", "\r"]), 1..8),
    ) {
        let text = encode_payload(&env);
        let mut mangled = String::new();
        for (n, c) in text.chars().enumerate() {
            mangled.push(c);
            if n % 13 == 0 {
                mangled.push_str(seps[n % seps.len()]);
            }
        }
        prop_assert_eq!(decode_payload(&mangled).expect("decode"), env);
    }

    /// The streaming decoder accepts and refuses exactly what one decode of the whole text
    /// (whitespace removed) does, however the text is split: long texts cross its internal
    /// blocks, and damage (padding in the middle, a stray or missing character) lands anywhere.
    #[test]
    fn streaming_decode_agrees_with_one_shot_base64(
        env in prop::collection::vec(any::<u8>(), 0..40_000),
        damage in prop::option::of((any::<prop::sample::Index>(), prop::sample::select(vec!["=", "==", "*", "A", "", "\n"]))),
        cut in prop::option::of(any::<prop::sample::Index>()),
        pieces in prop::collection::vec(1usize..30_000, 1..6),
    ) {
        let mut text = encode_payload(&env).into_bytes();
        if let Some((at, what)) = damage {
            let i = at.index(text.len() + 1);
            text.splice(i..i, what.bytes());
        }
        if let Some(at) = cut {
            text.truncate(at.index(text.len() + 1));
        }
        let compact: Vec<u8> = text.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
        let expected = base64::engine::general_purpose::STANDARD
            .decode(&compact)
            .map_err(|_| EnvelopeError::BadEncoding);
        let mut decoder = PayloadDecoder::with_capacity(16);
        let mut rest = &text[..];
        let mut result = Ok(());
        for n in pieces.iter().cycle() {
            if rest.is_empty() || result.is_err() {
                break;
            }
            let (now, later) = rest.split_at((*n).min(rest.len()));
            result = decoder.push(now);
            rest = later;
        }
        let got = result.and_then(|()| decoder.finish());
        let text = String::from_utf8(text).expect("ascii");
        prop_assert_eq!(&decode_payload(&text), &expected);
        prop_assert_eq!(got, expected, "damage {:?} cut {:?}", damage, cut);
    }

    #[test]
    fn open_owned_agrees_with_open(
        message in prop::collection::vec(any::<u8>(), 0..8192),
        compressible in any::<bool>(),
        flip in prop::option::of(any::<prop::sample::Index>()),
        cap in prop::option::of(0usize..70_000),
    ) {
        let message = if compressible { message.repeat(8) } else { message };
        let key = RecipientKey::generate();
        let (_, mut env) = seal(&key, key_id(2), "r@example.org", 7, &message).expect("seal");
        if let Some(at) = flip {
            let i = at.index(env.len() * 8);
            env[i / 8] ^= 1 << (i % 8);
        }
        let max = cap.unwrap_or(MAX);
        prop_assert_eq!(open_owned(&key, env.clone(), max), open(&key, &env, max));
        if flip.is_none() && message.len() <= max {
            prop_assert_eq!(open_owned(&key, env, max).expect("open").1, message);
        }
    }
}

#[test]
fn every_truncation_is_rejected() {
    let key = RecipientKey::generate();
    for message in [&b""[..], b"hello", &[b'z'; 5000]] {
        let (_, env) = seal(&key, key_id(1), "bob@example.com", 1, message).expect("seal");
        for n in 0..env.len() {
            assert!(open(&key, &env[..n], MAX).is_err(), "length {n} accepted");
        }
        assert!(open(&key, &env, MAX).is_ok());
    }
}

#[test]
fn truncated_header_reports_truncated() {
    let key = RecipientKey::generate();
    let (_, env) = seal(&key, key_id(1), "bob@example.com", 1, b"msg").expect("seal");
    for n in 4..env.len() - 16 {
        assert_eq!(
            read_header(&env[..n]),
            Err(EnvelopeError::Truncated),
            "len {n}"
        );
    }
}

#[test]
fn other_key_fails_authentication() {
    let key = RecipientKey::generate();
    let kid = key_id(1);
    let (_, env) = seal(&key, kid, "bob@example.com", 1, b"secret").expect("seal");
    assert_eq!(
        open(&RecipientKey::generate(), &env, MAX),
        Err(EnvelopeError::Authentication)
    );
}

#[test]
fn changed_recipient_fails_authentication() {
    let key = RecipientKey::generate();
    let (_, env) = seal(&key, key_id(1), "bob@example.com", 1, b"for bob").expect("seal");
    for other in ["eve@example.com", "e@x.io", "bob@example.com.evil.example"] {
        let forged = with_recipient(&env, other);
        // The forged header parses and names the new recipient...
        assert_eq!(read_header(&forged).expect("header").recipient, other);
        // ...but the ciphertext is bound to the original one.
        assert_eq!(open(&key, &forged, MAX), Err(EnvelopeError::Authentication));
    }
    // Sanity check of the helper: re-encoding with the same recipient is a no-op.
    assert_eq!(with_recipient(&env, "bob@example.com"), env);
}

#[test]
fn changed_key_id_or_date_fails_authentication() {
    let key = RecipientKey::generate();
    let (_, env) = seal(&key, key_id(1), "bob@example.com", 1, b"x").expect("seal");
    // key version (last byte of the u32 at 45..49), created_at, account id.
    for i in [48usize, 28, 29] {
        let mut bad = env.clone();
        bad[i] ^= 0x01;
        assert_eq!(open(&key, &bad, MAX), Err(EnvelopeError::Authentication));
    }
}

#[test]
fn version_three_is_unsupported() {
    let key = RecipientKey::generate();
    let (_, mut env) = seal(&key, key_id(1), "bob@example.com", 1, b"x").expect("seal");
    env[3] = 3;
    assert_eq!(read_header(&env), Err(EnvelopeError::UnsupportedVersion(3)));
    assert_eq!(
        open(&key, &env, MAX),
        Err(EnvelopeError::UnsupportedVersion(3))
    );
    // Reported before anything after the version byte is looked at.
    assert_eq!(
        read_header(b"SPX\x03"),
        Err(EnvelopeError::UnsupportedVersion(3))
    );
}

#[test]
fn bad_magic() {
    let key = RecipientKey::generate();
    let (_, mut env) = seal(&key, key_id(1), "bob@example.com", 1, b"x").expect("seal");
    env[0] = b'P';
    assert_eq!(read_header(&env), Err(EnvelopeError::BadMagic));
    assert_eq!(open(&key, &env, MAX), Err(EnvelopeError::BadMagic));
}

#[test]
fn read_header_agrees_with_seal() {
    let key = RecipientKey::generate();
    let kid = key_id(9);
    let (h, env) = seal(&key, kid, "ånna@exämple.org", -1234, b"hi").expect("seal");
    let r = read_header(&env).expect("header");
    assert_eq!(r, h);
    assert_eq!(r.key_id, kid);
    assert_eq!(r.message_id_hex(), h.message_id_hex());
    // Message ids are random per envelope.
    let (h2, _) = seal(&key, kid, "ånna@exämple.org", -1234, b"hi").expect("seal");
    assert_ne!(h.message_id, h2.message_id);
}

#[test]
fn decompression_bomb_is_too_large() {
    let key = RecipientKey::generate();
    let zeros = vec![0u8; 64 << 20];
    let (h, env) = seal(&key, key_id(1), "bob@example.com", 1, &zeros).expect("seal");
    drop(zeros);
    assert!(h.compressed);
    assert!(
        env.len() < 64 * 1024,
        "64 MiB of zeros sealed to {}",
        env.len()
    );
    assert_eq!(open(&key, &env, 1 << 20), Err(EnvelopeError::TooLarge));
}

#[test]
fn cap_is_exact_for_compressed_and_raw() {
    let key = RecipientKey::generate();
    let text = b"Dear customer, your statement is attached. ".repeat(100);
    let random: Vec<u8> = (0..4000).map(|_| rand::random::<u8>()).collect();
    for (message, expect_compressed) in [(text, true), (random, false)] {
        let (h, env) = seal(&key, key_id(1), "bob@example.com", 1, &message).expect("seal");
        assert_eq!(h.compressed, expect_compressed);
        assert_eq!(open(&key, &env, message.len()).expect("at cap").1, message);
        assert_eq!(
            open(&key, &env, message.len() - 1),
            Err(EnvelopeError::TooLarge)
        );
    }
}

#[test]
fn decode_payload_accepts_crlf_wrapped_text() {
    let key = RecipientKey::generate();
    let message = b"Subject: hi\r\n\r\nbody\r\n".repeat(20);
    let (_, env) = seal(&key, key_id(1), "bob@example.com", 1, &message).expect("seal");
    let text = encode_payload(&env);
    assert!(text.lines().all(|l| l.len() <= 76));
    let crlf = format!("\r\n  {}\r\n", text.replace('\n', "\r\n"));
    let decoded = decode_payload(&crlf).expect("decode");
    assert_eq!(decoded, env);
    assert_eq!(open(&key, &decoded, MAX).expect("open").1, message);
}

#[test]
fn decode_payload_rejects_garbage() {
    assert_eq!(
        decode_payload("not*base64"),
        Err(EnvelopeError::BadEncoding)
    );
    assert_eq!(decode_payload("QUJD\nRA"), Err(EnvelopeError::BadEncoding));
}

// ---- Format version 2: content key from the recipient key and a per-message secret ----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn v2_round_trip(
        message in prop::collection::vec(any::<u8>(), 0..=16 * 1024),
        compressible in any::<bool>(),
        recipient in recipient_strategy(),
        created_at in any::<i64>(),
    ) {
        let message = if compressible { message.repeat(4) } else { message };
        let key = RecipientKey::generate();
        let secret = MessageSecret::generate();
        let kid = key_id(1);
        let (header, env) = seal_v2(&key, &secret, kid, &recipient, created_at, &message).expect("seal");
        prop_assert_eq!(header.version, ENVELOPE_VERSION_2);
        prop_assert!(header.secret_check.is_some());
        prop_assert_eq!(read_header(&env).expect("header"), header.clone());
        let (opened, plain) = open_with_secret(&key, Some(&secret), &env, MAX.max(message.len())).expect("open");
        prop_assert_eq!(opened, header);
        prop_assert_eq!(&plain, &message);
        let (_, owned) = open_owned_with_secret(&key, Some(&secret), env.clone(), MAX.max(message.len())).expect("open owned");
        prop_assert_eq!(&owned, &message);
        // Through the payload text too.
        prop_assert_eq!(decode_payload(&encode_payload(&env)).expect("decode"), env);
    }

    /// The secret is deleted (revocation, expiry): nothing opens it, not even the right
    /// recipient key, and the error says so.
    #[test]
    fn v2_without_its_secret_is_secret_missing(
        message in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let key = RecipientKey::generate();
        let secret = MessageSecret::generate();
        let (_, env) = seal_v2(&key, &secret, key_id(1), "r@example.org", 0, &message).expect("seal");
        prop_assert_eq!(open(&key, &env, MAX), Err(EnvelopeError::SecretMissing));
        prop_assert_eq!(open_owned(&key, env.clone(), MAX), Err(EnvelopeError::SecretMissing));
        prop_assert_eq!(open_with_secret(&key, None, &env, MAX), Err(EnvelopeError::SecretMissing));
    }

    /// Another message's secret (e.g. a row mixed up in the ledger) is WrongSecret, also when
    /// both were sealed for the same recipient key.
    #[test]
    fn v2_with_another_messages_secret_is_wrong_secret(
        message in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let key = RecipientKey::generate();
        let secret = MessageSecret::generate();
        let other = MessageSecret::generate();
        let (_, env) = seal_v2(&key, &secret, key_id(1), "r@example.org", 0, &message).expect("seal");
        let (_, env_other) = seal_v2(&key, &other, key_id(1), "r@example.org", 0, &message).expect("seal");
        prop_assert_eq!(open_with_secret(&key, Some(&other), &env, MAX), Err(EnvelopeError::WrongSecret));
        prop_assert_eq!(open_with_secret(&key, Some(&secret), &env_other, MAX), Err(EnvelopeError::WrongSecret));
        // The right secret with the wrong recipient key still fails authentication.
        prop_assert_eq!(
            open_with_secret(&RecipientKey::generate(), Some(&secret), &env, MAX),
            Err(EnvelopeError::Authentication)
        );
    }

    /// Any flipped bit is refused. Bits of the message id or the secret check make the
    /// secret look foreign (WrongSecret); the magic, version, flags and recipient may give
    /// structural errors; every other bit fails authentication.
    #[test]
    fn v2_any_single_bit_flip_is_rejected(
        message in prop::collection::vec(any::<u8>(), 0..2048),
        recipient in recipient_strategy(),
        bit in any::<prop::sample::Index>(),
    ) {
        let key = RecipientKey::generate();
        let secret = MessageSecret::generate();
        let (_, mut env) = seal_v2(&key, &secret, key_id(3), &recipient, 42, &message).expect("seal");
        let n = recipient.len();
        let i = bit.index(env.len() * 8);
        env[i / 8] ^= 1 << (i % 8);
        let byte = i / 8;
        let got = open_with_secret(&key, Some(&secret), &env, MAX);
        let in_id = (5..21).contains(&byte);
        let in_check = (51 + n..67 + n).contains(&byte);
        // Magic, version, flags, recipient length, and recipient bytes (which may stop being
        // UTF-8) can fail structurally before the AEAD is reached.
        let structural = byte < 5 || (49..51 + n).contains(&byte);
        if in_id || in_check {
            prop_assert_eq!(got, Err(EnvelopeError::WrongSecret), "bit {}", i);
        } else if structural {
            prop_assert!(got.is_err(), "bit {} accepted", i);
        } else {
            prop_assert_eq!(got, Err(EnvelopeError::Authentication), "bit {}", i);
        }
    }
}

#[test]
fn v1_envelopes_keep_opening_with_or_without_a_secret() {
    let key = RecipientKey::generate();
    let (h, env) = seal(&key, key_id(1), "bob@example.com", 1, b"old mail").expect("seal");
    assert_eq!(h.version, ENVELOPE_VERSION);
    assert!(h.secret_check.is_none());
    assert_eq!(open(&key, &env, MAX).expect("open").1, b"old mail");
    let ignored = MessageSecret::generate();
    assert_eq!(
        open_with_secret(&key, Some(&ignored), &env, MAX)
            .expect("open")
            .1,
        b"old mail"
    );
}

/// Revocation end to end at the crypto level: the secret lives only wrapped (as in the
/// ledger); once the wrapped copy is gone, the master key and the recipient key together
/// still cannot open the envelope.
#[test]
fn v2_deleted_secret_defeats_even_the_master_key() {
    let master = MasterKey::generate();
    let key = RecipientKey::generate();
    let secret = MessageSecret::generate();
    let (h, env) =
        seal_v2(&key, &secret, key_id(1), "bob@example.com", 1, b"secret").expect("seal");
    let mut wrapped = Some(master.wrap_message_secret(&h.message_id, &secret));
    drop(secret);
    let unwrapped = master
        .unwrap_message_secret(&h.message_id, wrapped.as_deref().expect("stored"))
        .expect("unwrap");
    assert_eq!(
        open_with_secret(&key, Some(&unwrapped), &env, MAX)
            .expect("open")
            .1,
        b"secret"
    );
    wrapped = None; // the ledger row's secret is deleted
    let again = wrapped.map(|w| master.unwrap_message_secret(&h.message_id, &w));
    assert!(again.is_none());
    assert_eq!(
        open_with_secret(&key, None, &env, MAX),
        Err(EnvelopeError::SecretMissing)
    );
}

#[test]
fn v2_truncated_check_is_truncated() {
    let key = RecipientKey::generate();
    let secret = MessageSecret::generate();
    let (_, env) = seal_v2(&key, &secret, key_id(1), "bob@example.com", 1, b"x").expect("seal");
    // Header through the recipient, half a check value, no nonce.
    let cut = 51 + "bob@example.com".len() + 8;
    assert_eq!(read_header(&env[..cut]), Err(EnvelopeError::Truncated));
    for len in 0..env.len() {
        assert!(open_with_secret(&key, Some(&secret), &env[..len], MAX).is_err());
    }
}
