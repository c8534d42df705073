//! Attacks against a real node: user enumeration, CSRF on every state-changing
//! route, stored XSS through mail fields, header injection through the reply, the reply's
//! recipient restriction, SMTP network restriction, session fixation and the separation of
//! portal and admin sessions. Each test checks the observable result (status, page, mail at
//! the sink, database state), so a regression makes it fail.
#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test

mod common;

// Regression tests of the security review, one module per area.
#[path = "security/lockout.rs"]
mod lockout;
#[path = "security/mail_policy.rs"]
mod mail_policy;
#[path = "security/mailbox_code.rs"]
mod mailbox_code;
#[path = "security/message_control.rs"]
mod message_control;
#[path = "security/passkey.rs"]
mod passkey;
#[path = "security/portal_guards.rs"]
mod portal_guards;
#[path = "security/recovery.rs"]
mod recovery;
#[path = "security/second_factor.rs"]
mod second_factor;
#[path = "security/sender_control.rs"]
mod sender_control;
#[path = "security/smtp_hardening.rs"]
mod smtp_hardening;
#[path = "security/trust_cues.rs"]
mod trust_cues;
#[path = "security/uploads.rs"]
mod uploads;

use std::time::{Duration, Instant};

use common::*;
use sealpost_core::admin::{Actor, create_admin};
use sealpost_smtp::outbound::RcptResult;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const ADVISOR: &str = "advisor@bank.example";
const NEW_PASSWORD: &str = "blue tram 47 over rivers";

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// A client without a cookie jar: the test sets and reads cookies itself.
fn raw_client() -> reqwest::Client {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn plain_mail(to: &str, subject: &str) -> Vec<u8> {
    crlf(&format!(
        "From: Anna Advisor <{ADVISOR}>\nTo: {to}\nCc: colleague@bank.example, other@example.net\n\
Subject: {subject} [secure]\nMessage-ID: <orig-{}@bank.example>\nMIME-Version: 1.0\n\
Content-Type: text/plain; charset=utf-8\n\nDear customer, here it is.\n",
        nanos()
    ))
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

struct Recipient {
    address: String,
    payload: String,
    password: String,
}

/// Sends `mail` (flagged) to a new address; returns its carrier payload and password.
async fn provision_with(node: &TestNode, address: &str, mail: &[u8]) -> Recipient {
    let before = node.sink.received().len();
    let results = node.send(ADVISOR, &[address], mail).await;
    assert_eq!(results, vec![RcptResult::Delivered]);
    let mails = node.wait_for_mails(before + 2).await;
    let fresh = &mails[before..];
    let carrier = fresh.iter().find(|m| kind_of(m) == "carrier").unwrap();
    let cred = fresh.iter().find(|m| kind_of(m) == "credentials").unwrap();
    Recipient {
        address: address.to_string(),
        payload: carrier_payload(carrier),
        password: credentials_password(cred),
    }
}

async fn provision(node: &TestNode, address: &str) -> Recipient {
    provision_with(node, address, &plain_mail(address, "Your contract")).await
}

/// Logs in with a cookie-jar client, completes the first-login page (own password, question).
async fn logged_in(node: &TestNode, r: &Recipient) -> reqwest::Client {
    let client = node.client();
    assert_eq!(
        node.login(&client, &r.address, &r.password).await.status(),
        303
    );
    complete_first_login(node, &client, NEW_PASSWORD).await;
    client
}

fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("{name} in page"))
        + marker.len();
    let end = page[start..].find('"').unwrap() + start;
    page[start..end].to_string()
}

async fn open_message(
    node: &TestNode,
    client: &reqwest::Client,
    payload: &str,
) -> (String, String) {
    let open = location(&node.post_open(client, payload).await);
    assert!(open.starts_with("/open/"), "{open}");
    let resp = get(node, client, &open).await;
    assert_eq!(resp.status(), 200);
    (open, resp.text().await.unwrap())
}

async fn set_setting(node: &TestNode, name: &str, value: &str) {
    node.node
        .store
        .set_setting(name, value, sealpost_store::unix_now() + 2)
        .await
        .unwrap();
    node.node.settings.reload(&node.node.store).await.unwrap();
}

/// The token of a `Set-Cookie: NAME=token; …` header, if the response sets that cookie.
fn set_cookie_token(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let first = v.split(';').next()?;
            let (k, val) = first.split_once('=')?;
            (k.trim() == name).then(|| val.trim().to_string())
        })
}

fn q_encode(s: &str) -> String {
    let hex: String = s.bytes().map(|b| format!("={b:02X}")).collect();
    format!("=?utf-8?q?{hex}?=")
}

