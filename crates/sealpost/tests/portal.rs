//! The recipient's portal through a real node: first login, forgotten password (including the
//! enumeration and lockout checks), profile, language, and the secure reply to the SMTP sink.
#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test

mod common;
#[path = "portal/link.rs"]
mod link;

use std::time::{Duration, Instant};

use common::*;
use sealpost_smtp::outbound::RcptResult;

const ADVISOR: &str = "advisor@bank.example";
const NEW_PASSWORD: &str = "blue tram 47 over rivers";

fn original_mail(to: &str, subject: &str, body: &str) -> Vec<u8> {
    crlf(&format!(
        "From: Anna Advisor <{ADVISOR}>\nTo: {to}\nCc: colleague@bank.example, other@example.net\n\
Subject: {subject} [secure]\nDate: Thu, 26 Nov 2026 10:00:00 +0000\n\
Message-ID: <orig-42@bank.example>\nReferences: <root-1@bank.example>\nMIME-Version: 1.0\n\
Content-Type: text/plain; charset=utf-8\n\n{body}\nSecond line.\n"
    ))
}

/// A recipient with a fresh account: the carrier's payload and the generated password.
struct Recipient {
    address: String,
    payload: String,
    password: String,
}

async fn provision(node: &TestNode, address: &str, already: usize) -> Recipient {
    let mail = original_mail(address, "Your contract", "Dear customer, here it is.");
    let results = node.send(ADVISOR, &[address], &mail).await;
    assert_eq!(results, vec![RcptResult::Delivered]);
    let mails = node.wait_for_mails(already + 2).await;
    let fresh = &mails[already..];
    let carrier = fresh
        .iter()
        .find(|m| kind_of(m) == "carrier")
        .expect("carrier");
    let cred = fresh
        .iter()
        .find(|m| kind_of(m) == "credentials")
        .expect("credentials");
    Recipient {
        address: address.to_string(),
        payload: carrier_payload(carrier),
        password: credentials_password(cred),
    }
}

fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("{name} in page"))
        + marker.len();
    let end = page[start..].find('"').expect("end of value") + start;
    page[start..end].to_string()
}

async fn login_to(
    node: &TestNode,
    client: &reqwest::Client,
    address: &str,
    password: &str,
    next: &str,
) -> reqwest::Response {
    client
        .post(node.url("/login"))
        .form(&[("address", address), ("password", password), ("next", next)])
        .send()
        .await
        .expect("login")
}

