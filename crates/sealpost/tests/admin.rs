//! The admin UI against a real node: sign-in (with TOTP), CSRF, user management with real
//! mails to the SMTP sink and real portal logins, settings that take effect without restart,
//! and /metrics access.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use sealpost_core::admin::{Actor, create_admin};
use sealpost_core::settings::{Group, REGISTRY};
use sealpost_smtp::outbound::RcptResult;

const SENDER: &str = "advisor@bank.example";

fn flagged(to: &str, subject: &str) -> Vec<u8> {
    crlf(&format!(
        "From: {SENDER}\nTo: {to}\nSubject: {subject}\nMessage-ID: <{}@bank.example>\n\nConfidential text for {to}.\n",
        uuid_like()
    ))
}

fn uuid_like() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// Sends a flagged mail to `to`; returns (carrier, password of the new account if any).
async fn send_flagged(
    node: &TestNode,
    to: &str,
    subject: &str,
) -> (ReceivedMailRef, Option<String>) {
    let before = node.sink.received().len();
    let is_new = node
        .node
        .store
        .account_by_address(to)
        .await
        .unwrap()
        .is_none();
    let results = node.send(SENDER, &[to], &flagged(to, subject)).await;
    assert!(
        results.iter().all(|r| *r == RcptResult::Delivered),
        "{results:?}"
    );
    // A new account also gets a credentials mail.
    let mails = node
        .wait_for_mails(before + if is_new { 2 } else { 1 })
        .await;
    let new: Vec<_> = mails.into_iter().skip(before).collect();
    let carrier = new
        .iter()
        .find(|m| kind_of(m) == "carrier")
        .cloned()
        .expect("carrier");
    let password = new
        .iter()
        .find(|m| kind_of(m) == "credentials")
        .map(credentials_password);
    (carrier, password)
}

type ReceivedMailRef = sealpost_smtp::sink::ReceivedMail;

async fn portal_session(node: &TestNode, address: &str, password: &str) -> reqwest::Client {
    let client = node.client();
    let r = node.login(&client, address, password).await;
    assert_eq!(r.status(), 303, "portal login of {address}");
    complete_first_login(node, &client, password).await;
    client
}

async fn open_status(
    node: &TestNode,
    client: &reqwest::Client,
    carrier: &ReceivedMailRef,
) -> (u16, String) {
    let r = node.post_open(client, &carrier_payload(carrier)).await;
    assert_eq!(r.status(), 303);
    let r = get(node, client, &location(&r)).await;
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

async fn account_id(node: &TestNode, address: &str) -> String {
    node.node
        .store
        .account_by_address(address)
        .await
        .unwrap()
        .expect("account")
        .id
}

async fn action(
    node: &TestNode,
    client: &reqwest::Client,
    csrf: &str,
    id: &str,
    what: &str,
) -> reqwest::Response {
    client
        .post(node.url(&format!("/admin/users/{id}/{what}")))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap()
}

/// Whether `key` is a field of the admin form for `group` (the form posts all its fields).
fn on_form(key: &str, group: Group) -> bool {
    REGISTRY.iter().any(|d| d.key == key && d.group == group)
}

#[tokio::test]
async fn admin_login_csrf_and_session_separation() {
    let node = TestNode::start().await;
    let anonymous = node.client();
    let r = get(&node, &anonymous, "/admin/users").await;
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with("/admin/login?next=/admin/users"));

    let otp = create_admin(&node.node.store, "root", &Actor::cli())
        .await
        .unwrap();
    let r = admin_login(&node, &anonymous, "root", "wrong password", "").await;
    assert_eq!(r.status(), 401);
    let r = admin_login(&node, &anonymous, "nobody", "wrong password", "").await;
    assert_eq!(r.status(), 401, "unknown admin gets the same answer");
    drop(otp);

    let (client, csrf) = admin_session(&node, "alice").await;
    let page = page_text(&node, &client, "/admin").await;
    assert!(page.contains("<svg"), "charts drawn on the server");
    assert!(!page.contains("<script"), "no scripts");

    // CSRF: a wrong token, or a cross-site request with the right one, is refused.
    let id = {
        let (_, password) = send_flagged(&node, "kunde@example.com", "Hi [secure]").await;
        assert!(password.is_some());
        account_id(&node, "kunde@example.com").await
    };
    let r = action(&node, &client, "forged", &id, "disable").await;
    assert_eq!(r.status(), 403);
    let r = client
        .post(node.url(&format!("/admin/users/{id}/disable")))
        .header("sec-fetch-site", "cross-site")
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let status = node
        .node
        .store
        .account_by_id(&id)
        .await
        .unwrap()
        .unwrap()
        .status;
    assert_eq!(
        status,
        sealpost_store::AccountStatus::Active,
        "nothing changed"
    );

    // A portal session is no admin session.
    let (carrier, password) = send_flagged(&node, "second@example.com", "Hi [secure]").await;
    let _ = carrier;
    let portal = portal_session(&node, "second@example.com", &password.unwrap()).await;
    let r = get(&node, &portal, "/admin").await;
    assert_eq!(r.status(), 303);
    assert!(location(&r).starts_with("/admin/login"));

    // Sign-out ends the admin session.
    let r = client
        .post(node.url("/admin/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = get(&node, &client, "/admin").await;
    assert!(location(&r).starts_with("/admin/login"));

    let audit = node.node.store.recent_audit(100).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "admin.login" && e.actor == "admin:alice")
    );
    assert!(audit.iter().any(|e| e.action == "admin.login_failed"));
    node.stop().await;
}