fn pct_encode(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

// ---------------------------------------------------------------------------------------
// A tiny HTML tag scanner: enough to find tags and attributes the way a browser would for
// the markup we produce, without trusting substring searches (escaped text may legitimately
// contain "onerror=").
// ---------------------------------------------------------------------------------------

struct Tag {
    name: String,
    attrs: Vec<(String, String)>,
}

fn scan_tags(html: &str) -> Vec<Tag> {
    let b = html.as_bytes();
    let mut tags = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'<' {
            i += 1;
            continue;
        }
        i += 1;
        if html[i..].starts_with("!--") {
            i = html[i..].find("-->").map(|e| i + e + 3).unwrap_or(b.len());
            continue;
        }
        if i >= b.len() || !b[i].is_ascii_alphabetic() {
            continue;
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'-' || b[i] == b':') {
            i += 1;
        }
        let name = html[start..i].to_ascii_lowercase();
        let mut attrs = Vec::new();
        loop {
            while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
                i += 1;
            }
            if i >= b.len() || b[i] == b'>' {
                i += 1;
                break;
            }
            let a = i;
            while i < b.len() && !b[i].is_ascii_whitespace() && !matches!(b[i], b'=' | b'>' | b'/')
            {
                i += 1;
            }
            let attr = html[a..i].to_ascii_lowercase();
            let mut value = String::new();
            if i < b.len() && b[i] == b'=' {
                i += 1;
                if i < b.len() && (b[i] == b'"' || b[i] == b'\'') {
                    let q = b[i];
                    i += 1;
                    let v = i;
                    while i < b.len() && b[i] != q {
                        i += 1;
                    }
                    value = html[v..i.min(b.len())].to_string();
                    i += 1;
                } else {
                    let v = i;
                    while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                        i += 1;
                    }
                    value = html[v..i].to_string();
                }
            }
            if attr.is_empty() {
                i += 1;
            } else {
                attrs.push((attr, value));
            }
        }
        tags.push(Tag { name, attrs });
    }
    tags
}

