//! Test kit: boots a whole Sealpost node in-process on free ports, with a real SMTP sink as
//! its next hop, and offers the small helpers every end-to-end test needs.
#![allow(dead_code)]
// Test helpers: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use mail_parser::MimeHeaders;
use sealpost::config::{Config, TlsSetting};
use sealpost::node::{RunningNode, start};
use sealpost_smtp::next_hop::NextHop;
use sealpost_smtp::outbound::{ClientConfig, OutboundMessage, RcptResult, deliver};
use sealpost_smtp::sink::{ReceivedMail, TestSink};

pub struct TestNode {
    pub node: RunningNode,
    pub sink: TestSink,
    pub smtp: SocketAddr,
    pub base: String,
    pub config: Config,
    pub dir: tempfile::TempDir,
}

impl TestNode {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a node on SQLite in a temp dir; `adjust` may change the config first.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let sink = TestSink::start().await.expect("sink");
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        config.smtp.listen = "127.0.0.1:0".into();
        config.web.listen = "127.0.0.1:0".into();
        config.web.tls = TlsSetting::Mode("self-signed".into());
        // The test node's one listener is also its admin listener (reachable only from this
        // machine), so the admin UI answers there without admin networks. A public listener
        // would answer nobody until `admin.allowed_networks` is set.
        config.web.listen_is_internal = true;
        config.delivery.relay = format!("smtp://{}", sink.addr);
        config.delivery.retry_base_secs = 1;
        config.delivery.retry_max_secs = 2;
        config.policy.internal_domains = vec!["bank.example".into()];
        config.hostname = "gw.test".into();
        adjust(&mut config);
        let node = start(&config).await.expect("node starts");
        let smtp = node.smtp_addr.expect("smtp role");
        let base = format!(
            "https://127.0.0.1:{}",
            node.web_addr.expect("web role").port()
        );
        // The public URL is baked into secure.htm: point it at the port we actually got.
        node.store
            .set_setting("web.public_url", &base, sealpost_store::unix_now() + 1)
            .await
            .expect("setting");

        node.settings.reload(&node.store).await.expect("reload");
        TestNode {
            node,
            sink,
            smtp,
            base,
            config,
            dir,
        }
    }

    /// Sends one message over a real SMTP session; one result per recipient.
    pub async fn send(&self, from: &str, rcpts: &[&str], data: &[u8]) -> Vec<RcptResult> {
        let rcpts: Vec<String> = rcpts.iter().map(|s| s.to_string()).collect();
        deliver(
            &NextHop::Smtp {
                host: "127.0.0.1".into(),
                port: self.smtp.port(),
            },
            &ClientConfig {
                opportunistic_tls: false,
                ..ClientConfig::default()
            },
            &OutboundMessage {
                mail_from: from,
                rcpt_to: &rcpts,
                data,
            },
        )
        .await
    }

    pub async fn wait_for_mails(&self, n: usize) -> Vec<ReceivedMail> {
        let mails = self.sink.wait_for(n, Duration::from_secs(20)).await;
        assert!(
            mails.len() >= n,
            "expected {n} mails at the sink, got {}",
            mails.len()
        );
        mails
    }

    /// An HTTPS client with its own cookie jar that does not follow redirects.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .danger_accept_invalid_certs(true)
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Logs in; returns the response to the login POST.
    pub async fn login(
        &self,
        client: &reqwest::Client,
        address: &str,
        password: &str,
    ) -> reqwest::Response {
        client
            .post(self.url("/login"))
            .form(&[("address", address), ("password", password), ("next", "/")])
            .send()
            .await
            .expect("login request")
    }

    /// Posts a payload to /open as secure.htm does and returns the Location of the 303.
    pub async fn post_open(&self, client: &reqwest::Client, payload: &str) -> reqwest::Response {
        client
            .post(self.url("/open"))
            .header("origin", "null")
            .form(&[("payload", payload)])
            .send()
            .await
            .expect("open request")
    }

    pub async fn stop(self) {
        self.node.shutdown().await;
    }
}

pub fn kind_of(mail: &ReceivedMail) -> String {
    header_value(&mail.data, "X-Sealpost-Kind").unwrap_or_default()
}