/// Logs in with the generated password and completes the first-login page.
async fn first_login(node: &TestNode, r: &Recipient, answer: &str) -> reqwest::Client {
    let client = node.client();
    let resp = login_to(node, &client, &r.address, &r.password, "/").await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/welcome?next=/");
    let page = get(node, &client, "/welcome?next=/")
        .await
        .text()
        .await
        .unwrap();
    let csrf = hidden(&page, "csrf");
    let resp = client
        .post(node.url("/welcome"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("next", "/"),
            ("password", NEW_PASSWORD),
            ("password2", NEW_PASSWORD),
            ("question", "pet"),
            ("own_question", ""),
            ("answer", answer),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "first login completes");
    client
}

async fn set_setting(node: &TestNode, name: &str, value: &str) {
    node.node
        .store
        .set_setting(name, value, sealpost_store::unix_now() + 2)
        .await
        .unwrap();
    node.node.settings.reload(&node.node.store).await.unwrap();
}

#[tokio::test]
async fn first_login_forces_own_password_and_question_then_shows_the_message() {
    let node = TestNode::start().await;
    // This test writes an own question, which an administrator must allow.
    set_setting(&node, "security.own_questions", "true").await;
    let r = provision(&node, "kunde@example.com", 0).await;
    let client = node.client();
    let open = location(&node.post_open(&client, &r.payload).await);
    assert!(open.starts_with("/open/"));

    // The generated password works once and leads to the welcome page, carrying the message.
    let resp = login_to(&node, &client, &r.address, &r.password, &open).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), format!("/welcome?next={open}"));
    // Skipping the detour is not possible: the message, its parts and the profile redirect.
    for path in [
        open.clone(),
        format!("{open}/message.eml"),
        "/profile".into(),
    ] {
        let resp = get(&node, &client, &path).await;
        assert_eq!(resp.status(), 303, "{path}");
        assert!(location(&resp).starts_with("/welcome?next="), "{path}");
    }

    let page = get(&node, &client, &format!("/welcome?next={open}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("What was the name of your first pet?"));
    let csrf = hidden(&page, "csrf");
    let attempt = |password: &'static str, password2: &'static str, answer: &'static str| {
        let client = client.clone();
        let csrf = csrf.clone();
        let open = open.clone();
        let url = node.url("/welcome");
        async move {
            client
                .post(url)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("next", open.as_str()),
                    ("password", password),
                    ("password2", password2),
                    ("question", ""),
                    ("own_question", "Name of my first bike?"),
                    ("answer", answer),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let resp = attempt("password1234", "password1234", "Rocket").await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("used too often"));
    let resp = attempt("kunde@example.com", "kunde@example.com", "Rocket").await;
    assert_eq!(resp.status(), 400);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("must not be your e-mail")
    );
    let resp = attempt("short", "short", "Rocket").await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("too short"));
    let resp = attempt(NEW_PASSWORD, "something else entirely", "Rocket").await;
    assert_eq!(resp.status(), 400);
    let resp = attempt(NEW_PASSWORD, NEW_PASSWORD, "").await;
    assert_eq!(resp.status(), 400, "a secret question is required");
    // A forged request without the session's CSRF token is refused.
    let resp = client
        .post(node.url("/welcome"))
        .form(&[
            ("csrf", "forged"),
            ("password", NEW_PASSWORD),
            ("password2", NEW_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    let resp = attempt(NEW_PASSWORD, NEW_PASSWORD, "Rocket").await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), open, "lands on the message it opened");
    let resp = get(&node, &client, &open).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("Dear customer, here it is.")
    );

    // The generated password is gone; the new one logs in without a detour.
    let other = node.client();
    assert_eq!(
        node.login(&other, &r.address, &r.password).await.status(),
        401
    );
    let resp = node.login(&other, &r.address, NEW_PASSWORD).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/");
    let account = node
        .node
        .store
        .account_by_address("kunde@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        account.secret_question.as_deref(),
        Some("Name of my first bike?")
    );
    assert!(!account.must_change_password);
    node.stop().await;
}

#[tokio::test]
async fn forced_change_can_be_switched_off() {
    let node = TestNode::start().await;
    set_setting(&node, "security.force_password_change", "false").await;
    let r = provision(&node, "relaxed@example.com", 0).await;
    let client = node.client();
    let resp = node.login(&client, &r.address, &r.password).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/");
    assert_eq!(get(&node, &client, "/profile").await.status(), 200);
    node.stop().await;
}

async fn forgot_question(
    node: &TestNode,
    client: &reqwest::Client,
    address: &str,
) -> (u16, String) {
    let resp = client
        .post(node.url("/forgot"))
        .form(&[("address", address)])
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn forgot_answer(
    node: &TestNode,
    client: &reqwest::Client,
    address: &str,
    answer: &str,
) -> (u16, String, Duration) {
    let started = Instant::now();
    let resp = client
        .post(node.url("/forgot/answer"))
        .form(&[("address", address), ("answer", answer)])
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, text, started.elapsed())
}

fn question_of(page: &str) -> String {
    let start = page.find(":</strong> ").expect("question shown") + ":</strong> ".len();
    let end = page[start..].find("</p>").expect("end") + start;
    page[start..end].to_string()
}

/// The page with everything that may legitimately differ (address, question) blanked.
fn shape(page: &str, address: &str) -> String {
    let q = question_of(page);
    page.replace(address, "ADDRESS").replace(&q, "QUESTION")
}

