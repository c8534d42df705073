//! Real-world corpora through one node: every message of mail-parser's own test corpus and of
//! enmime's testdata (Debian's golang-github-jhillyerd-enmime-dev) is flagged, sent over SMTP
//! to one external recipient, opened in the portal, and downloaded again as `message.eml`,
//! which must equal what was sent minus the trigger header. The message page and the HTML
//! frame must answer without a 5xx for every message, malformed ones included.
//!
//! What the SMTP layer legitimately changes, and the expectation therefore allows for (exactly
//! what `sealpost_smtp::outbound` does on the wire, undone by the server except for these):
//! - a bare LF line end becomes CRLF (SMTP transports CRLF);
//! - a message whose last line has no line end gets a final CRLF (DATA ends with CRLF.CRLF);
//! - dot-stuffing is added by the client and removed by the server, so it leaves no trace.
//!
//! Nothing else may differ. Messages that RFC 5321/5322 says SMTP cannot carry (a bare CR, a
//! NUL, a line over 998 octets) are counted separately as "not transportable" with the reason;
//! they are still sent, must not cause a 5xx on a node with `[smtp] bare_lf = "keep"` (the
//! default refuses bare CR and LF with 550), and the summary says whether they came through
//! unchanged anyway (Sealpost's own SMTP layer then passes them byte for byte).

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use mail_parser::MimeHeaders;
use sealpost_smtp::inbound::BareLineEnds;
use sealpost_smtp::next_hop::NextHop;
use sealpost_smtp::outbound::{ClientConfig, OutboundMessage, RcptResult, deliver_many};

const RECIPIENT: &str = "reader@example.com";
const TRIGGER: &[u8] = b"X-Sealpost-Encrypt: yes\r\n";
/// POST /open is rate limited per client address (burst 60); the test spreads its opens over
/// several loopback addresses instead of slowing down or switching the limit off.
const CLIENT_ADDRESSES: u8 = 8;

struct Sample {
    label: String,
    /// The file as it is on disk.
    raw: Vec<u8>,
    /// Reasons RFC 5321/5322 gives for SMTP not carrying it; empty when it is transportable.
    not_transportable: Vec<&'static str>,
}

fn mail_parser_corpus() -> Option<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))?;
    let registry = cargo_home.join("registry").join("src");
    for index in std::fs::read_dir(registry).ok()?.flatten() {
        for krate in std::fs::read_dir(index.path()).ok()?.flatten() {
            let name = krate.file_name().to_string_lossy().into_owned();
            if name.starts_with("mail-parser-0.11") {
                let eml = krate.path().join("resources").join("eml");
                if eml.is_dir() {
                    return Some(eml);
                }
            }
        }
    }
    None
}

/// Every `testdata` directory of the installed enmime sources.
fn enmime_testdata() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/usr/share/gocode/src/github.com/jhillyerd") else {
        return out;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with("enmime") {
            find_dirs_named(&entry.path(), "testdata", &mut out);
        }
    }
    out
}

fn find_dirs_named(dir: &Path, name: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if entry.file_name() == name {
                out.push(path);
            } else {
                find_dirs_named(&path, name, out);
            }
        }
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn has_extension(path: &Path, exts: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| exts.contains(&e))
}

fn samples() -> Vec<Sample> {
    let mut paths = Vec::new();
    if let Some(dir) = mail_parser_corpus() {
        let mut files = Vec::new();
        files_under(&dir, &mut files);
        // The .json files beside them are mail-parser's expected parse results, not mail.
        paths.extend(files.into_iter().filter(|p| has_extension(p, &["eml"])));
    }
    for dir in enmime_testdata() {
        let mut files = Vec::new();
        files_under(&dir, &mut files);
        // .raw are input messages and .golden encoder outputs (also MIME); skip images.
        paths.extend(
            files
                .into_iter()
                .filter(|p| has_extension(p, &["raw", "golden"])),
        );
    }
    paths.sort();
    paths
        .into_iter()
        .filter_map(|path| {
            let raw = std::fs::read(&path).ok()?;
            let label = path
                .components()
                .rev()
                .take(3)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            let not_transportable = transport_problems(&raw);
            Some(Sample {
                label,
                raw,
                not_transportable,
            })
        })
        .collect()
}

/// Why SMTP (RFC 5321 §2.3.8 and §4.5.3.1.6, RFC 5322 §2.3 / RFC 6152) cannot carry `raw`.
fn transport_problems(raw: &[u8]) -> Vec<&'static str> {
    let mut reasons = Vec::new();
    if raw
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\r' && raw.get(i + 1) != Some(&b'\n'))
    {
        reasons.push("bare CR");
    }
    if raw.contains(&0) {
        reasons.push("NUL byte");
    }
    if raw
        .split(|&b| b == b'\n')
        .any(|line| line.strip_suffix(b"\r").unwrap_or(line).len() > 998)
    {
        reasons.push("line over 998 octets");
    }
    reasons
}