#[tokio::test]
async fn totp_when_required() {
    let node = TestNode::start().await;
    let (client, csrf) = admin_session_without_totp(&node, "root").await;
    // Make TOTP mandatory through the security settings form.
    let mut form: Vec<(String, String)> = node
        .node
        .settings
        .get()
        .to_pairs()
        .into_iter()
        .filter(|(k, _)| on_form(k, Group::Security))
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    form.retain(|(k, _)| k != "security.admin_totp_required");
    form.push(("security.admin_totp_required".into(), "true".into()));
    form.push(("csrf".into(), csrf.clone()));
    let r = client
        .post(node.url("/admin/settings/security"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "saved");
    assert!(node.node.settings.get().admin_totp_required);

    // Without an enrolled factor every page leads to the enrolment.
    let r = get(&node, &client, "/admin/users").await;
    assert_eq!(location(&r), "/admin/totp");
    let page = page_text(&node, &client, "/admin/totp").await;
    let secret = extract_attr(&page, "name=\"secret\" value=\"").unwrap();
    let totp = |s: &str| {
        let bytes = totp_rs::Secret::Encoded(s.to_string()).to_bytes().unwrap();
        totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes)
            .unwrap()
            .generate_current()
            .unwrap()
    };
    let r = client
        .post(node.url("/admin/totp"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("secret", secret.as_str()),
            ("code", "000000x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "wrong code refused");
    let code = totp(&secret);
    let r = client
        .post(node.url("/admin/totp"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("secret", secret.as_str()),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "enrolled");
    let r = get(&node, &client, "/admin/users").await;
    assert_eq!(r.status(), 200);

    // A new sign-in needs the code.
    let fresh = node.client();
    let r = admin_login(&node, &fresh, "root", "root-chosen-password-1", "").await;
    assert_eq!(r.status(), 401, "password alone is not enough");
    let r = admin_login(
        &node,
        &fresh,
        "root",
        "root-chosen-password-1",
        &totp(&secret),
    )
    .await;
    assert_eq!(r.status(), 303);
    let r = get(&node, &fresh, "/admin/users").await;
    assert_eq!(r.status(), 200);
    node.stop().await;
}

#[tokio::test]
async fn user_search_and_paging() {
    let node = TestNode::start().await;
    let store = &node.node.store;
    for i in 0..120 {
        let id = uuid::Uuid::new_v4();
        let (_, _, wrapped) = node.node.keys.new_account_key(id);
        let mut tx = store.begin().await.unwrap();
        store
            .insert_account(
                &mut tx,
                &sealpost_store::NewAccount {
                    id: &id.to_string(),
                    address: &format!("pager{i:03}@example.net"),
                    password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
                    language: None,
                    created_by: None,
                    created_at: 1_700_000_000,
                    valid_until: None,
                    must_change_password: false,
                },
                &wrapped,
            )
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let (client, _) = admin_session(&node, "root").await;
    let page = page_text(&node, &client, "/admin/users?q=PAGER0").await;
    assert!(page.contains("100 accounts"), "pager000..099 match");
    assert!(page.contains("page 1 of 2"));
    assert!(page.contains("pager000@example.net"));
    assert!(!page.contains("pager050@example.net"), "50 per page");
    let next = extract_attr(&page, "class=\"button secondary\" href=\"").unwrap();
    let page2 = page_text(
        &node,
        &client,
        &next.replace("&amp;", "&").replace("&#38;", "&"),
    )
    .await;
    assert!(page2.contains("page 2 of 2"));
    assert!(page2.contains("pager099@example.net"));
    assert!(!page2.contains("pager100@example.net"));
    node.stop().await;
}

#[tokio::test]
async fn reset_deactivate_rotate_and_delete() {
    let node = TestNode::start().await;
    let address = "kunde@example.com";
    let (carrier1, password) = send_flagged(&node, address, "First [secure]").await;
    let first_password = password.unwrap();
    let id = account_id(&node, address).await;
    let (client, csrf) = admin_session(&node, "root").await;

    // Reset: a password-reset mail to the recipient, and the new password logs in.
    let before = node.sink.received().len();
    let r = action(&node, &client, &csrf, &id, "reset-password").await;
    assert_eq!(r.status(), 303);
    let mails = node.wait_for_mails(before + 1).await;
    let reset = &mails[before];
    assert_eq!(kind_of(reset), "password-reset");
    assert_eq!(reset.rcpt_to, vec![address.to_string()]);
    // The reset mails a one-time link: set the new password with it, as the recipient would.
    let new_password = "chosen after the reset 7".to_string();
    set_password_by_reset_link(&node, reset, &new_password).await;
    assert_ne!(new_password, first_password);
    let r = node.login(&node.client(), address, &first_password).await;
    assert_eq!(r.status(), 401, "the old password no longer works");
    let portal = portal_session(&node, address, &new_password).await;
    let current_password = {
        // The first-login page may have kept the password; it is what the portal accepts now.
        new_password.clone()
    };

    // Rotation adds a key version; old envelopes still open, new ones use the new key.
    let r = action(&node, &client, &csrf, &id, "rotate").await;
    assert_eq!(r.status(), 303);
    let versions = node.node.store.key_versions(&id).await.unwrap();
    assert_eq!(versions.len(), 2);
    let page = page_text(&node, &client, &format!("/admin/users/{id}")).await;
    assert!(page.contains("version 2"));
    let (carrier2, none) = send_flagged(&node, address, "Second [secure]").await;
    assert!(none.is_none(), "no new account");
    let payload2 = sealpost_crypto::decode_payload(&carrier_payload(&carrier2)).unwrap();
    assert_eq!(
        sealpost_crypto::read_header(&payload2)
            .unwrap()
            .key_id
            .version,
        2
    );
    assert_eq!(
        open_status(&node, &portal, &carrier1).await.0,
        200,
        "old envelope opens"
    );
    assert_eq!(
        open_status(&node, &portal, &carrier2).await.0,
        200,
        "new envelope opens"
    );

    // Deactivation blocks the portal login (and ends sessions).
    let r = action(&node, &client, &csrf, &id, "disable").await;
    assert_eq!(r.status(), 303);
    let r = node.login(&node.client(), address, &current_password).await;
    assert_eq!(r.status(), 401);
    let r = action(&node, &client, &csrf, &id, "enable").await;
    assert_eq!(r.status(), 303);
    let r = node.login(&node.client(), address, &current_password).await;
    assert_eq!(r.status(), 303, "reactivated");

    // Delete: the confirmation says what happens; afterwards old envelopes are key-deleted.
    let page = page_text(&node, &client, &format!("/admin/users/{id}/delete")).await;
    assert!(page.contains("becomes unreadable"));
    let r = client
        .post(node.url(&format!("/admin/users/{id}/delete")))
        .form(&[("csrf", csrf.as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(node.node.store.account_by_id(&id).await.unwrap().is_none());
    let (_, password) = send_flagged(&node, address, "After deletion [secure]").await;
    let reborn = portal_session(&node, address, &password.expect("a new account")).await;
    let (status, page) = open_status(&node, &reborn, &carrier1).await;
    assert_eq!(status, 410, "key deleted: {page}");
    let audit = node.node.store.recent_audit(100).await.unwrap();
    for a in [
        "account.password_reset",
        "account.key_rotated",
        "account.disabled",
        "account.deleted",
    ] {
        assert!(
            audit
                .iter()
                .any(|e| e.action == a && e.actor == "admin:root"),
            "{a} audited"
        );
    }
    assert!(
        !audit.iter().any(|e| e
            .detail
            .as_deref()
            .unwrap_or_default()
            .contains(&new_password)),
        "no password in the audit log"
    );
    node.stop().await;
}

#[tokio::test]
async fn settings_change_applies_to_next_mail_and_metrics_need_access() {
    let node = TestNode::start().await;
    let (client, csrf) = admin_session(&node, "root").await;
    let mut form: Vec<(String, String)> = node
        .node
        .settings
        .get()
        .to_pairs()
        .into_iter()
        .filter(|(k, _)| on_form(k, Group::Mail))
        .map(|(k, v)| (k.to_string(), v))
        .filter(|(_, v)| v != "false")
        .collect();
    form.retain(|(k, _)| k != "policy.trigger_keywords");
    form.push(("policy.trigger_keywords".into(), "[vertraulich]".into()));
    form.push(("csrf".into(), csrf.clone()));
    let r = client
        .post(node.url("/admin/settings/mail"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "saved");

    // The next SMTP mail follows the new keyword: the old one no longer triggers.
    let before = node.sink.received().len();
    node.send(
        SENDER,
        &["a@example.com"],
        &flagged("a@example.com", "Old [secure]"),
    )
    .await;
    let mails = node.wait_for_mails(before + 1).await;
    assert_eq!(kind_of(&mails[before]), "", "passed through unchanged");
    let (carrier, _) = send_flagged(&node, "b@example.com", "New [vertraulich]").await;
    assert_eq!(kind_of(&carrier), "carrier");

    // A bad value is refused with a message and nothing stored.
    let r = client
        .post(node.url("/admin/settings/branding"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("branding.org_name", "Bank"),
            ("branding.accent_color", "red;}"),
            ("i18n.default_language", "en"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(node.node.settings.get().accent_color, "#1f5fa8");

    // A valid branding change shows in the very next secure.htm.
    let r = client
        .post(node.url("/admin/settings/branding"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("branding.org_name", "Example Private Bank"),
            ("branding.accent_color", "#aa3300"),
            ("i18n.default_language", "en"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_redirection() || r.status().is_success(),
        "{}",
        r.status()
    );
    let (carrier, _) = send_flagged(&node, "c@example.com", "Branded [vertraulich]").await;
    let parsed = mail_parser::MessageParser::default()
        .parse(&carrier.data)
        .unwrap();
    let secure_htm = String::from_utf8_lossy(parsed.attachment(0).unwrap().contents()).to_string();
    assert!(
        secure_htm.contains("Example Private Bank"),
        "org name in secure.htm"
    );
    assert!(
        secure_htm.contains("#aa3300"),
        "accent colour in secure.htm"
    );

    // /metrics: refused without a token, open with the token made in the network settings.
    let r = node
        .client()
        .get(node.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let page = client
        .post(node.url("/admin/settings/network/metrics-token"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token_marker = "id=\"metrics-token\">";
    let start = page.find(token_marker).unwrap() + token_marker.len();
    let token = page[start..start + page[start..].find('<').unwrap()].to_string();
    let r = node
        .client()
        .get(node.url("/metrics"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // One failed portal login is counted for the dashboard and Prometheus.
    let failed = node
        .login(&node.client(), "nobody@example.com", "wrong-password")
        .await;
    assert_eq!(failed.status(), 401);
    let r = node
        .client()
        .get(node.url("/metrics"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    // Two flagged mails went out above (the new keyword, then the branded one).
    assert!(
        text.contains("sealpost_mails_encrypted{period=\"today\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("sealpost_mails_passed{period=\"today\"} 1"),
        "{text}"
    );
    assert!(text.contains("sealpost_node_heartbeat_age_seconds{node="));
    assert!(
        text.contains("sealpost_portal_login_failures{period=\"today\"} 1"),
        "{text}"
    );
    assert!(text.contains("sealpost_delivery_attempts_total{result=\"delivered\"}"));
    assert!(!text.contains("sealpost_http_request_duration_seconds_count 0\n"));

    // Admin networks: the loopback network may scrape without a token; outside them the
    // admin UI does not exist.
    node.node
        .store
        .set_setting(
            "admin.allowed_networks",
            "127.0.0.0/8",
            sealpost_store::unix_now() + 5,
        )
        .await
        .unwrap();
    // Settings are read from the node's snapshot, as after an admin's change.
    node.node.settings.reload(&node.node.store).await.unwrap();
    let r = node
        .client()
        .get(node.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    node.node
        .store
        .set_setting(
            "admin.allowed_networks",
            "10.0.0.0/8",
            sealpost_store::unix_now() + 6,
        )
        .await
        .unwrap();
    // Settings are read from the node's snapshot, as after an admin's change.
    node.node.settings.reload(&node.node.store).await.unwrap();
    let r = node
        .client()
        .get(node.url("/admin/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = get(&node, &client, "/admin").await;
    assert_eq!(r.status(), 404, "also with a session");
    node.stop().await;
}

#[tokio::test]
async fn legacy_host_names_redirect_to_the_public_url() {
    let node = TestNode::start().await;
    node.node
        .store
        .set_setting(
            "network.legacy_hosts",
            "old-secure.bank.example",
            sealpost_store::unix_now() + 5,
        )
        .await
        .unwrap();
    node.node.settings.reload(&node.node.store).await.unwrap();
    let r = node
        .client()
        .post(node.url("/open"))
        .header("host", "old-secure.bank.example")
        .form(&[("payload", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308, "method and body kept");
    assert_eq!(location(&r), format!("{}/open", node.base));
    let r = node
        .client()
        .get(node.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the public name is served");
    node.stop().await;
}

/// The mail settings page edits per-domain overrides: `delivery.profile@datafile.example`
/// set there changes that domain's next carrier (message.sealpost) and no other domain's;
/// a bad value or a key that takes no override is refused and nothing is stored.
#[tokio::test]
async fn per_domain_overrides_are_edited_in_the_admin_ui() {
    let node = TestNode::start().await;
    let (client, csrf) = admin_session(&node, "root").await;
    let page = client
        .get(node.url("/admin/settings/mail"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Per-domain overrides"));
    assert!(page.contains("<option value=\"delivery.profile\">"));
    assert!(page.contains("<option value=\"mail.keep_subject\">"));
    let set = |key: &'static str, domain: &'static str, value: &'static str| {
        let client = client.clone();
        let csrf = csrf.clone();
        let url = node.url("/admin/settings/mail/domain");
        async move {
            client
                .post(url)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("key", key),
                    ("domain", domain),
                    ("value", value),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        set("delivery.profile", "datafile.example", "htm").await,
        400
    );
    assert_eq!(
        set("policy.trigger_keywords", "datafile.example", "[x]").await,
        400
    );
    assert_eq!(set("delivery.profile", "", "datafile").await, 400);
    assert!(node.node.settings.get().domain_overrides.is_empty());
    assert_eq!(
        set("delivery.profile", "datafile.example", "datafile").await,
        303
    );
    assert_eq!(
        node.node
            .store
            .setting_value("delivery.profile@datafile.example")
            .await
            .unwrap()
            .as_deref(),
        Some("datafile")
    );
    let page = client
        .get(node.url("/admin/settings/mail"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<code>delivery.profile@datafile.example</code></td><td>datafile"));

    let attachment_name = |mail: &ReceivedMailRef| {
        use mail_parser::MimeHeaders;
        let msg = mail_parser::MessageParser::default()
            .parse(&mail.data)
            .unwrap();
        msg.attachments()
            .map(|a| a.attachment_name().unwrap_or_default().to_string())
            .collect::<Vec<_>>()
    };
    let (carrier, _) = send_flagged(&node, "r@datafile.example", "Data [secure]").await;
    assert_eq!(attachment_name(&carrier), vec!["message.sealpost"]);
    let (carrier, _) = send_flagged(&node, "r@other.example", "Page [secure]").await;
    assert_eq!(attachment_name(&carrier), vec!["secure.htm"]);
    node.stop().await;
}

#[tokio::test]
async fn messages_search_timeline_and_signed_report() {
    let node = TestNode::start().await;
    let (carrier, password) = send_flagged(&node, "reader@example.com", "Offer [secure]").await;
    send_flagged(&node, "other@example.org", "Other [secure]").await;
    // The ledger id (the carrier's X-Sealpost-Message header, once the carrier renders it).
    let id = node
        .node
        .store
        .search_ledger(&sealpost_store::LedgerQuery {
            recipient: Some("reader@example.com".into()),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .remove(0)
        .envelope_id;
    let reader = portal_session(&node, "reader@example.com", &password.unwrap()).await;
    assert_eq!(open_status(&node, &reader, &carrier).await.0, 200);

    // The portal session is no admin session.
    let r = get(&node, &reader, "/admin/messages").await;
    assert_ne!(r.status(), 200);

    let (admin, _) = admin_session(&node, "root").await;
    let page = page_text(&node, &admin, "/admin/messages?recipient=READER@").await;
    assert!(page.contains(&id), "{page}");
    assert!(!page.contains("other@example.org"));
    let page = page_text(
        &node,
        &admin,
        "/admin/messages?sender=advisor&until=1970-01-01",
    )
    .await;
    assert!(!page.contains(&id), "sealed after the range");
    let page = page_text(&node, &admin, "/admin/messages?from=not-a-date").await;
    assert!(page.contains("is not a date"));
    let page = page_text(&node, &admin, &format!("/admin/messages?id={}", &id[..8])).await;
    assert!(page.contains(&id));

    let public = page
        .split("<code id=\"report-key\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap()
        .to_string();
    let timeline = page_text(&node, &admin, &format!("/admin/messages/{id}")).await;
    assert!(
        timeline.contains("sealed") && timeline.contains("first-opened"),
        "{timeline}"
    );
    assert!(timeline.contains("reader@example.com"));

    let r = get(&node, &admin, &format!("/admin/messages/{id}/report.json")).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()[reqwest::header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let json = r.bytes().await.unwrap();
    let expected = sealpost_crypto::report::ReportPublicKey::parse(&public).unwrap();
    let verified = sealpost_crypto::report::verify_report(&json, Some(&expected)).unwrap();
    assert_eq!(verified.document.message_id, id);
    assert_eq!(
        verified.document.recipients[0].address,
        "reader@example.com"
    );
    assert_eq!(
        verified.document.subject_sha256.as_deref(),
        Some(sealpost_crypto::report::subject_sha256("Offer [secure]").as_str())
    );
    let html = page_text(&node, &admin, &format!("/admin/messages/{id}/report.html")).await;
    assert!(html.contains("Delivery report") && html.contains(&id));

    for bad in [
        "/admin/messages/zz",
        "/admin/messages/ffff",
        "/admin/messages/ffff/report.json",
    ] {
        assert_eq!(get(&node, &admin, bad).await.status(), 404, "{bad}");
    }
    let r = get(&node, &admin, &format!("/admin/messages/{id}/secrets.txt")).await;
    assert_eq!(r.status(), 404);
    node.stop().await;
}

/// Issue 16: the admin's message page lists every event of a real message (sealed, handed
/// over, opened, replied, revoked, secret deleted) and revokes it for one recipient; the
/// recipient's page names "the administrator", the audit log the admin's account, and the
/// dashboard counts the revocation.
#[tokio::test]
async fn the_message_page_shows_the_whole_timeline_and_revokes_one_recipient() {
    let node = TestNode::start().await;
    let (first, second) = ("eins@kunde.example", "zwei@kunde.example");
    let mail = crlf(&format!(
        "From: {SENDER}\nTo: {first}, {second}\nSubject: Both [secure]\nMessage-ID: <both-{}@bank.example>\n\nFor both of you.\n",
        uuid_like()
    ));
    let results = node.send(SENDER, &[first, second], &mail).await;
    assert!(
        results.iter().all(|r| *r == RcptResult::Delivered),
        "{results:?}"
    );
    let mails = node.wait_for_mails(4).await;
    let carrier_of = |to: &str| {
        mails
            .iter()
            .find(|m| kind_of(m) == "carrier" && m.rcpt_to == vec![to.to_string()])
            .cloned()
            .unwrap()
    };
    let password_of = |to: &str| {
        mails
            .iter()
            .filter(|m| kind_of(m) == "credentials")
            .find(|m| String::from_utf8_lossy(&m.data).contains(to))
            .map(credentials_password)
            .unwrap()
    };
    let carrier = carrier_of(first);
    let envelope = sealpost_crypto::decode_payload(&carrier_payload(&carrier)).unwrap();
    let copy_id = sealpost_crypto::read_header(&envelope)
        .unwrap()
        .message_id_hex();
    let entry = node
        .node
        .store
        .message_entry(&copy_id)
        .await
        .unwrap()
        .unwrap();
    let message_id = entry.message_id.clone();

    // The first recipient opens and replies.
    let reader = portal_session(&node, first, &password_of(first)).await;
    let r = node.post_open(&reader, &carrier_payload(&carrier)).await;
    let open = location(&r);
    let page = page_text(&node, &reader, &open).await;
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf_of(&page))
        .text("body", "Thank you.".to_string());
    let r = reader
        .post(node.url(&format!("{open}/reply")))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    // The carrier's hand-over is recorded by the delivery worker.
    for _ in 0..100 {
        let events = node
            .node
            .store
            .message_events(std::slice::from_ref(&copy_id))
            .await
            .unwrap();
        if events
            .iter()
            .any(|e| e.kind == sealpost_store::MessageEventKind::HandedOver)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    let (admin, _) = admin_session(&node, "root").await;
    let page = page_text(&node, &admin, &format!("/admin/messages/{message_id}")).await;
    assert!(page.contains(first) && page.contains(second), "{page}");
    let csrf = csrf_of(&page);
    // Revoking for someone the message was not sent to is refused and changes nothing.
    let r = admin
        .post(node.url(&format!("/admin/messages/{message_id}/revoke")))
        .form(&[
            ("csrf", csrf.as_str()),
            ("recipient", "dritte@kunde.example"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("not sent to dritte@kunde.example")
    );
    // A forged form is refused.
    let r = admin
        .post(node.url(&format!("/admin/messages/{message_id}/revoke")))
        .form(&[("csrf", "forged"), ("recipient", first)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        node.node
            .store
            .message_entry(&copy_id)
            .await
            .unwrap()
            .unwrap()
            .wrapped_secret
            .is_some()
    );

    let r = admin
        .post(node.url(&format!("/admin/messages/{message_id}/revoke")))
        .form(&[
            ("csrf", csrf.as_str()),
            ("recipient", first),
            ("reason", "wrong customer"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        location(&r),
        format!("/admin/messages/{message_id}?revoked=1")
    );
    let page = page_text(&node, &admin, &location(&r)).await;
    for kind in [
        "sealed",
        "handed-over",
        "first-opened",
        "replied",
        "revoked",
        "secret-deleted",
    ] {
        assert!(
            page.contains(&format!("<td>{kind}</td>")),
            "{kind} missing:\n{page}"
        );
    }
    assert!(page.contains("revoked by the administrator"), "{page}");
    // The second copy is untouched and can still be revoked.
    assert!(
        page.contains(&format!("<option value=\"{second}\">")),
        "{page}"
    );
    let row = node
        .node
        .store
        .message_entry(&copy_id)
        .await
        .unwrap()
        .unwrap();
    assert!(row.wrapped_secret.is_none());
    let others = node.node.store.message_entries(&message_id).await.unwrap();
    assert!(
        others
            .iter()
            .any(|e| e.recipient == second && e.wrapped_secret.is_some())
    );

    // The recipient sees "the administrator", the private reason stays private; the audit log
    // names the admin.
    let r = node.post_open(&reader, &carrier_payload(&carrier)).await;
    let r = get(&node, &reader, &location(&r)).await;
    assert_eq!(r.status(), 410);
    let text = r.text().await.unwrap();
    assert!(text.contains("revoked by the administrator"), "{text}");
    assert!(!text.contains("wrong customer"));
    let audit = node.node.store.recent_audit(50).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.action == "message.revoked" && a.actor == "admin:root"),
        "{audit:?}"
    );

    // The signed report covers both recipients and every event.
    let json = get(
        &node,
        &admin,
        &format!("/admin/messages/{message_id}/report.json"),
    )
    .await
    .bytes()
    .await
    .unwrap();
    let verified = sealpost_crypto::report::verify_report(&json, None).unwrap();
    let addresses: Vec<&str> = verified
        .document
        .recipients
        .iter()
        .map(|r| r.address.as_str())
        .collect();
    assert_eq!(addresses, vec![first, second]);
    let kinds: Vec<&str> = verified.document.recipients[0]
        .events
        .iter()
        .map(|e| e.kind.as_str())
        .collect();
    for kind in [
        "sealed",
        "first-opened",
        "replied",
        "revoked",
        "secret-deleted",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }

    // The dashboard counts it.
    let dash = page_text(&node, &admin, "/admin").await;
    let row = dash
        .split("Messages revoked (copies)")
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap()
        .to_string();
    assert!(row.contains("<td class=\"num\">1</td>"), "{row}");
    node.stop().await;
}

/// The sender's buttons (issue 17): the admin UI hands out the Outlook manifest and the
/// Thunderbird extension filled with this installation's settings; the files Outlook loads are
/// public, with a CSP that allows Office.js on those routes only.
mod addins {
    use super::*;
    use std::io::Read;

    const ORG: &str = "Bank & Partner <AG>";

    async fn node_with_org() -> TestNode {
        let node = TestNode::start().await;
        node.node
            .store
            .set_setting("branding.org_name", ORG, sealpost_store::unix_now() + 5)
            .await
            .unwrap();
        node.node.settings.reload(&node.node.store).await.unwrap();
        node
    }

    fn no_placeholder(text: &str, what: &str) {
        assert!(
            !text.contains("__SEALPOST_"),
            "{what} has a placeholder left"
        );
    }

    #[tokio::test]
    async fn the_admin_downloads_filled_add_ins_and_outlook_loads_its_files_without_a_session() {
        let node = node_with_org().await;

        // No session, and a portal session, get the admin sign-in instead.
        let anonymous = node.client();
        let (_, password) = send_flagged(&node, "kunde@example.com", "Hi [secure]").await;
        let portal = portal_session(&node, "kunde@example.com", &password.unwrap()).await;
        for path in [
            "/admin/addins",
            "/admin/addins/outlook-manifest.xml",
            "/admin/addins/sealpost-thunderbird.xpi",
        ] {
            for client in [&anonymous, &portal] {
                let r = get(&node, client, path).await;
                assert_eq!(r.status(), 303, "{path}");
                assert!(location(&r).starts_with("/admin/login"), "{path}");
            }
        }

        let (admin, _) = admin_session(&node, "alice").await;
        let page = page_text(&node, &admin, "/admin/addins").await;
        assert!(page.contains("href=\"/admin/addins/outlook-manifest.xml\""));
        assert!(page.contains("href=\"/admin/addins/sealpost-thunderbird.xpi\""));
        assert!(page.contains("ExtensionSettings"));
        let nav = page_text(&node, &admin, "/admin").await;
        assert!(nav.contains("href=\"/admin/addins\""), "linked in the nav");

        // The manifest: filled in, escaped, well-formed, the same id on every download.
        let r = get(&node, &admin, "/admin/addins/outlook-manifest.xml").await;
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/xml")
        );
        assert!(
            r.headers()["content-disposition"]
                .to_str()
                .unwrap()
                .starts_with("attachment")
        );
        let xml = r.text().await.unwrap();
        no_placeholder(&xml, "the manifest");
        let doc = roxmltree::Document::parse(&xml).expect("the manifest is XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "OfficeApp");
        let text_of = |name: &str| {
            root.children()
                .find(|n| n.tag_name().name() == name)
                .and_then(|n| n.text())
                .map(str::to_string)
        };
        assert_eq!(text_of("ProviderName").as_deref(), Some(ORG));
        let id = text_of("Id").unwrap();
        assert_eq!(uuid_version(&id), Some('5'), "{id}");
        let commands = format!("{}/addins/outlook/commands.html", node.base);
        assert!(
            doc.descendants()
                .any(|n| n.attribute("DefaultValue") == Some(commands.as_str())),
            "the function file is on the public URL"
        );
        let again = page_text(&node, &admin, "/admin/addins/outlook-manifest.xml").await;
        assert_eq!(again, xml, "stable: the same id on every download");

        // The .xpi: a zip with manifest.json (gecko id) and the background script.
        let r = get(&node, &admin, "/admin/addins/sealpost-thunderbird.xpi").await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/x-xpinstall");
        let bytes = r.bytes().await.unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).unwrap();
        let mut entry = |name: &str| {
            let mut text = String::new();
            zip.by_name(name)
                .unwrap_or_else(|_| panic!("{name} in the xpi"))
                .read_to_string(&mut text)
                .unwrap();
            text
        };
        let manifest = entry("manifest.json");
        let background = entry("background.js");
        no_placeholder(&manifest, "manifest.json");
        no_placeholder(&background, "background.js");
        assert!(manifest.contains("\"gecko\""));
        let gecko_id = extract_attr(&manifest, "\"id\": \"").unwrap();
        assert!(
            gecko_id.starts_with('{') && gecko_id.ends_with('}'),
            "{gecko_id}"
        );
        assert!(page.contains(&gecko_id), "the page names the extension id");
        assert!(manifest.contains("\"compose_action\""));
        assert!(manifest.contains("Bank \\u0026 Partner \\u003cAG\\u003e"));
        assert!(background.contains("var HEADER = \"X-Sealpost-Encrypt\";"));
        assert!(zip.by_name("icon-16.png").is_ok());

        // Outlook's files are public: no session at all.
        let r = get(&node, &anonymous, "/addins/outlook/commands.js").await;
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/javascript")
        );
        let js = r.text().await.unwrap();
        no_placeholder(&js, "commands.js");
        assert!(js.contains("var HEADER = \"X-Sealpost-Encrypt\";"));
        assert!(js.contains("internetHeaders"));
        let r = get(&node, &anonymous, "/addins/outlook/commands.html").await;
        assert_eq!(r.status(), 200);
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self' https://appsforoffice.microsoft.com"));
        assert!(csp.contains("frame-ancestors https:"));
        assert!(
            r.headers().get("x-frame-options").is_none(),
            "frameable by Outlook"
        );
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        let r = get(&node, &anonymous, "/addins/outlook/icon-80.png").await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "image/png");
        let r = get(&node, &anonymous, "/addins/outlook/manifest.xml").await;
        assert_eq!(r.status(), 404, "only the hosted files are public");

        // The exception is scoped to those routes: every other page keeps the strict policy.
        for path in [
            "/login",
            "/admin/addins",
            "/admin/addins/outlook-manifest.xml",
        ] {
            let client = if path.starts_with("/admin") {
                &admin
            } else {
                &anonymous
            };
            let r = get(&node, client, path).await;
            let csp = r.headers()["content-security-policy"].to_str().unwrap();
            assert!(!csp.contains("appsforoffice"), "{path}: {csp}");
            assert!(csp.contains("frame-ancestors 'none'"), "{path}");
            assert_eq!(r.headers()["x-frame-options"], "DENY", "{path}");
        }
        node.stop().await;
    }

    /// The version digit of a UUID's text form, when it is one.
    fn uuid_version(text: &str) -> Option<char> {
        let groups: Vec<&str> = text.split('-').collect();
        let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        (lens == [8, 4, 4, 4, 12] && text.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
            .then(|| groups[2].chars().next())
            .flatten()
    }
}