#[tokio::test]
async fn forgotten_password_answers_alike_for_known_and_unknown_addresses() {
    let node = TestNode::start().await;
    // The answer-only flow (the answer-and-code default is covered by the security suite).
    set_setting(&node, "security.recovery", "answer-only").await;
    let r = provision(&node, "known@example.com", 0).await;
    let _session = first_login(&node, &r, "Rex").await;
    let unknown = "nobody-here@example.com";
    let client = node.client();

    let (status_k, page_k) = forgot_question(&node, &client, &r.address).await;
    let (status_u, page_u) = forgot_question(&node, &client, unknown).await;
    assert_eq!((status_k, status_u), (200, 200));
    assert_eq!(question_of(&page_k), "What was the name of your first pet?");
    let decoy = question_of(&page_u);
    assert!(!decoy.is_empty());
    assert_eq!(
        shape(&page_k, &r.address),
        shape(&page_u, unknown),
        "same page"
    );
    // The decoy is stable, so asking twice reveals nothing.
    let (_, again) = forgot_question(&node, &client, unknown).await;
    assert_eq!(question_of(&again), decoy);
    let (_, upper) = forgot_question(&node, &client, "NOBODY-HERE@example.com").await;
    assert_eq!(question_of(&upper), decoy);

    // Wrong answers: same status, same page, comparable time (both run one Argon2 check).
    let (sk, wk, tk) = forgot_answer(&node, &client, &r.address, "Fluffy").await;
    let (su, wu, tu) = forgot_answer(&node, &client, unknown, "Fluffy").await;
    assert_eq!((sk, su), (401, 401));
    assert!(wk.contains("This answer is not correct"));
    assert_eq!(shape(&wk, &r.address), shape(&wu, unknown));
    let (slow, fast) = if tk > tu { (tk, tu) } else { (tu, tk) };
    assert!(
        slow < fast * 4 + Duration::from_millis(150),
        "timing differs too much: known {tk:?}, unknown {tu:?}"
    );

    // The right answer (case and spaces do not matter) shows a new password once.
    let (status, done, _) = forgot_answer(&node, &client, &r.address, "  rEX ").await;
    assert_eq!(status, 200);
    let marker = "New password: ";
    let start = done.find(marker).expect("password shown") + marker.len();
    let end = done[start..].find('<').unwrap() + start;
    let generated = done[start..end].trim().to_string();
    assert_eq!(generated.len(), 19, "{generated}");
    // Besides the carrier and credentials mails only the holder's notice (no secret in it).
    assert!(
        node.sink
            .received()
            .iter()
            .skip(2)
            .all(|m| kind_of(m) == "notice" && !mail_text(m).contains(&generated)),
        "the new password is shown, not mailed"
    );

    // The old password stops working, the new one forces a change; old sessions are gone.
    assert_eq!(get(&node, &_session, "/profile").await.status(), 303);
    let c = node.client();
    assert_eq!(node.login(&c, &r.address, NEW_PASSWORD).await.status(), 401);
    let resp = node.login(&c, &r.address, &generated).await;
    assert_eq!(resp.status(), 303);
    assert!(location(&resp).starts_with("/welcome"), "change forced");
    let account = node
        .node
        .store
        .account_by_address(&r.address)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.failed_answers, 0, "a right answer clears the count");
    node.stop().await;
}