pub fn header_value(data: &[u8], name: &str) -> Option<String> {
    let msg = mail_parser::MessageParser::default().parse(data)?;
    msg.header_raw(name).map(|v| v.trim().to_string())
}

/// The payload inside a carrier mail's secure.htm attachment.
pub fn carrier_payload(mail: &ReceivedMail) -> String {
    let msg = mail_parser::MessageParser::default()
        .parse(&mail.data)
        .expect("carrier parses");
    let attachments: Vec<_> = msg.attachments().collect();
    assert_eq!(attachments.len(), 1, "carrier has exactly one attachment");
    assert_eq!(attachments[0].attachment_name(), Some("secure.htm"));
    sealpost_mime::securehtm::extract_payload(attachments[0].contents())
        .expect("payload in secure.htm")
}

/// The password line of a credentials mail ("Password: …" or "Passwort: …").
pub fn credentials_password(mail: &ReceivedMail) -> String {
    let msg = mail_parser::MessageParser::default()
        .parse(&mail.data)
        .expect("credentials mail parses");
    let text = msg.body_text(0).expect("text body").into_owned();
    text.lines()
        .find_map(|l| {
            l.strip_prefix("Password: ")
                .or_else(|| l.strip_prefix("Passwort: "))
                .map(|p| p.trim().to_string())
        })
        .expect("password line")
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Normalises line ends: SMTP transports CRLF, files may hold LF.
pub fn crlf(s: &str) -> Vec<u8> {
    s.replace("\r\n", "\n").replace('\n', "\r\n").into_bytes()
}

/// Completes the forced first-login page for tests that are not about it: keeps `password`
/// (a generated one meets the policy) and sets a secret question. Does nothing when the
/// account has no pending change.
pub async fn complete_first_login(node: &TestNode, client: &reqwest::Client, password: &str) {
    let response = client
        .get(node.url("/welcome?next=/"))
        .send()
        .await
        .expect("welcome page");
    if response.status() != 200 {
        return;
    }
    let page = response.text().await.expect("welcome text");
    let marker = "name=\"csrf\" value=\"";
    let Some(start) = page.find(marker).map(|i| i + marker.len()) else {
        return;
    };
    let end = page[start..].find('"').expect("csrf value") + start;
    let csrf = page[start..end].to_string();
    let response = client
        .post(node.url("/welcome"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("next", "/"),
            ("password", password),
            ("password2", password),
            ("question", "pet"),
            ("answer", "sealpost"),
        ])
        .send()
        .await
        .expect("welcome submit");
    assert_eq!(response.status(), 303, "first login completed");
}

/// The value of the first hidden `csrf` field of a page.
/// GETs `path` on `node` with `client` (its cookies, its redirect policy).
pub async fn get(node: &TestNode, client: &reqwest::Client, path: &str) -> reqwest::Response {
    client.get(node.url(path)).send().await.expect("get")
}

/// GETs `path` and returns the body as text, whatever the status.
pub async fn page_text(node: &TestNode, client: &reqwest::Client, path: &str) -> String {
    get(node, client, path)
        .await
        .text()
        .await
        .expect("page text")
}

pub fn csrf_of(page: &str) -> String {
    extract_attr(page, "name=\"csrf\" value=\"").expect("csrf field")
}

pub fn extract_attr(page: &str, marker: &str) -> Option<String> {
    let start = page.find(marker)? + marker.len();
    let end = page[start..].find('"')? + start;
    Some(page[start..end].to_string())
}

/// An admin `name` signed in with its one-time password replaced and (TOTP being mandatory by
/// default) a second factor enrolled; returns client and CSRF.
pub async fn admin_session(node: &TestNode, name: &str) -> (reqwest::Client, String) {
    let (client, _) = admin_session_with_password(node, name).await;
    let r = client.get(node.url("/admin")).send().await.unwrap();
    if r.status() == 303 && location(&r) == "/admin/totp" {
        let page = page_text(node, &client, "/admin/totp").await;
        let secret = extract_attr(&page, "name=\"secret\" value=\"").unwrap();
        let r = client
            .post(node.url("/admin/totp"))
            .form(&[
                ("csrf", csrf_of(&page).as_str()),
                ("secret", secret.as_str()),
                ("code", totp_code(&secret).as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "TOTP enrolled");
    }
    let r = client.get(node.url("/admin")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    (client, csrf_of(&page))
}

/// The current code of a base32 TOTP secret, computed as an authenticator app does.
pub fn totp_code(secret: &str) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_string())
        .to_bytes()
        .unwrap();
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes)
        .unwrap()
        .generate_current()
        .unwrap()
}

/// An admin signed in with its one-time password replaced, before any second factor: with
/// TOTP mandatory the next page is the enrolment. Returns client and the new password.
pub async fn admin_session_with_password(node: &TestNode, name: &str) -> (reqwest::Client, String) {
    let otp = sealpost_core::admin::create_admin(
        &node.node.store,
        name,
        &sealpost_core::admin::Actor::cli(),
    )
    .await
    .unwrap();
    let client = node.client();
    let r = admin_login(node, &client, name, &otp, "").await;
    assert_eq!(r.status(), 303, "admin sign-in");
    assert_eq!(location(&r), "/admin");
    // The one-time password must be replaced before anything else.
    let r = client.get(node.url("/admin")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/admin/password");
    let page = page_text(node, &client, "/admin/password").await;
    let csrf = csrf_of(&page);
    let new_password = format!("{name}-chosen-password-1");
    let r = client
        .post(node.url("/admin/password"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("current", otp.as_str()),
            ("new_password", new_password.as_str()),
            ("repeat", new_password.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "password changed");
    (client, new_password)
}

/// An admin session as before TOTP became mandatory: the requirement is switched off for the
/// node first (for tests of switching it on).
pub async fn admin_session_without_totp(node: &TestNode, name: &str) -> (reqwest::Client, String) {
    node.node
        .store
        .set_setting(
            "security.admin_totp_required",
            "false",
            sealpost_store::unix_now() + 1,
        )
        .await
        .unwrap();
    node.node.settings.reload(&node.node.store).await.unwrap();
    let (client, _) = admin_session_with_password(node, name).await;
    let r = client.get(node.url("/admin")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    (client, csrf_of(&page))
}

pub async fn admin_login(
    node: &TestNode,
    client: &reqwest::Client,
    name: &str,
    password: &str,
    code: &str,
) -> reqwest::Response {
    client
        .post(node.url("/admin/login"))
        .form(&[
            ("name", name),
            ("password", password),
            ("code", code),
            ("next", "/admin"),
        ])
        .send()
        .await
        .unwrap()
}

/// The text body of a mail.
pub fn mail_text(mail: &ReceivedMail) -> String {
    let msg = mail_parser::MessageParser::default()
        .parse(&mail.data)
        .expect("mail parses");
    msg.body_text(0).expect("text body").into_owned()
}

/// Waits up to 20 s for a mail of `kind` to `to` among the mails after the first `skip`.
pub async fn wait_for_kind(node: &TestNode, kind: &str, to: &str, skip: usize) -> ReceivedMail {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let found = node
            .sink
            .received()
            .into_iter()
            .skip(skip)
            .find(|m| kind_of(m) == kind && m.rcpt_to.iter().any(|r| r == to));
        if let Some(m) = found {
            return m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {kind} mail to {to} arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The one-time link of an administrator's reset mail (the portal path, `/reset/…`).
pub fn reset_link_path(mail: &ReceivedMail) -> String {
    let text = mail_text(mail);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.contains("/reset/"))
        .expect("a reset link in the mail");
    line[line.find("/reset/").unwrap()..].to_string()
}

/// Follows the one-time link of an administrator's reset mail and sets `password` with it,
/// then waits for the notice that follows (so later mail counts are not disturbed by it).
pub async fn set_password_by_reset_link(node: &TestNode, mail: &ReceivedMail, password: &str) {
    let path = reset_link_path(mail);
    let client = node.client();
    let page = page_text(node, &client, &path).await;
    let before = node.sink.received().len();
    let response = client
        .post(node.url(&path))
        .form(&[
            ("csrf", csrf_of(&page).as_str()),
            ("password", password),
            ("password2", password),
        ])
        .send()
        .await
        .expect("reset link form");
    assert_eq!(response.status(), 200, "password set with the link");
    let to = mail.rcpt_to.first().expect("a recipient").clone();
    wait_for_kind(node, "notice", &to, before).await;
}
