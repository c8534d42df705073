//! Snapshots of every generated mail, so a refactoring of the builders cannot change a byte
//! unnoticed. The only parts that differ between runs (Message-ID, a `Date` taken from the
//! clock, MIME boundaries) are replaced by placeholders before comparing.
//!
//! `SEALPOST_UPDATE_SNAPSHOTS=1 cargo test -p sealpost-mime --lib snapshots` rewrites them.

#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test

use std::path::PathBuf;

use crate::{
    BounceInput, Branding, CarrierInput, CarrierNotes, CredentialsInput, CredentialsKind,
    ReplyAttachment, ReplyInput, build_bounce, build_carrier, build_credentials, build_reply,
    original_headers, reply_source,
};

const PAYLOAD: &str = "U1BYAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODkrLw==";

const ORIGINAL: &str = "From: =?utf-8?Q?M=C3=BCller=2C_Hans?= <hans@bank.example>\r\n\
To: Kundin <kundin@example.org>\r\n\
Cc: chef@bank.example\r\n\
Date: Tue, 5 Mar 2024 10:15:00 +0100\r\n\
Subject: =?utf-8?Q?Ihr_Vertrag_f=C3=BCr_M=C3=A4rz?=\r\n\
Message-ID: <orig@bank.example>\r\n\
References: <p1@x> <p2@x>\r\n\r\n\
Guten Tag,\r\n\r\nanbei der Vertrag.\r\n";

/// Replaces what changes between runs by stable placeholders.
fn normalise(raw: &[u8]) -> String {
    let mut text = String::from_utf8(raw.to_vec()).unwrap();
    let mut boundaries = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("boundary=\"") {
        let after = &rest[at + 10..];
        let end = after.find('"').unwrap();
        boundaries.push(after[..end].to_string());
        rest = &after[end..];
    }
    for (n, boundary) in boundaries.iter().enumerate() {
        text = text.replace(boundary.as_str(), &format!("BOUNDARY-{n}"));
    }
    let header_end = text.find("\r\n\r\n").unwrap();
    let (header, body) = text.split_at(header_end);
    let header: Vec<String> = header
        .split("\r\n")
        .map(|line| {
            if line.starts_with("Message-ID: ") {
                "Message-ID: <ID>".to_string()
            } else if line.starts_with("Date: ") && !line.contains("2024") {
                "Date: NOW".to_string()
            } else {
                line.to_string()
            }
        })
        .collect();
    format!("{}{body}", header.join("\r\n"))
}

fn check(name: &str, raw: &[u8]) {
    let got = normalise(raw);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.eml"));
    if std::env::var_os("SEALPOST_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap();
    assert!(
        got == want,
        "{name} differs from {}:\n{got}",
        path.display()
    );
}

#[test]
fn carriers() {
    let original = original_headers(ORIGINAL.as_bytes());
    let branding = Branding {
        org_name: "Bank & Co".into(),
        accent_color: "#aa0000".into(),
        footer: "Bank & Co AG, Musterstraße 1".into(),
        ..Branding::default()
    };
    for lang in ["en", "de"] {
        let raw = build_carrier(&CarrierInput {
            original: &original,
            recipient: "kundin@example.org",
            payload_b64: PAYLOAD,
            public_url: "https://secure.bank.example/",
            lang,
            branding: &branding,
            hostname: "gw.bank.example",
            notes: &CarrierNotes::default(),
        });
        check(&format!("carrier-{lang}"), &raw);
    }
    let bare = crate::OriginalHeaders {
        from: "Hans Müller <hans@bank.example>".into(),
        from_address: Some("hans@bank.example".into()),
        ..Default::default()
    };
    let raw = build_carrier(&CarrierInput {
        original: &bare,
        recipient: "kundin@example.org",
        payload_b64: PAYLOAD,
        public_url: "https://p.example",
        lang: "de",
        branding: &Branding::default(),
        hostname: "gw.bank.example",
        notes: &CarrierNotes::default(),
    });
    check("carrier-fallback", &raw);
    // Every note rendered, under the datafile profile.
    let branding = Branding {
        org_name: "Bank & Co".into(),
        support_contact: "+49 30 1234-0".into(),
        imprint_url: "https://bank.example/imprint".into(),
        privacy_url: "https://bank.example/privacy".into(),
        ..Branding::default()
    };
    let raw = build_carrier(&CarrierInput {
        original: &original,
        recipient: "kundin@example.org",
        payload_b64: PAYLOAD,
        public_url: "https://secure.bank.example",
        lang: "en",
        branding: &branding,
        hostname: "gw.bank.example",
        notes: &CarrierNotes {
            ledger_id: Some("00112233445566778899aabbccddeeff".into()),
            expires_at: Some(1_712_188_800),
            security_phrase: Some("Blue heron at dawn".into()),
            first_contact: crate::FirstContact::MailboxCode,
            delivery: crate::CarrierDelivery::Datafile,
            ..CarrierNotes::default()
        },
    });
    check("carrier-datafile", &raw);
}

#[test]
fn credentials_and_resets() {
    let branding = Branding {
        footer: "Footer line".into(),
        ..Branding::default()
    };
    for (name, kind, lang) in [
        ("credentials-en", CredentialsKind::FirstUse, "en"),
        ("credentials-de", CredentialsKind::FirstUse, "de"),
        ("password-reset-en", CredentialsKind::PasswordReset, "en"),
        ("password-reset-de", CredentialsKind::PasswordReset, "de"),
    ] {
        let raw = build_credentials(&CredentialsInput {
            kind,
            from: "sealpost@bank.example",
            to: "hans@bank.example",
            recipient: "kundin@example.org",
            password: "Xk7-pq9R-mT4w-zz3A",
            public_url: "https://secure.bank.example",
            lang,
            branding: &branding,
            hostname: "gw.bank.example",
            status_link: None,
        });
        check(name, &raw);
    }
}

#[test]
fn bounces() {
    let failures = vec![
        (
            "kundin@example.org".to_string(),
            "550 5.1.1 <kundin@example.org>: user unknown".to_string(),
        ),
        (
            "b@example.net".to_string(),
            "connection refused".to_string(),
        ),
    ];
    for lang in ["en", "de"] {
        let raw = build_bounce(&BounceInput {
            from: "MAILER-DAEMON@gw.bank.example",
            to: "hans@bank.example",
            failures: &failures,
            original_headers: ORIGINAL.as_bytes(),
            reporting_mta: "gw.bank.example",
            remote_mta: Some("mx.example.org"),
            arrival_date: Some(1_709_630_100),
            last_attempt_date: Some(1_709_633_700),
            lang,
            hostname: "gw.bank.example",
        });
        check(&format!("bounce-{lang}"), &raw);
    }
}

#[test]
fn replies() {
    let source = reply_source(ORIGINAL.as_bytes()).unwrap();
    let cc = ["chef@bank.example".to_string()];
    let attachments = [ReplyAttachment {
        filename: "../Scan März.pdf".into(),
        content_type: "application/pdf".into(),
        bytes: vec![0, 1, 2, 255],
    }];
    for (name, lang, cc, attachments) in [
        ("reply-en", "en", &cc[..], &attachments[..]),
        ("reply-de-plain", "de", &[][..], &[][..]),
    ] {
        let raw = build_reply(&ReplyInput {
            from: "kundin@example.org",
            sender: "noreply@bank.example",
            org: "Bank AG",
            keyword: Some("[secure]"),
            to: "hans@bank.example",
            cc,
            source: &source,
            body: "Danke!\n\nGruß\n",
            attachments,
            lang,
            hostname: "gw.bank.example",
        });
        check(name, &raw);
    }
}