#[tokio::test]
async fn secret_question_locks_after_too_many_wrong_answers() {
    let node = TestNode::start().await;
    set_setting(&node, "security.recovery", "answer-only").await;
    set_setting(&node, "security.secret_answer_max_attempts", "3").await;
    let r = provision(&node, "locked@example.com", 0).await;
    let _session = first_login(&node, &r, "Rex").await;
    let unknown = "ghost@example.com";
    let client = node.client();

    for address in [r.address.as_str(), unknown] {
        let (s1, _, _) = forgot_answer(&node, &client, address, "wrong").await;
        let (s2, _, _) = forgot_answer(&node, &client, address, "wrong").await;
        let (s3, page, _) = forgot_answer(&node, &client, address, "wrong").await;
        assert_eq!((s1, s2, s3), (401, 401, 403), "{address}");
        assert!(page.contains("contact the sender"), "{page}");
        // Even the right answer no longer helps, and the question step says so at once.
        let (s4, page, _) = forgot_answer(&node, &client, address, "Rex").await;
        assert_eq!(s4, 403, "{address}");
        assert!(!page.contains("New password"));
        let (s5, page) = forgot_question(&node, &client, address).await;
        assert_eq!(s5, 403);
        assert!(page.contains("contact the sender"));
    }
    let account = node
        .node
        .store
        .account_by_address(&r.address)
        .await
        .unwrap()
        .unwrap();
    assert!(account.failed_answers >= 3, "counted in the database");

    // An administrator's unlock lets the right answer work again.
    node.node.store.unlock_account(&account.id).await.unwrap();
    let (status, page, _) = forgot_answer(&node, &client, &r.address, "rex").await;
    assert_eq!(status, 200);
    assert!(page.contains("New password: "));
    node.stop().await;
}

#[tokio::test]
async fn an_account_without_a_question_cannot_reset_and_looks_like_any_other() {
    let node = TestNode::start().await;
    set_setting(&node, "security.recovery", "answer-only").await;
    let r = provision(&node, "noquestion@example.com", 0).await;
    let client = node.client();
    let (status, page) = forgot_question(&node, &client, &r.address).await;
    assert_eq!(status, 200);
    assert!(!question_of(&page).is_empty(), "a decoy question is asked");
    let (status, page, _) = forgot_answer(&node, &client, &r.address, "anything").await;
    assert_eq!(status, 401);
    assert!(page.contains("If you have not set a secret question, please contact the sender"));
    // The generated password still works: nothing was reset.
    assert_eq!(
        node.login(&client, &r.address, &r.password).await.status(),
        303
    );
    node.stop().await;
}

