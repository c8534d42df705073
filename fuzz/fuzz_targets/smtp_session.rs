//! Arbitrary byte streams through the inbound SMTP session (`run_session`) over an in-memory
//! pipe, with a handler that accepts everything. Oracles: no panic, the session ends (the
//! client side hangs up after sending), every reply is a well-formed SMTP reply line, and
//! every message handed to the handler respects the configured limits.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sealpost_smtp::inbound::{Envelope, MessageHandler, SessionConfig, Verdict, run_session};
use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

const MAX_SIZE: usize = 2048;
const MAX_RCPT: usize = 4;

struct Checker {
    messages: AtomicUsize,
}

impl MessageHandler for Checker {
    async fn handle(&self, envelope: Envelope, data: Vec<u8>) -> Verdict {
        assert!(!envelope.rcpt_to.is_empty(), "message without recipients");
        assert!(
            envelope.rcpt_to.len() <= MAX_RCPT,
            "recipient limit ignored"
        );
        assert!(data.len() <= MAX_SIZE, "size limit ignored: {}", data.len());
        for a in envelope.rcpt_to.iter().chain([&envelope.mail_from]) {
            assert!(
                !a.chars().any(|c| c.is_control() || c == '<' || c == '>'),
                "unsafe address {a:?}"
            );
        }
        // Alternate verdicts so all three reply paths are exercised.
        match self.messages.fetch_add(1, Ordering::Relaxed) % 3 {
            0 => Verdict::Accepted("Q1\r\nINJECT".into()),
            1 => Verdict::TempFail("busy\r\n250 fake".into()),
            _ => Verdict::PermFail("no".into()),
        }
    }
}

thread_local! {
    static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
}

fn check_replies(out: &[u8]) {
    for line in out.split_inclusive(|&b| b == b'\n') {
        assert!(line.ends_with(b"\r\n"), "reply line without CRLF: {line:?}");
        let body = &line[..line.len() - 2];
        assert!(!body.contains(&b'\r'), "bare CR in reply: {line:?}");
        assert!(body.len() >= 3, "short reply: {line:?}");
        assert!(
            body[..3].iter().all(u8::is_ascii_digit) && (b'2'..=b'5').contains(&body[0]),
            "reply without a code: {line:?}"
        );
        assert!(
            matches!(body.get(3), None | Some(b' ' | b'-')),
            "bad separator: {line:?}"
        );
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&first, script)) = input.split_first() else {
        return;
    };
    // The pipe's buffer size decides how the stream is cut into reads.
    let pipe = usize::from(first).max(1);
    let cfg = SessionConfig {
        hostname: "fuzz.test".into(),
        max_message_size: MAX_SIZE,
        max_recipients: MAX_RCPT,
        max_command_line: 256,
        command_timeout: Duration::from_secs(5),
        data_timeout: Duration::from_secs(5),
        data_deadline: Duration::from_secs(30),
    };
    RT.with(|rt| {
        rt.block_on(async {
            let (client, server) = duplex(pipe);
            let handler = Checker {
                messages: AtomicUsize::new(0),
            };
            let (mut rd, mut wr) = tokio::io::split(client);
            let writer = async move {
                // The server may close early (QUIT, too many errors): then writes fail.
                let _ = wr.write_all(script).await;
                let _ = wr.shutdown().await;
            };
            let reader = async move {
                let mut out = Vec::new();
                let _ = rd.read_to_end(&mut out).await;
                out
            };
            let session = run_session(server, IpAddr::V4(Ipv4Addr::LOCALHOST), &cfg, &handler);
            let all = async { tokio::join!(session, writer, reader) };
            let (result, (), out) = tokio::time::timeout(Duration::from_secs(20), all)
                .await
                .expect("session did not end after the client hung up");
            // The only error run_session may return is an I/O error on the stream.
            let _ = result;
            assert!(out.starts_with(b"220 fuzz.test"), "no greeting");
            check_replies(&out);
        });
    });
});
