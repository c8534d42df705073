//! Bare crypto of the portal's open path, for bench/extra.sh part D: decode the base64
//! payload of a secure.htm, then verify, decrypt and decompress the envelope. The messages
//! have the shape of bench/extra.py's: a short text part and an incompressible (random)
//! attachment of 100 KB, 1 MB or 20 MB, base64 in 76-character lines. The portal's time for
//! POST /open + GET /open/{token} divided by this is what the web path adds.
//!
//!   cargo bench -p sealpost-crypto --bench open
//!
//! Results (criterion): target/criterion/bare_open/<size>/new/estimates.json, or under
//! $CRITERION_HOME.

#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Duration;

use base64::Engine as _;
use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use rand::RngCore;
use sealpost_crypto::{KeyId, RecipientKey, decode_payload, encode_payload, open_owned, seal};

const SIZES: [usize; 3] = [100 * 1024, 1024 * 1024, 20 * 1024 * 1024];
/// The default `limits.max_open_size`.
const MAX_OPEN: usize = 200 * 1024 * 1024;

/// A mail like bench/extra.py's `make_mail`: text part plus a random "PDF".
fn message(size: usize) -> Vec<u8> {
    let mut attachment = vec![0u8; size];
    rand::thread_rng().fill_bytes(&mut attachment);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&attachment);
    let mut m = String::with_capacity(b64.len() * 78 / 76 + 2048);
    m.push_str(
        "From: a@bank.example\r\nTo: reader@kunde.example\r\n\
         Subject: [secure] portal bench\r\nMessage-ID: <bench@bank.example>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"==b==\"\r\n\r\n\
         --==b==\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n\
         Content-Transfer-Encoding: 7bit\r\n\r\n",
    );
    for _ in 0..20 {
        m.push_str("Statement attached.\r\n");
    }
    m.push_str(
        "\r\n--==b==\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\
         Content-Disposition: attachment; filename=\"statement.pdf\"\r\nMIME-Version: 1.0\r\n\r\n",
    );
    for line in b64.as_bytes().chunks(76) {
        m.push_str(std::str::from_utf8(line).unwrap());
        m.push_str("\r\n");
    }
    m.push_str("\r\n--==b==--\r\n");
    m.into_bytes()
}

fn bare_open(c: &mut Criterion) {
    let key = RecipientKey::from_bytes([7; 32]);
    let key_id = KeyId {
        account_id: uuid::Uuid::from_bytes([0x42; 16]),
        version: 1,
    };
    let mut group = c.benchmark_group("bare_open");
    for size in SIZES {
        let msg = message(size);
        let (_, envelope) = seal(&key, key_id, "reader@kunde.example", 0, &msg).unwrap();
        let payload = encode_payload(&envelope);
        group.throughput(Throughput::Bytes(size as u64));
        if size >= 10 * 1024 * 1024 {
            group
                .sampling_mode(SamplingMode::Flat)
                .sample_size(10)
                .measurement_time(Duration::from_secs(4));
        } else {
            group
                .sampling_mode(SamplingMode::Auto)
                .sample_size(30)
                .measurement_time(Duration::from_secs(3));
        }
        group.bench_with_input(BenchmarkId::from_parameter(size), &payload, |b, payload| {
            b.iter(|| {
                let envelope = decode_payload(black_box(payload)).unwrap();
                let (_, plain) = open_owned(&key, envelope, MAX_OPEN).unwrap();
                assert_eq!(plain.len(), msg.len());
                plain
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bare_open);
criterion_main!(benches);