#[tokio::test]
async fn profile_shows_logins_changes_password_question_and_language() {
    let node = TestNode::start().await;
    // Own questions are an administrator's choice; this test writes one.
    set_setting(&node, "security.own_questions", "true").await;
    let r = provision(&node, "profile@example.com", 0).await;
    let first = first_login(&node, &r, "Rex").await;
    let client = node.client();
    assert_eq!(
        node.login(&client, &r.address, NEW_PASSWORD).await.status(),
        303
    );
    let page = get(&node, &client, "/profile").await.text().await.unwrap();
    assert!(page.contains("Your profile"));
    assert!(page.contains("from 127.0.0.1"), "last login with its IP");
    assert!(
        !page.contains(">never<"),
        "the login before it is shown too"
    );
    assert!(page.contains(" UTC"));
    let year = page.find("id=\"valid-until\">").expect("validity shown");
    assert!(page[year..].contains("20"), "a date");
    let csrf = hidden(&page, "csrf");

    // Wrong current password, then a policy violation, then success.
    let change = |current: &'static str, new: &'static str| {
        let client = client.clone();
        let csrf = csrf.clone();
        let url = node.url("/profile/password");
        async move {
            client
                .post(url)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("current", current),
                    ("password", new),
                    ("password2", new),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let resp = change("not it", "another fine passphrase").await;
    assert_eq!(resp.status(), 400);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("current password is not correct")
    );
    let resp = change(NEW_PASSWORD, "qwertyuiop").await;
    assert_eq!(resp.status(), 400);
    let resp = change(NEW_PASSWORD, "another fine passphrase").await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/profile?saved=password");
    // This session lives on; the other one was ended.
    assert_eq!(get(&node, &client, "/profile").await.status(), 200);
    let resp = get(&node, &first, "/profile").await;
    assert_eq!(resp.status(), 303);
    assert!(location(&resp).starts_with("/login"));

    // Secret question: own text.
    let resp = client
        .post(node.url("/profile/question"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("question", ""),
            ("own_question", "Favourite mountain?"),
            ("answer", "Zugspitze"),
            ("current", "another fine passphrase"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let page = get(&node, &client, "/profile?saved=question")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Favourite mountain?"));

    // Language: German from now on, for this account, whatever the browser says.
    let resp = client
        .post(node.url("/profile/language"))
        .form(&[("csrf", csrf.as_str()), ("language", "de")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let page = client
        .get(node.url("/profile"))
        .header("accept-language", "en-US")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Ihr Profil") && page.contains("lang=\"de\""));
    let resp = client
        .post(node.url("/profile/language"))
        .form(&[("csrf", csrf.as_str()), ("language", "xx")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = client
        .post(node.url("/profile/language"))
        .form(&[("csrf", "forged"), ("language", "en")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let account = node
        .node
        .store
        .account_by_address(&r.address)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.language.as_deref(), Some("de"));

    // Without login, the browser's language is used; anonymous German pages work.
    let anon = node.client();
    let page = anon
        .get(node.url("/login"))
        .header("accept-language", "de-DE,de;q=0.9")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Passwort vergessen?"));

    // The account's language reaches its mails: the next carrier is German.
    let mail = original_mail(&r.address, "Zweite Nachricht", "Hallo.");
    node.send(ADVISOR, &[&r.address], &mail).await;
    // Carrier and credentials, the notices of the password and question changes, the carrier.
    let mails = node.wait_for_mails(5).await;
    let carrier = mails
        .iter()
        .rev()
        .find(|m| kind_of(m) == "carrier")
        .unwrap();
    let text = String::from_utf8_lossy(&carrier.data).to_string();
    assert!(text.contains("verschl"), "carrier in German");
    node.stop().await;
}

#[tokio::test]
async fn an_expired_account_cannot_log_in_and_says_so() {
    let node = TestNode::start().await;
    let r = provision(&node, "old@example.com", 0).await;
    let _ = first_login(&node, &r, "Rex").await;
    let account = node
        .node
        .store
        .account_by_address(&r.address)
        .await
        .unwrap()
        .unwrap();
    node.node
        .store
        .set_valid_until(&account.id, Some(sealpost_store::unix_now() - 10))
        .await
        .unwrap();
    let client = node.client();
    let resp = node.login(&client, &r.address, NEW_PASSWORD).await;
    assert_eq!(resp.status(), 401);
    assert!(resp.text().await.unwrap().contains("expired"));
    node.stop().await;
}

async fn open_message(
    node: &TestNode,
    client: &reqwest::Client,
    payload: &str,
) -> (String, String) {
    let open = location(&node.post_open(client, payload).await);
    let resp = get(node, client, &open).await;
    assert_eq!(resp.status(), 200);
    (open, resp.text().await.unwrap())
}

fn reply_form(csrf: &str, body: &str) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new()
        .text("csrf", csrf.to_string())
        .text("body", body.to_string())
}

#[tokio::test]
async fn secure_reply_goes_only_to_the_original_sender_and_threads() {
    let node = TestNode::start().await;
    let r = provision(&node, "replier@example.com", 0).await;
    let client = first_login(&node, &r, "Rex").await;
    let (open, page) = open_message(&node, &client, &r.payload).await;
    assert!(page.contains(&format!("action=\"{open}/reply\"")));
    assert!(
        page.contains("value=\"colleague@bank.example\""),
        "internal cc offered"
    );
    assert!(
        !page.contains("value=\"other@example.net\""),
        "external cc not offered"
    );
    let csrf = hidden(&page, "csrf");
    let reply_url = node.url(&format!("{open}/reply"));

    // Tampering: an external address as cc, an added "to" field, a missing CSRF token.
    let tampered = [
        (reply_form(&csrf, "x").text("cc", "other@example.net"), 403),
        (
            reply_form(&csrf, "x").text("cc", "evil@attacker.example"),
            403,
        ),
        (
            reply_form(&csrf, "x").text("to", "evil@attacker.example"),
            400,
        ),
        (reply_form("forged", "x"), 403),
    ];
    for (form, expected) in tampered {
        let resp = client
            .post(&reply_url)
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), expected);
    }

    let attachment: Vec<u8> = (0..=255u8).collect();
    let form = reply_form(&csrf, "Thank you, I agree.\nBest, K.")
        .text("cc", "colleague@bank.example")
        .part(
            "attachment",
            reqwest::multipart::Part::bytes(attachment.clone())
                .file_name("signed.pdf")
                .mime_str("application/pdf")
                .unwrap(),
        );
    let resp = client
        .post(&reply_url)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), format!("{open}/sent"));
    let page = get(&node, &client, &format!("{open}/sent"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("has been accepted"), "{page}");
    assert!(page.contains(ADVISOR));

    let mails = node.wait_for_mails(3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        node.sink.received().len(),
        3,
        "tampered requests sent nothing"
    );
    let reply = &mails[2];
    assert_eq!(kind_of(reply), "reply");
    assert_eq!(reply.rcpt_to, vec![ADVISOR, "colleague@bank.example"]);
    assert_eq!(reply.mail_from, node.node.settings.get().notification_from);
    let msg = mail_parser::MessageParser::default()
        .parse(&reply.data)
        .unwrap();
    // The subject keeps the trigger keyword, so the advisor's answer is encrypted again.
    assert_eq!(msg.subject(), Some("Re: Your contract [secure]"));
    assert!(msg.message_id().unwrap().ends_with("@gw.test"), "hostname");
    assert_eq!(msg.in_reply_to().as_text(), Some("orig-42@bank.example"));
    assert_eq!(
        msg.references().as_text_list().unwrap(),
        vec!["root-1@bank.example", "orig-42@bank.example"]
    );
    // From aligns with the notification sender's (signing) domain; Reply-To is the reader.
    let from = msg.from().unwrap().first().unwrap();
    assert_eq!(from.address.as_deref(), Some("noreply@bank.example"));
    assert_eq!(
        from.address.as_deref(),
        Some(node.node.settings.get().notification_from.as_str())
    );
    assert!(
        from.name
            .as_deref()
            .unwrap()
            .starts_with("replier@example.com via "),
        "{from:?}"
    );
    assert_eq!(
        msg.reply_to().unwrap().first().unwrap().address.as_deref(),
        Some("replier@example.com")
    );
    let text = msg.body_text(0).unwrap();
    assert!(
        text.lines().next().unwrap().contains("replier@example.com"),
        "{text}"
    );
    assert!(text.contains("Thank you, I agree."));
    assert!(text.contains("> Dear customer, here it is."), "{text}");
    let att = msg.attachment(0).expect("attachment");
    assert_eq!(att.contents(), attachment.as_slice());

    // Attachments beyond the configured size are refused with a page, nothing is queued.
    set_setting(&node, "reply.max_attachment_bytes", "100").await;
    let form = reply_form(&csrf, "Too big").part(
        "attachment",
        reqwest::multipart::Part::bytes(vec![7u8; 500]).file_name("big.bin"),
    );
    let resp = client
        .post(&reply_url)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);

    // Reply-all switched off: the internal cc is no longer accepted.
    set_setting(&node, "reply.allow_internal_all", "false").await;
    let form = reply_form(&csrf, "x").text("cc", "colleague@bank.example");
    let resp = client
        .post(&reply_url)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);

    // With the encrypted copy on, the replier also gets a carrier holding the reply.
    set_setting(&node, "reply.encrypted_copy", "true").await;
    let resp = client
        .post(&reply_url)
        .multipart(reply_form(&csrf, "Copy please."))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let mails = node.wait_for_mails(5).await;
    let copy = mails[3..]
        .iter()
        .find(|m| kind_of(m) == "carrier")
        .expect("encrypted copy");
    assert_eq!(copy.rcpt_to, vec!["replier@example.com"]);
    assert!(!String::from_utf8_lossy(&copy.data).contains("Copy please."));
    let (_, page) = open_message(&node, &client, &carrier_payload(copy)).await;
    assert!(page.contains("Copy please."));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(node.sink.received().len(), 5);
    node.stop().await;
}

/// `delivery.profile@datafile.example = datafile`: that domain's carrier brings
/// `message.sealpost` instead of secure.htm (other domains keep secure.htm), and uploading the
/// file on the portal's start page opens the message.
#[tokio::test]
async fn the_datafile_profile_sends_message_sealpost_and_its_upload_opens_the_message() {
    let node = TestNode::start().await;
    set_setting(&node, "delivery.profile@datafile.example", "datafile").await;
    let reader = "reader@datafile.example";
    let other = "someone@example.org";
    let mail = original_mail(reader, "Your contract", "Dear customer, here it is.");
    let results = node.send(ADVISOR, &[reader, other], &mail).await;
    assert_eq!(results, vec![RcptResult::Delivered, RcptResult::Delivered]);
    let mails = node.wait_for_mails(4).await;
    let carrier_to = |to: &str| {
        mails
            .iter()
            .find(|m| kind_of(m) == "carrier" && m.rcpt_to.iter().any(|r| r == to))
            .unwrap_or_else(|| panic!("carrier to {to}"))
    };
    let attachment_of = |data: &[u8]| {
        use mail_parser::MimeHeaders;
        let msg = mail_parser::MessageParser::default().parse(data).unwrap();
        let names: Vec<(String, String)> = msg
            .attachments()
            .map(|a| {
                let ct = a.content_type().unwrap();
                (
                    a.attachment_name().unwrap_or_default().to_string(),
                    format!("{}/{}", ct.c_type, ct.c_subtype.as_deref().unwrap_or("")),
                )
            })
            .collect();
        names
    };
    let datafile = carrier_to(reader);
    assert_eq!(
        attachment_of(&datafile.data),
        vec![(
            "message.sealpost".to_string(),
            "application/octet-stream".to_string()
        )]
    );
    assert_eq!(
        attachment_of(&carrier_to(other).data),
        vec![("secure.htm".to_string(), "text/html".to_string())]
    );
    let id = header_value(&datafile.data, "X-Sealpost-Message").expect("ledger id header");
    assert!(id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()));
    let text = mail_text(datafile);
    assert!(
        text.contains(&format!("Open the upload page: {}", node.url("/"))),
        "{text}"
    );
    assert!(text.contains(&format!("Message ID: {id}")));

    let msg = mail_parser::MessageParser::default()
        .parse(&datafile.data)
        .unwrap();
    let file = {
        use mail_parser::MimeHeaders;
        let att = msg.attachments().next().unwrap();
        assert_eq!(att.attachment_name(), Some("message.sealpost"));
        att.contents().to_vec()
    };
    let cred = mails
        .iter()
        .find(|m| kind_of(m) == "credentials" && mail_text(m).contains(reader))
        .expect("credentials for the reader");
    let r = Recipient {
        address: reader.to_string(),
        payload: String::new(),
        password: credentials_password(cred),
    };
    let client = first_login(&node, &r, "Rex").await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(file)
            .file_name("message.sealpost")
            .mime_str("application/octet-stream")
            .unwrap(),
    );
    let resp = client
        .post(node.url("/open"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let open = location(&resp);
    assert!(open.starts_with("/open/"), "{open}");
    let page = page_text(&node, &client, &open).await;
    assert!(page.contains("Dear customer, here it is."), "{page}");
    node.stop().await;
}