/// The message with the trigger header added. At the very top, unless the message itself
/// starts with folding white space: there the trigger would absorb that line as its own
/// continuation, so it goes right before the blank line that ends the header instead.
fn flagged(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + TRIGGER.len());
    if matches!(raw.first(), Some(b' ' | b'\t')) {
        let blank = raw
            .windows(2)
            .position(|w| w == b"\n\n" || w == b"\n\r")
            .map(|i| i + 1);
        if let Some(at) = blank {
            out.extend_from_slice(&raw[..at]);
            out.extend_from_slice(TRIGGER);
            out.extend_from_slice(&raw[at..]);
            return out;
        }
    }
    out.extend_from_slice(TRIGGER);
    out.extend_from_slice(raw);
    out
}

/// What SMTP delivers of `raw`: bare LF becomes CRLF and a last line without a line end gets
/// one. Bare CR and every other byte stay (see the module comment).
fn over_smtp(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32 + 2);
    for (i, &b) in raw.iter().enumerate() {
        if b == b'\n' && (i == 0 || raw[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn first_difference(a: &[u8], b: &[u8]) -> String {
    let at = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let context = |s: &[u8]| {
        let from = at.saturating_sub(20);
        let to = (at + 40).min(s.len());
        format!("{:?}", String::from_utf8_lossy(&s[from.min(to)..to]))
    };
    format!(
        "sent {} B, got {} B, first difference at byte {at}: sent …{}… got …{}…",
        a.len(),
        b.len(),
        context(a),
        context(b)
    )
}

fn carrier_secure_htm(data: &[u8]) -> Option<String> {
    let msg = mail_parser::MessageParser::default().parse(data)?;
    let attachment = msg
        .attachments()
        .find(|a| a.attachment_name() == Some("secure.htm"))?;
    sealpost_mime::securehtm::extract_payload(attachment.contents())
}

fn sender(i: usize) -> String {
    format!("corpus{i}@bank.example")
}

/// Clients on different loopback addresses sharing one cookie jar, i.e. one session.
fn clients(jar: &Arc<reqwest::cookie::Jar>) -> Vec<reqwest::Client> {
    (2..2 + CLIENT_ADDRESSES)
        .map(|last| {
            reqwest::Client::builder()
                .danger_accept_invalid_certs(true)
                .cookie_provider(jar.clone())
                .redirect(reqwest::redirect::Policy::none())
                .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
                .build()
                .expect("client")
        })
        .collect()
}

enum Outcome {
    RoundTripped,
    Failed(String),
}

/// Opens one carrier in the portal: the message page, the HTML frame and the download.
async fn open_one(
    node: &TestNode,
    client: &reqwest::Client,
    payload: &str,
    expected: &[u8],
) -> Outcome {
    let r = client
        .post(node.url("/open"))
        .header("origin", "null")
        .form(&[("payload", payload)])
        .send()
        .await
        .expect("POST /open");
    if r.status() != 303 {
        return Outcome::Failed(format!("POST /open answered {}", r.status()));
    }
    let path = location(&r);
    let mut problems = Vec::new();
    for view in [path.clone(), format!("{path}/html")] {
        let r = client.get(node.url(&view)).send().await.expect("GET view");
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        if status.is_server_error() {
            problems.push(format!(
                "GET {} answered {status}",
                view.replace(&path, "/open/…")
            ));
        } else if view == path && status != 200 && !body.contains("damaged") {
            // A message the display cannot render is shown as "damaged" (400); anything else
            // means the open itself went wrong.
            problems.push(format!("GET /open/… answered {status}"));
        }
    }
    let r = client
        .get(node.url(&format!("{path}/message.eml")))
        .send()
        .await
        .expect("GET message.eml");
    let status = r.status();
    let eml = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    if status != 200 {
        problems.push(format!("GET /open/…/message.eml answered {status}"));
    } else if eml != expected {
        problems.push(first_difference(expected, &eml));
    }
    if problems.is_empty() {
        Outcome::RoundTripped
    } else {
        Outcome::Failed(problems.join("; "))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_world_corpora_round_trip_through_the_portal() {
    let samples = samples();
    if samples.is_empty() {
        eprintln!(
            "corpus: skipped: neither mail-parser 0.11's resources/eml nor enmime's testdata \
             (apt-get install golang-github-jhillyerd-enmime-dev) was found"
        );
        return;
    }
    let started = Instant::now();
    // A bare CR is refused (550) by default; this suite measures what a node that keeps such
    // mail does with it, so the node keeps bare line ends as data.
    let node = TestNode::start_with(|c| c.smtp.bare_lf = BareLineEnds::Keep).await;
    node.node
        .store
        .set_setting(
            "security.force_password_change",
            "false",
            sealpost_store::unix_now() + 1,
        )
        .await
        .expect("setting");
    node.node
        .settings
        .reload(&node.node.store)
        .await
        .expect("reload");

    // All messages over one SMTP session; each has its own envelope sender so its carrier can
    // be told apart (carriers keep the original's sender).
    let flagged: Vec<Vec<u8>> = samples.iter().map(|s| flagged(&s.raw)).collect();
    let senders: Vec<String> = (0..samples.len()).map(sender).collect();
    let rcpts = vec![RECIPIENT.to_string()];
    let outbound: Vec<OutboundMessage<'_>> = flagged
        .iter()
        .zip(&senders)
        .map(|(data, from)| OutboundMessage {
            mail_from: from,
            rcpt_to: &rcpts,
            data,
        })
        .collect();
    let results = deliver_many(
        &NextHop::Smtp {
            host: "127.0.0.1".into(),
            port: node.smtp.port(),
        },
        &ClientConfig {
            opportunistic_tls: false,
            ..ClientConfig::default()
        },
        &outbound,
    )
    .await;
    let mut failures: Vec<String> = Vec::new();
    let mut accepted = 0;
    for (sample, result) in samples.iter().zip(&results) {
        if result.as_slice() == [RcptResult::Delivered] {
            accepted += 1;
        } else {
            failures.push(format!("{}: SMTP refused it: {result:?}", sample.label));
        }
    }

    // One carrier per accepted message plus the one credentials mail of the new account.
    let mails = node
        .sink
        .wait_for(accepted + 1, Duration::from_secs(60))
        .await;
    let password = mails
        .iter()
        .find(|m| kind_of(m) == "credentials")
        .map(credentials_password)
        .expect("a credentials mail for the recipient");
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let pool = clients(&jar);
    let r = node.login(&pool[0], RECIPIENT, &password).await;
    assert_eq!(r.status(), 303, "login succeeds");

    let mut round_tripped = 0;
    let mut not_transportable = Vec::new();
    for (i, sample) in samples.iter().enumerate() {
        if results[i].as_slice() != [RcptResult::Delivered] {
            continue;
        }
        let from = sender(i);
        let Some(carrier) = mails
            .iter()
            .find(|m| m.mail_from == from && kind_of(m) == "carrier")
        else {
            failures.push(format!("{}: no carrier arrived", sample.label));
            continue;
        };
        let Some(payload) = carrier_secure_htm(&carrier.data) else {
            failures.push(format!(
                "{}: carrier without a secure.htm payload",
                sample.label
            ));
            continue;
        };
        let expected = over_smtp(&sample.raw);
        let outcome = open_one(&node, &pool[i % pool.len()], &payload, &expected).await;
        match (outcome, sample.not_transportable.is_empty()) {
            (Outcome::RoundTripped, true) => round_tripped += 1,
            (Outcome::Failed(why), true) => failures.push(format!("{}: {why}", sample.label)),
            (outcome, false) => {
                let how = match outcome {
                    Outcome::RoundTripped => "came through unchanged anyway".to_string(),
                    Outcome::Failed(why) => why,
                };
                // A 5xx is a failure whatever the input was.
                if how.contains("answered 5") {
                    failures.push(format!("{}: {how}", sample.label));
                }
                not_transportable.push(format!(
                    "{} ({}): {how}",
                    sample.label,
                    sample.not_transportable.join(", ")
                ));
            }
        }
    }

    println!(
        "corpus: {} messages round-tripped, {} failures ({} messages, {} not transportable, {:.1} s)",
        round_tripped,
        failures.len(),
        samples.len(),
        not_transportable.len(),
        started.elapsed().as_secs_f64()
    );
    for line in &not_transportable {
        println!("  not transportable: {line}");
    }
    for line in &failures {
        println!("  FAILED {line}");
    }
    node.stop().await;
    assert!(
        round_tripped > 100,
        "only {round_tripped} messages round-tripped"
    );
    assert!(failures.is_empty(), "{} corpus failures", failures.len());
}

#[test]
fn smtp_expectation_and_trigger_placement() {
    assert_eq!(over_smtp(b"a\nb\r\nc"), b"a\r\nb\r\nc\r\n");
    assert_eq!(over_smtp(b"a\rb\n"), b"a\rb\r\n");
    assert_eq!(over_smtp(b""), b"");
    assert_eq!(
        flagged(b"A: b\n\nx"),
        b"X-Sealpost-Encrypt: yes\r\nA: b\n\nx"
    );
    assert_eq!(
        flagged(b" folded\nA: b\n\nx"),
        b" folded\nA: b\nX-Sealpost-Encrypt: yes\r\n\nx"
    );
    assert_eq!(
        transport_problems(b"a\rb\r\n\0"),
        vec!["bare CR", "NUL byte"]
    );
    assert!(transport_problems(&[b'x'; 998]).is_empty());
    assert_eq!(
        transport_problems(&[b'x'; 999]),
        vec!["line over 998 octets"]
    );
}