/// Decodes the entities a browser would decode in a URL attribute, then strips the
/// whitespace and control characters browsers ignore in a scheme.
fn url_scheme_view(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        let end = rest.find(';').unwrap_or(0);
        let entity = &rest[1..end.max(1)];
        let decoded = if let Some(hex) = entity.strip_prefix("#x").or(entity.strip_prefix("#X")) {
            u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)
        } else if let Some(dec) = entity.strip_prefix('#') {
            dec.parse().ok().and_then(char::from_u32)
        } else {
            match entity {
                "colon" => Some(':'),
                "Tab" => Some('\t'),
                "NewLine" => Some('\n'),
                _ => None,
            }
        };
        match (end, decoded) {
            (e, Some(c)) if e > 0 => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            _ => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out.chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Fails when the HTML holds anything that would run script, or load a remote resource when
/// `remote_ok` is false.
fn assert_inert(html: &str, what: &str, allowed_tags: &[&str]) {
    const ACTIVE: [&str; 9] = [
        "script", "svg", "math", "object", "embed", "applet", "frameset", "frame", "xmp",
    ];
    for tag in scan_tags(html) {
        assert!(
            !ACTIVE.contains(&tag.name.as_str()) || allowed_tags.contains(&tag.name.as_str()),
            "{what}: active tag <{}> in {html}",
            tag.name
        );
        // The page's own <meta charset/viewport> and local stylesheets are fine; a refresh
        // or a stylesheet from elsewhere is not.
        let attr = |n: &str| {
            tag.attrs
                .iter()
                .find(|(a, _)| a == n)
                .map(|(_, v)| v.as_str())
        };
        if tag.name == "base" {
            assert!(attr("href").is_none(), "{what}: <base href>");
        }
        if tag.name == "meta" {
            assert!(attr("http-equiv").is_none(), "{what}: <meta http-equiv>");
        }
        if tag.name == "link" {
            let href = attr("href").unwrap_or_default();
            assert!(
                href.starts_with('/') && !href.starts_with("//"),
                "{what}: <link href={href}>"
            );
        }
        for (name, value) in &tag.attrs {
            assert!(
                !name.starts_with("on"),
                "{what}: event handler {name}= on <{}>",
                tag.name
            );
            assert_ne!(name, "srcdoc", "{what}: srcdoc on <{}>", tag.name);
            if matches!(
                name.as_str(),
                "href"
                    | "src"
                    | "action"
                    | "formaction"
                    | "data"
                    | "xlink:href"
                    | "background"
                    | "poster"
                    | "style"
                    | "content"
            ) {
                let v = url_scheme_view(value);
                for bad in ["javascript:", "vbscript:", "data:text/html"] {
                    assert!(
                        !v.contains(bad),
                        "{what}: {bad} in {name}= of <{}>: {value}",
                        tag.name
                    );
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// (a) User enumeration
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn login_answers_alike_and_in_similar_time_for_known_and_unknown_addresses() {
    let node = TestNode::start().await;
    // Lockout would make the known account answer without Argon2; keep it out of the way.
    set_setting(&node, "security.lockout_threshold", "1000").await;
    let known = provision(&node, "known@example.com").await;
    let unknown = "nobody-here@example.com";
    let client = raw_client();
    let attempt = |address: &'static str| {
        let client = client.clone();
        let url = node.url("/login");
        async move {
            let started = Instant::now();
            let r = client
                .post(url)
                .form(&[
                    ("address", address),
                    ("password", "wrong guess 1"),
                    ("next", "/"),
                ])
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let has_cookie = r.headers().get("set-cookie").is_some();
            let text = r.text().await.unwrap();
            (status, has_cookie, text, started.elapsed())
        }
    };
    // One warm-up each (first Argon2 call, connection set-up), then 8 interleaved pairs: the
    // auth rate limit allows a burst of 20 per client address.
    let (_, _, page_k, _) = attempt("known@example.com").await;
    let (_, _, page_u, _) = attempt(unknown).await;
    assert_eq!(
        page_k.replace(&known.address, "ADDRESS"),
        page_u.replace(unknown, "ADDRESS"),
        "login failure pages differ"
    );
    let (mut tk, mut tu) = (Vec::new(), Vec::new());
    for _ in 0..8 {
        let (sk, ck, bk, dk) = attempt("known@example.com").await;
        let (su, cu, bu, du) = attempt(unknown).await;
        assert_eq!((sk, su), (401, 401));
        assert!(!ck && !cu, "no cookie on a failed login");
        assert_eq!(
            bk.replace(&known.address, "ADDRESS"),
            bu.replace(unknown, "ADDRESS")
        );
        tk.push(dk);
        tu.push(du);
    }
    let (mk, mu) = (median(tk), median(tu));
    let (slow, fast) = if mk > mu { (mk, mu) } else { (mu, mk) };
    assert!(
        slow < fast * 3,
        "login timing reveals accounts: median known {mk:?}, unknown {mu:?}"
    );
    // Both paths really hash: a login takes measurably longer than a static page.
    let started = Instant::now();
    get(&node, &client, "/login").await;
    let page_time = started.elapsed();
    assert!(
        fast > page_time,
        "unknown address answered without hashing? {fast:?} vs page {page_time:?}"
    );
    node.stop().await;
}

#[tokio::test]
async fn forgotten_password_answers_alike_and_in_similar_time_for_known_and_unknown() {
    let node = TestNode::start().await;
    // Times the answer step alone; the code step has its own test in `recovery`.
    set_setting(&node, "security.recovery", "answer-only").await;
    set_setting(&node, "security.secret_answer_max_attempts", "1000").await;
    let known = provision(&node, "known@example.com").await;
    let _session = logged_in(&node, &known).await; // sets the secret question
    let unknown = "nobody-here@example.com";
    let client = raw_client();
    let post = |path: &'static str, form: Vec<(&'static str, &'static str)>| {
        let client = client.clone();
        let url = node.url(path);
        async move {
            let started = Instant::now();
            let r = client.post(url).form(&form).send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap(), started.elapsed())
        }
    };
    // The question step: same status and page apart from the address and the question.
    let blank_question = |page: &str, address: &str| {
        let start = page.find(":</strong> ").expect("question shown") + ":</strong> ".len();
        let end = page[start..].find("</p>").unwrap() + start;
        page.replace(&page[start..end], "QUESTION")
            .replace(address, "ADDRESS")
    };
    let (sk, pk, _) = post("/forgot", vec![("address", "known@example.com")]).await;
    let (su, pu, _) = post("/forgot", vec![("address", unknown)]).await;
    assert_eq!((sk, su), (200, 200));
    assert_eq!(
        blank_question(&pk, &known.address),
        blank_question(&pu, unknown)
    );

    // Wrong answers: 1 warm-up + 7 each, interleaved.
    post(
        "/forgot/answer",
        vec![("address", "known@example.com"), ("answer", "x")],
    )
    .await;
    post(
        "/forgot/answer",
        vec![("address", unknown), ("answer", "x")],
    )
    .await;
    // 1 login + 2 question steps + 2 warm-ups + 14 timed answers stay within the burst of 20.
    let (mut tk, mut tu) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        let (sk, bk, dk) = post(
            "/forgot/answer",
            vec![("address", "known@example.com"), ("answer", "Fluffy")],
        )
        .await;
        let (su, bu, du) = post(
            "/forgot/answer",
            vec![("address", unknown), ("answer", "Fluffy")],
        )
        .await;
        assert_eq!((sk, su), (401, 401));
        assert_eq!(
            blank_question(&bk, &known.address),
            blank_question(&bu, unknown)
        );
        tk.push(dk);
        tu.push(du);
    }
    let (mk, mu) = (median(tk), median(tu));
    let (slow, fast) = if mk > mu { (mk, mu) } else { (mu, mk) };
    assert!(
        slow < fast * 3,
        "secret-answer timing reveals accounts: median known {mk:?}, unknown {mu:?}"
    );
    node.stop().await;
}

// ---------------------------------------------------------------------------------------
// (b) CSRF on every state-changing route
// ---------------------------------------------------------------------------------------

/// Everything a forged request could change, in one comparable value.
async fn fingerprint(node: &TestNode, ids: &[&str], admin: &str) -> String {
    let store = &node.node.store;
    let mut out = String::new();
    for id in ids {
        match store.account_by_id(id).await.unwrap() {
            Some(a) => out.push_str(&format!(
                "{}|{}|{:?}|{}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}\n",
                a.address,
                a.password_hash,
                a.status,
                a.must_change_password,
                a.language,
                a.secret_question,
                a.secret_answer_hash,
                a.locked_until,
                a.valid_until,
                store.key_versions(id).await.unwrap()
            )),
            None => out.push_str("deleted\n"),
        }
    }
    let admin = store.admin_by_name(admin).await.unwrap().unwrap();
    out.push_str(&format!(
        "{}|{:?}|{}\n",
        admin.password_hash, admin.totp_secret, admin.must_change_password
    ));
    out.push_str(&format!("{:?}\n", store.all_settings().await.unwrap()));
    out.push_str(&format!("sink={}\n", node.sink.received().len()));
    out
}

/// How a forged request is sent: form fields (urlencoded) or multipart (the reply).
enum Body {
    Form(Vec<(String, String)>),
    Multipart(Vec<(String, String)>),
}

#[tokio::test]
async fn every_state_changing_route_refuses_missing_wrong_and_cross_site_csrf() {
    let node = TestNode::start().await;
    let r = provision(&node, "victim@example.com").await;
    let target = provision(&node, "target@example.com").await;
    let portal = logged_in(&node, &r).await;
    let (open, page) = open_message(&node, &portal, &r.payload).await;
    let portal_csrf = hidden(&page, "csrf");
    let victim_id = node
        .node
        .store
        .account_by_address(&r.address)
        .await
        .unwrap()
        .unwrap()
        .id;
    let target_id = node
        .node
        .store
        .account_by_address(&target.address)
        .await
        .unwrap()
        .unwrap()
        .id;

    // An admin with the one-time password already replaced.
    let (admin, admin_csrf) = admin_session(&node, "root").await;

    let f = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let t = target_id.as_str();
    // Every POST route of portal_routes() and admin::routes() that needs a session, with a
    // body that would succeed with the right token.
    let mut cases: Vec<(bool, String, Body)> = vec![
        (true, "/logout".into(), Body::Form(vec![])),
        (
            true,
            format!("{open}/reply"),
            Body::Multipart(f(&[
                ("body", "forged reply"),
                ("cc", "colleague@bank.example"),
            ])),
        ),
        (
            true,
            "/welcome".into(),
            Body::Form(f(&[
                ("next", "/"),
                ("password", "attacker chosen pass 9"),
                ("password2", "attacker chosen pass 9"),
                ("question", "pet"),
                ("answer", "attacker"),
            ])),
        ),
        (
            true,
            "/profile/password".into(),
            Body::Form(f(&[
                ("current", NEW_PASSWORD),
                ("password", "attacker chosen pass 9"),
                ("password2", "attacker chosen pass 9"),
                ("new_password", "attacker chosen pass 9"),
                ("repeat", "attacker chosen pass 9"),
            ])),
        ),
        (
            true,
            "/profile/question".into(),
            Body::Form(f(&[
                ("question", "pet"),
                ("own_question", ""),
                ("answer", "attacker"),
                ("current", NEW_PASSWORD),
            ])),
        ),
        (
            true,
            "/profile/language".into(),
            Body::Form(f(&[("language", "de")])),
        ),
        (
            true,
            "/profile/passkeys/register/start".into(),
            Body::Form(f(&[("current", NEW_PASSWORD)])),
        ),
        (
            true,
            "/profile/passkeys/register/finish".into(),
            Body::Form(f(&[("ceremony", "c"), ("credential", "{}"), ("name", "x")])),
        ),
        (
            true,
            "/profile/passkeys/0123/rename".into(),
            Body::Form(f(&[("name", "x")])),
        ),
        (
            true,
            "/profile/passkeys/0123/remove".into(),
            Body::Form(f(&[("current", NEW_PASSWORD)])),
        ),
        (false, "/admin/logout".into(), Body::Form(vec![])),
        (
            false,
            "/admin/password".into(),
            Body::Form(f(&[
                ("current", "root-chosen-password-1"),
                ("new_password", "attacker-password-77"),
                ("repeat", "attacker-password-77"),
            ])),
        ),
        (
            false,
            "/admin/totp".into(),
            Body::Form(f(&[("secret", "JBSWY3DPEHPK3PXP"), ("code", "000000")])),
        ),
        (
            false,
            format!("/admin/users/{t}/delete"),
            Body::Form(f(&[("confirm", target.address.as_str())])),
        ),
        (
            false,
            "/admin/settings/network/metrics-token".into(),
            Body::Form(vec![]),
        ),
        (
            false,
            "/admin/settings/mail/test-hop".into(),
            Body::Form(vec![]),
        ),
    ];
    for action in ["reset-password", "disable", "enable", "unlock", "rotate"] {
        cases.push((
            false,
            format!("/admin/users/{t}/{action}"),
            Body::Form(vec![]),
        ));
    }
    cases.push((
        false,
        format!("/admin/users/{t}/validity"),
        Body::Form(f(&[("valid_until", "2000-01-01")])),
    ));
    for section in ["mail", "security", "network", "branding"] {
        cases.push((
            false,
            format!("/admin/settings/{section}"),
            Body::Form(f(&[
                ("security.lockout_threshold", "1"),
                ("admin.allowed_networks", "10.9.9.9/32"),
                ("web.public_url", "https://evil.example"),
                ("branding.accent_color", "#ff0000"),
                ("mail.credentials_to", "evil@attacker.example"),
            ])),
        ));
    }

    let before = fingerprint(&node, &[&victim_id, &target_id], "root").await;
    let mut failures = Vec::new();
    for (is_portal, path, body) in &cases {
        let (client, good) = if *is_portal {
            (&portal, &portal_csrf)
        } else {
            (&admin, &admin_csrf)
        };
        // (csrf field, extra header, label)
        let variants: [(Option<&str>, Option<&str>, &str); 3] = [
            (None, None, "missing token"),
            (Some("forged-token"), None, "wrong token"),
            (Some(good.as_str()), Some("cross-site"), "cross-site"),
        ];
        for (csrf, site, label) in variants {
            let mut req = client.post(node.url(path));
            if let Some(site) = site {
                req = req.header("sec-fetch-site", site);
            }
            req = match body {
                Body::Form(pairs) => {
                    let mut pairs = pairs.clone();
                    if let Some(c) = csrf {
                        pairs.push(("csrf".into(), c.into()));
                    }
                    req.form(&pairs)
                }
                Body::Multipart(pairs) => {
                    let mut form = reqwest::multipart::Form::new();
                    if let Some(c) = csrf {
                        form = form.text("csrf", c.to_string());
                    }
                    for (k, v) in pairs {
                        form = form.text(k.clone(), v.clone());
                    }
                    req.multipart(form)
                }
            };
            let status = req.send().await.unwrap().status().as_u16();
            // A missing field may also be rejected before the handler (400/422); what matters
            // is that nothing is done, which the fingerprint below checks.
            let refused = if label == "missing token" {
                matches!(status, 400 | 403 | 422)
            } else {
                status == 403
            };
            if !refused {
                failures.push(format!("POST {path} ({label}): {status}"));
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = fingerprint(&node, &[&victim_id, &target_id], "root").await;
    assert!(failures.is_empty(), "not refused: {failures:#?}");
    assert_eq!(before, after, "a refused request changed state");
    // Both sessions survived the forged logouts.
    assert_eq!(get(&node, &portal, "/profile").await.status(), 200);
    assert_eq!(get(&node, &admin, "/admin/users").await.status(), 200);

    // Pre-session forms (login, forgotten password) carry no token; a cross-site post of
    // them is refused by the Sec-Fetch-Site / Origin check.
    for (path, form) in [
        (
            "/login",
            vec![("address", r.address.as_str()), ("password", NEW_PASSWORD)],
        ),
        ("/forgot", vec![("address", r.address.as_str())]),
        (
            "/forgot/answer",
            vec![("address", r.address.as_str()), ("answer", "sealpost")],
        ),
        (
            "/admin/login",
            vec![("name", "root"), ("password", "root-chosen-password-1")],
        ),
    ] {
        for (header, value) in [
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-site", "same-site"),
            ("origin", "https://evil.example"),
        ] {
            let c = raw_client();
            let resp = c
                .post(node.url(path))
                .header(header, value)
                .form(&form)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 403, "POST {path} with {header}: {value}");
            assert!(resp.headers().get("set-cookie").is_none());
        }
    }
    assert_eq!(
        before,
        fingerprint(&node, &[&victim_id, &target_id], "root").await
    );
    node.stop().await;
}

// ---------------------------------------------------------------------------------------
// (c) Stored XSS through the mail
// ---------------------------------------------------------------------------------------

const XSS: &[&str] = &[
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    "<svg onload=alert(3)>",
    "<svg/onload=alert(4)>",
    "\"><script>alert(5)</script>",
    "'><img src=x onerror=alert(6)>",
    "<a href=\"javascript:alert(7)\">seven</a>",
    "<a href=\"jav&#x09;ascript:alert(8)\">eight</a>",
    "<a href=\"&#106;avascript&colon;alert(9)\">nine</a>",
    "<iframe src=\"javascript:alert(10)\"></iframe>",
    "<body onload=alert(11)>",
    "<ScRiPt>alert(12)</sCrIpT>",
    "<scr<script>ipt>alert(13)</script>",
    "%3Cscript%3Ealert(14)%3C/script%3E",
    "&lt;script&gt;alert(15)&lt;/script&gt;",
    "<object data=\"javascript:alert(17)\"></object>",
    "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(18)\">",
    "<form action=\"javascript:alert(19)\"><button>nineteen</button></form>",
    "<div style=\"background:url(javascript:alert(20))\">twenty</div>",
    "<base href=\"javascript:alert(21)//\">",
    "<img src=\"https://evil.example/track.png\">",
    "<a href=\"JaVaScRiPt:alert(23)\">23</a>",
    "<img src=`x`onerror=alert(24)>",
    "<details open ontoggle=alert(25)>",
    "<input autofocus onfocus=alert(26)>",
    "<!--><script>alert(27)</script>-->",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(16)>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(28)>\">",
];

fn xss_mail(to: &str) -> Vec<u8> {
    let subject: Vec<String> = XSS[..8].iter().map(|p| q_encode(p)).collect();
    let name = q_encode("Anna\"><img src=x onerror=alert(99)> <script>alert(98)</script>");
    let html: String = XSS.concat();
    let text: String = XSS.join("\n");
    let file1 = pct_encode("\"><img src=x onerror=alert(97)>.pdf");
    let file2 = pct_encode("<script>alert(96)</script>.html");
    let file3 = pct_encode("javascript:alert(95)");
    crlf(&format!(
        "From: {name} <{ADVISOR}>\nTo: {to}\nSubject: {} [secure]\n\
Message-ID: <xss-{}@bank.example>\nMIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"B1\"\n\n--B1\n\
Content-Type: multipart/alternative; boundary=\"B2\"\n\n--B2\n\
Content-Type: text/plain; charset=utf-8\n\n{text}\n--B2\n\
Content-Type: text/html; charset=utf-8\n\n<html><body><p>Hello</p>{html}</body></html>\n--B2--\n--B1\n\
Content-Type: application/pdf\nContent-Disposition: attachment; filename*=utf-8''{file1}\n\
Content-Transfer-Encoding: base64\n\nSGVsbG8=\n--B1\n\
Content-Type: text/html\nContent-Disposition: attachment; filename*=utf-8''{file2}\n\n<script>alert(94)</script>\n--B1\n\
Content-Type: application/octet-stream\nContent-Disposition: attachment; filename*=utf-8''{file3}\n\nx\n--B1--\n",
        subject.join(" "),
        nanos()
    ))
}

#[tokio::test]
async fn script_in_subject_sender_filename_and_html_is_never_rendered_active() {
    let node = TestNode::start().await;
    let r = provision_with(&node, "xss@example.com", &xss_mail("xss@example.com")).await;
    let client = logged_in(&node, &r).await;
    let (open, page) = open_message(&node, &client, &r.payload).await;
    // The payloads arrived (as text): otherwise the test would prove nothing.
    assert!(
        page.contains("alert(1)") && page.contains("alert(99)"),
        "{page}"
    );
    assert!(page.contains("alert(97)"), "attachment name shown");
    assert_inert(&page, "message page", &["iframe"]);
    for p in XSS.iter().filter(|p| p.contains('<') || p.contains('"')) {
        assert!(
            !page.contains(p),
            "payload verbatim in the message page: {p}"
        );
    }
    // Each iframe is the sandboxed body frame of this message.
    for tag in scan_tags(&page).into_iter().filter(|t| t.name == "iframe") {
        assert!(
            tag.attrs.iter().any(|(n, _)| n == "sandbox"),
            "iframe sandboxed"
        );
        let src = &tag.attrs.iter().find(|(n, _)| n == "src").unwrap().1;
        assert_eq!(src, &format!("{open}/html"));
    }

    // The body frame: sanitised, no remote image, and its own CSP forbids script.
    let resp = get(&node, &client, &format!("{open}/html")).await;
    assert_eq!(resp.status(), 200);
    let csp = resp
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        !csp.contains("script-src") || csp.contains("script-src 'none'"),
        "{csp}"
    );
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let frame = resp.text().await.unwrap();
    // The later payloads reached the frame too (an unclosed tag could swallow them).
    assert!(
        frame.contains("Hello") && frame.contains("twenty") && frame.contains("23"),
        "{frame}"
    );
    assert_inert(&frame, "body frame", &[]);
    for tag in scan_tags(&frame) {
        for (n, v) in &tag.attrs {
            if n == "src" {
                assert!(
                    !v.to_ascii_lowercase().contains("evil.example"),
                    "remote resource in the body frame: {v}"
                );
            }
            assert_ne!(tag.name, "iframe");
            assert_ne!(tag.name, "form");
        }
    }

    // Attachments are downloads, never rendered inline as HTML on our origin.
    for i in 0..3 {
        let resp = get(&node, &client, &format!("{open}/part/{i}")).await;
        if resp.status() != 200 {
            continue;
        }
        let cd = resp
            .headers()
            .get("content-disposition")
            .map(|v| v.to_str().unwrap_or("").to_string())
            .unwrap_or_default();
        assert!(cd.starts_with("attachment"), "part {i}: {cd}");
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or("").to_string())
            .unwrap_or_default();
        assert!(
            !ct.contains("text/html") || cd.starts_with("attachment"),
            "part {i} served as {ct}"
        );
        assert_eq!(
            resp.headers().get("x-content-type-options").unwrap(),
            "nosniff"
        );
    }
    node.stop().await;
}

#[tokio::test]
async fn admin_pages_escape_hostile_addresses_and_search_terms() {
    let node = TestNode::start().await;
    // Markup in a quoted local part, and an attribute break-out with only atext characters
    // (' = ` are legal in a dot-atom local part). The SMTP side may refuse the first; the
    // second is a valid address and must reach the admin pages escaped.
    let before = node.sink.received().len();
    let mut accepted = 0;
    for hostile in [
        "\"<svg/onload=alert(1)>\"@example.com",
        "q'onfocus='alert`1`'autofocus='@example.com",
    ] {
        let results = node
            .send(ADVISOR, &[hostile], &plain_mail("x@example.com", "Hi"))
            .await;
        if results == vec![RcptResult::Delivered] {
            accepted += 1;
        }
    }
    assert!(accepted >= 1, "the atext address is a valid recipient");
    // An admin with the one-time password already replaced.
    let (admin, _) = admin_session(&node, "root").await;

    {
        node.wait_for_mails(before + accepted).await;
        let accounts = node
            .node
            .store
            .accounts_after("", 100)
            .await
            .unwrap_or_default();
        let hostile: Vec<_> = accounts
            .iter()
            .filter(|a| a.address.contains("alert"))
            .collect();
        assert_eq!(hostile.len(), accepted, "one account per accepted address");
        for account in hostile {
            let page = page_text(&node, &admin, &format!("/admin/users/{}", account.id)).await;
            assert!(page.contains("alert"), "address shown");
            assert_inert(&page, "admin user page", &[]);
            assert!(!page.contains("<svg/onload"));
            assert!(
                !page.contains("'onfocus='"),
                "attribute break-out unescaped"
            );
        }
        let page = page_text(&node, &admin, "/admin/users").await;
        assert_inert(&page, "admin user list", &[]);
        let page = page_text(&node, &admin, "/admin/audit").await;
        assert_inert(&page, "admin audit page", &[]);
    }
    // A reflected search term is escaped.
    for p in XSS {
        let resp = admin
            .get(node.url("/admin/users"))
            .query(&[("q", p)])
            .send()
            .await
            .unwrap();
        let page = resp.text().await.unwrap();
        assert_inert(&page, &format!("admin search for {p}"), &[]);
    }
    node.stop().await;
}

// ---------------------------------------------------------------------------------------
// (d) Header injection through the reply, (e) reply recipients
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn crlf_in_subject_sender_name_or_reply_filename_adds_no_header() {
    let node = TestNode::start().await;
    let address = "inject@example.com";
    let subject = q_encode("Contract\r\nBcc: evil@attacker.example\r\nX-Injected: yes");
    let name = q_encode("Anna\r\nBcc: evil2@attacker.example");
    let mail = crlf(&format!(
        "From: {name} <{ADVISOR}>\nTo: {address}\nSubject: {subject} [secure]\n\
Message-ID: <inj-1@bank.example>\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\nBody.\n"
    ));
    let r = provision_with(&node, address, &mail).await;
    let client = logged_in(&node, &r).await;
    let (open, page) = open_message(&node, &client, &r.payload).await;
    let csrf = hidden(&page, "csrf");

    // Multipart written by hand so the filename reaches the server exactly as chosen
    // (RFC 7578 / 5987 extended parameter, which multer decodes).
    let boundary = "XBOUNDARYX";
    let evil_name = pct_encode("signed.pdf\r\nBcc: evil3@attacker.example\r\nX-Injected: yes");
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
--{boundary}\r\nContent-Disposition: form-data; name=\"body\"\r\n\r\nSee attachment.\r\n\
--{boundary}\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"a.pdf\"; filename*=utf-8''{evil_name}\r\n\
Content-Type: application/pdf\r\n\r\n%PDF-1.4 test\r\n--{boundary}--\r\n"
    );
    let before = node.sink.received().len();
    let resp = client
        .post(node.url(&format!("{open}/reply")))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "reply accepted");
    let mails = node.wait_for_mails(before + 1).await;
    let reply = mails[before..]
        .iter()
        .find(|m| kind_of(m) == "reply")
        .expect("reply at the sink");
    assert_eq!(reply.rcpt_to, vec![ADVISOR], "envelope only to the sender");
    let raw = String::from_utf8_lossy(&reply.data).replace("\r\n", "\n");
    let mut header_names = Vec::new();
    // Top-level header block and every MIME part's header block.
    for block in raw.split("\n\n").step_by(1) {
        for line in block.lines() {
            if let Some((name, _)) = line.split_once(':')
                && !name.starts_with([' ', '\t'])
                && !name.contains(' ')
            {
                header_names.push(name.to_ascii_lowercase());
            }
        }
    }
    assert!(
        !header_names.iter().any(|h| h == "bcc" || h == "x-injected"),
        "injected header in the reply:\n{raw}"
    );
    let msg = mail_parser::MessageParser::default()
        .parse(&reply.data)
        .unwrap();
    assert!(msg.bcc().is_none(), "no Bcc header");
    assert!(msg.header_raw("X-Injected").is_none());
    for part in msg.parts.iter() {
        assert!(
            part.headers
                .iter()
                .all(|h| !h.name.as_str().eq_ignore_ascii_case("x-injected"))
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(node.sink.received().len(), before + 1, "nothing else sent");
    node.stop().await;
}

#[tokio::test]
async fn reply_cannot_be_steered_to_other_addresses_or_other_accounts_messages() {
    let node = TestNode::start().await;
    let a = provision(&node, "alice@example.com").await;
    let b = provision(&node, "bob@example.com").await;
    let alice = logged_in(&node, &a).await;
    let bob = logged_in(&node, &b).await;
    let (open_a, page_a) = open_message(&node, &alice, &a.payload).await;
    let csrf_a = hidden(&page_a, "csrf");
    let (_, page_b) = open_message(&node, &bob, &b.payload).await;
    let csrf_b = hidden(&page_b, "csrf");
    let reply_a = node.url(&format!("{open_a}/reply"));
    let before = node.sink.received().len();

    // Variants portal.rs does not try: lists, display names, header syntax and case tricks
    // smuggled into the one allowed field.
    for cc in [
        "colleague@bank.example, evil@attacker.example",
        "colleague@bank.example;evil@attacker.example",
        "colleague@bank.example\r\nBcc: evil@attacker.example",
        "Colleague <evil@attacker.example>",
        "evil@attacker.example <colleague@bank.example>",
        "colleague@bank.example\nevil@attacker.example",
        "colleague@bank.example%evil@attacker.example",
        "\"colleague@bank.example\"@attacker.example",
        "colleague@bank.example@attacker.example",
        "evil@attacker.example (colleague@bank.example)",
    ] {
        let form = reqwest::multipart::Form::new()
            .text("csrf", csrf_a.clone())
            .text("body", "x")
            .text("cc", cc.to_string());
        let status = alice
            .post(&reply_a)
            .multipart(form)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        assert!(matches!(status, 400 | 403), "cc {cc:?} → {status}");
    }
    // Bob replying through Alice's open token (guessed or leaked) reaches nothing.
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf_b.clone())
        .text("body", "from bob");
    let status = bob
        .post(&reply_a)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    assert!(status >= 400, "bob on alice's message → {status}");
    let status = get(&node, &bob, &open_a).await.status().as_u16();
    assert!(
        status >= 400 || status == 303,
        "bob reads alice's message → {status}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(node.sink.received().len(), before, "no mail left the node");
    node.stop().await;
}

// ---------------------------------------------------------------------------------------
// (f) SMTP only from allowed networks
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn smtp_from_a_network_outside_allowed_networks_gets_554_and_nothing_is_queued() {
    let node = TestNode::start_with(|c| {
        c.smtp.allowed_networks = vec!["10.0.0.0/8".into(), "2001:db8::/32".into()];
    })
    .await;
    let stream = tokio::net::TcpStream::connect(node.smtp).await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let greeting = tokio::time::timeout(Duration::from_secs(5), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap_or_default();
    assert!(greeting.starts_with("554"), "greeting: {greeting}");
    // Whatever the client tries next, no transaction is accepted.
    let _ = write
        .write_all(b"EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n")
        .await;
    let mut replies = Vec::new();
    while let Ok(Ok(Some(line))) =
        tokio::time::timeout(Duration::from_secs(3), lines.next_line()).await
    {
        replies.push(line);
    }
    assert!(
        replies
            .iter()
            .all(|l| !l.starts_with('2') && !l.starts_with('3')),
        "{replies:?}"
    );
    let results = node
        .send(
            ADVISOR,
            &["c@example.com"],
            &plain_mail("c@example.com", "x"),
        )
        .await;
    assert!(
        results.iter().all(|r| *r != RcptResult::Delivered),
        "{results:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(node.sink.received().is_empty());
    node.stop().await;
}

// ---------------------------------------------------------------------------------------
// (g) Session fixation, (h) portal and admin sessions kept apart
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_cookie_planted_before_login_never_becomes_the_session() {
    let node = TestNode::start().await;
    let a = provision(&node, "attacker@example.com").await;
    let v = provision(&node, "victim@example.com").await;
    let c = raw_client();
    let cookie = |t: &str| format!("__Host-sealpost={t}");
    let login = |address: String, password: String, planted: Option<String>| {
        let c = c.clone();
        let url = node.url("/login");
        async move {
            let mut req = c.post(url).form(&[
                ("address", address.as_str()),
                ("password", password.as_str()),
                ("next", "/"),
            ]);
            if let Some(p) = planted {
                req = req.header("cookie", p);
            }
            req.send().await.unwrap()
        }
    };

    // 1. An invented value: replaced at login, and worthless afterwards.
    let planted = "attackerchosenvalue0123456789abcdefABCDEF";
    let resp = login(v.address.clone(), v.password.clone(), Some(cookie(planted))).await;
    assert_eq!(resp.status(), 303);
    let victim_token = set_cookie_token(&resp, "__Host-sealpost").expect("session cookie");
    assert_ne!(victim_token, planted);
    let sc = resp.headers().get("set-cookie").unwrap().to_str().unwrap();
    for attr in ["Secure", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(sc.contains(attr), "{sc}");
    }
    assert!(!sc.to_ascii_lowercase().contains("domain="), "{sc}");
    let probe = |t: String| {
        let c = c.clone();
        let url = node.url("/welcome?next=/");
        async move {
            c.get(url)
                .header("cookie", format!("__Host-sealpost={t}"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        probe(victim_token.clone()).await,
        200,
        "victim is logged in"
    );
    assert_eq!(
        probe(planted.to_string()).await,
        303,
        "planted value is no session"
    );

    // 2. The attacker's own valid session planted in the victim's browser: the victim's login
    // issues a new token and ends the planted one, so the attacker never rides the victim's
    // session.
    let resp = login(a.address.clone(), a.password.clone(), None).await;
    let attacker_token = set_cookie_token(&resp, "__Host-sealpost").unwrap();
    assert_eq!(probe(attacker_token.clone()).await, 200);
    let resp = login(
        v.address.clone(),
        v.password.clone(),
        Some(cookie(&attacker_token)),
    )
    .await;
    assert_eq!(resp.status(), 303);
    let new_victim = set_cookie_token(&resp, "__Host-sealpost").unwrap();
    assert_ne!(new_victim, attacker_token);
    assert_ne!(new_victim, victim_token);
    assert_eq!(probe(attacker_token).await, 303, "planted session ended");
    assert_eq!(probe(new_victim).await, 200);
    node.stop().await;
}

#[tokio::test]
async fn portal_and_admin_sessions_do_not_open_each_others_pages() {
    let node = TestNode::start().await;
    let r = provision(&node, "kunde@example.com").await;
    let c = raw_client();
    let resp = node.login(&c, &r.address, &r.password).await;
    let portal_token = set_cookie_token(&resp, "__Host-sealpost").unwrap();

    let otp = create_admin(&node.node.store, "root", &Actor::cli())
        .await
        .unwrap();
    let resp = c
        .post(node.url("/admin/login"))
        .form(&[
            ("name", "root"),
            ("password", otp.as_str()),
            ("code", ""),
            ("next", "/admin"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let admin_token = set_cookie_token(&resp, "__Host-sealpost-admin").unwrap();
    // Sanity: each token works where it belongs.
    let get = |path: &str, cookie: String| {
        let c = c.clone();
        let url = node.url(path);
        async move {
            let r = c.get(url).header("cookie", cookie).send().await.unwrap();
            (r.status().as_u16(), location(&r))
        }
    };
    let (s, l) = get(
        "/admin/password",
        format!("__Host-sealpost-admin={admin_token}"),
    )
    .await;
    assert_eq!((s, l.as_str()), (200, ""));
    let (s, _) = get("/welcome?next=/", format!("__Host-sealpost={portal_token}")).await;
    assert_eq!(s, 200);

    // A recipient session, under either cookie name, opens no admin page.
    for cookie in [
        format!("__Host-sealpost={portal_token}"),
        format!("__Host-sealpost-admin={portal_token}"),
    ] {
        for path in [
            "/admin",
            "/admin/users",
            "/admin/settings/security",
            "/admin/audit",
            "/admin/password",
            "/admin/addins",
            "/admin/addins/outlook-manifest.xml",
            "/admin/addins/sealpost-thunderbird.xpi",
        ] {
            let (s, l) = get(path, cookie.clone()).await;
            assert_eq!(s, 303, "{path} with {cookie}");
            assert!(l.starts_with("/admin/login"), "{path}: {l}");
        }
        let (s, _) = get("/metrics", cookie.clone()).await;
        assert!(
            s == 401 || s == 403 || s == 404,
            "/metrics with a portal cookie: {s}"
        );
    }
    // An admin session, under either cookie name, is not a logged-in recipient.
    for cookie in [
        format!("__Host-sealpost-admin={admin_token}"),
        format!("__Host-sealpost={admin_token}"),
    ] {
        for path in ["/profile", "/welcome?next=/"] {
            let (s, l) = get(path, cookie.clone()).await;
            assert_eq!(s, 303, "{path} with {cookie}");
            assert!(l.starts_with("/login"), "{path}: {l}");
        }
        let (s, l) = get("/", cookie.clone()).await;
        assert!(
            s == 200 && l.is_empty() || l.starts_with("/login"),
            "home with an admin cookie: {s} {l}"
        );
    }
    node.stop().await;
}
