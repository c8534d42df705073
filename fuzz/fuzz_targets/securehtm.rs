//! Uploaded secure.htm files (or anything a user picks in the upload form) through
//! `extract_payload`, and what it returns through `decode_payload` and the envelope parser.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|file: &[u8]| {
    if let Some(payload) = sealpost_mime::extract_payload(file) {
        assert!(!payload.is_empty(), "empty payload reported as found");
        if let Ok(envelope) = sealpost_crypto::decode_payload(&payload) {
            let _ = sealpost_crypto::read_header(&envelope);
        }
    }
});
