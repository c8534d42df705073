//! Decrypted messages through everything the portal does with them (header summary, bodies,
//! sanitised HTML, attachments by index and Content-ID), and inbound mail through the
//! trigger detection and subject rewriting of the pipeline.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sealpost_mime::inbound::{TriggerPolicy, is_flagged, original_headers, strip_trigger};

fuzz_target!(|raw: &[u8]| {
    let cid = |id: &str| Some(format!("/m/cid/{}", id.len()));
    if let Ok(msg) = sealpost_mime::prepare_for_display(raw, &cid) {
        for a in &msg.attachments {
            let got = sealpost_mime::display::attachment(raw, a.index);
            assert!(got.is_some(), "listed attachment {} not found", a.index);
            if let Some(id) = &a.content_id {
                let _ = sealpost_mime::display::part_by_content_id(raw, id);
            }
            assert!(!a.filename.is_empty());
            assert!(
                !a.filename.contains(['/', '\\', '"', '\r', '\n']),
                "unsafe filename {:?}",
                a.filename
            );
        }
        let _ = sealpost_mime::display::attachment(raw, msg.attachments.len());
    }

    let keywords = vec!["[secure]".to_string(), "[vertraulich]".to_string()];
    let policy = TriggerPolicy {
        keywords: &keywords,
        header: "X-Sealpost-Encrypt",
    };
    let flagged = is_flagged(raw, &policy);
    let stripped = strip_trigger(raw, &policy);
    if !flagged {
        let _ = original_headers(raw);
    }
    let _ = original_headers(&stripped);
    // Only the header section may change; the body must come through byte for byte.
    let body = &raw[header_end(raw)..];
    assert!(stripped.ends_with(body), "strip_trigger changed the body");
});

/// Offset after the blank line that ends the header (the whole input if there is none).
fn header_end(raw: &[u8]) -> usize {
    let mut pos = 0;
    while pos < raw.len() {
        let end = raw[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw.len(), |i| pos + i + 1);
        let line = &raw[pos..end];
        if line == b"\r\n" || line == b"\n" {
            return end;
        }
        pos = end;
    }
    raw.len()
}
