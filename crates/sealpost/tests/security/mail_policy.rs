//! Mail policy: credentials to internal senders only, neutral subject, internal-only replies, format characters in names.

#[allow(unused_imports)]
use super::*;

// pipeline

const OUTSIDER: &str = "someone@outside.example";

/// A flagged mail as an outside sender would write it.
fn outsider_mail(to: &str) -> Vec<u8> {
    crlf(&format!(
        "From: Someone <{OUTSIDER}>\nTo: {to}\nSubject: Hello [secure]\n\
Message-ID: <outsider-{}@outside.example>\nMIME-Version: 1.0\n\
Content-Type: text/plain; charset=utf-8\n\nPlease open this.\n",
        nanos()
    ))
}

async fn refusals_for(node: &TestNode, recipient: &str) -> Vec<sealpost_store::AuditEvent> {
    node.node
        .store
        .recent_audit(200)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "account.refused" && e.subject.as_deref() == Some(recipient))
        .collect()
}

/// Every decoded text of a mail: header values and the contents of every part.
fn all_decoded_text(data: &[u8]) -> String {
    let msg = mail_parser::MessageParser::default().parse(data).unwrap();
    let mut text = String::new();
    for (name, value) in msg.headers_raw() {
        text.push_str(&format!("{name}: {value}\n"));
    }
    text.push_str(msg.subject().unwrap_or_default());
    for part in msg.parts.iter() {
        text.push_str(&String::from_utf8_lossy(part.contents()));
        text.push('\n');
    }
    text
}

#[tokio::test]
async fn an_external_sender_gets_a_5xx_for_a_new_address_and_no_account_or_password_is_made() {
    let node = TestNode::start().await;
    let victim = "fresh-victim@example.com";
    let results = node.send(OUTSIDER, &[victim], &outsider_mail(victim)).await;
    let [RcptResult::Failed(reply)] = results.as_slice() else {
        panic!("expected a permanent refusal, got {results:?}");
    };
    assert!(reply.starts_with('5'), "{reply}");
    assert!(
        reply.contains("internal sender"),
        "a reason the sender can act on: {reply}"
    );
    // Nothing leaves: no credentials mail, no carrier, no bounce.
    let mails = node.sink.wait_for(1, Duration::from_millis(1500)).await;
    assert!(mails.is_empty(), "{} mails left the node", mails.len());
    assert!(
        node.node
            .store
            .account_by_address(victim)
            .await
            .unwrap()
            .is_none()
    );
    let audit = refusals_for(&node, victim).await;
    assert_eq!(audit.len(), 1, "one audit row names the refused recipient");
    let detail = audit[0].detail.as_deref().unwrap_or_default();
    assert!(
        detail.contains(OUTSIDER),
        "the row names the sender: {detail}"
    );
    assert!(
        detail.contains("external-sender"),
        "and the reason: {detail}"
    );
}

#[tokio::test]
async fn an_external_senders_copy_for_a_new_address_bounces_while_the_others_are_delivered() {
    let node = TestNode::start().await;
    // An account that exists needs no credentials mail: it still gets its carrier.
    let existing = provision(&node, "known-customer@example.com").await;
    let fresh = "fresh-customer@example.com";
    let colleague = "colleague@bank.example";
    let before = node.sink.received().len();
    let results = node
        .send(
            OUTSIDER,
            &[&existing.address, fresh, colleague],
            &outsider_mail(fresh),
        )
        .await;
    assert_eq!(results, vec![RcptResult::Delivered; 3]);
    let mails = node.wait_for_mails(before + 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fresh_mails: Vec<_> = node.sink.received()[before..].to_vec();
    assert_eq!(
        fresh_mails.len(),
        3,
        "carrier, relayed copy and one bounce; got {}",
        mails.len()
    );
    let kinds: Vec<String> = fresh_mails.iter().map(kind_of).collect();
    assert!(!kinds.iter().any(|k| k == "credentials"), "{kinds:?}");
    let carrier = fresh_mails
        .iter()
        .find(|m| kind_of(m) == "carrier")
        .unwrap();
    assert_eq!(carrier.rcpt_to, vec![existing.address.clone()]);
    let relay = fresh_mails
        .iter()
        .find(|m| m.rcpt_to == [colleague])
        .unwrap();
    assert_eq!(kind_of(relay), "", "the internal copy passes unchanged");
    let bounce = fresh_mails.iter().find(|m| kind_of(m) == "bounce").unwrap();
    assert_eq!(bounce.rcpt_to, vec![OUTSIDER.to_string()]);
    assert_eq!(bounce.mail_from, "", "a bounce has the null sender");
    let text = all_decoded_text(&bounce.data);
    assert!(text.contains(fresh) && text.contains("5.7.1"), "{text}");
    assert!(
        !text.contains("Please open this"),
        "the content never travels back"
    );
    // Never delivered in clear to the refused address, and no account for it.
    assert!(
        !fresh_mails
            .iter()
            .any(|m| m.rcpt_to.iter().any(|r| r == fresh))
    );
    assert!(
        node.node
            .store
            .account_by_address(fresh)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(refusals_for(&node, fresh).await.len(), 1);
}

#[tokio::test]
async fn an_internal_sender_still_gets_the_new_accounts_credentials() {
    let node = TestNode::start().await;
    let before = node.sink.received().len();
    let address = "new-for-advisor@example.com";
    let results = node
        .send(ADVISOR, &[address], &plain_mail(address, "Offer"))
        .await;
    assert_eq!(results, vec![RcptResult::Delivered]);
    let mails = node.wait_for_mails(before + 2).await;
    let cred = mails[before..]
        .iter()
        .find(|m| kind_of(m) == "credentials")
        .unwrap();
    assert_eq!(cred.rcpt_to, vec![ADVISOR.to_string()]);
    assert!(
        node.node
            .store
            .account_by_address(address)
            .await
            .unwrap()
            .is_some()
    );
    assert!(refusals_for(&node, address).await.is_empty());
}

#[tokio::test]
async fn with_keep_subject_off_the_carrier_shows_a_neutral_subject_and_the_portal_the_real_one() {
    let node = TestNode::start().await;
    set_setting(&node, "mail.keep_subject", "false").await;
    let secret = "Kreditvertrag 4711 Muster";
    let address = "subject-customer@example.com";
    let before = node.sink.received().len();
    let r = provision_with(&node, address, &plain_mail(address, secret)).await;
    let mails = node.sink.received();
    let carrier = mails[before..]
        .iter()
        .find(|m| kind_of(m) == "carrier")
        .unwrap();
    let subject = header_value(&carrier.data, "Subject").unwrap_or_default();
    assert!(
        ["Encrypted message", "Verschlüsselte Nachricht"].contains(&subject.as_str()),
        "the locale's neutral subject, got {subject:?}"
    );
    let text = all_decoded_text(&carrier.data);
    assert!(
        !text.contains("Kreditvertrag"),
        "carrier leaks the subject: {text}"
    );
    let raw = String::from_utf8_lossy(&carrier.data);
    assert!(!raw.contains("Kreditvertrag"));
    // The sealed message keeps it: the portal shows it after decryption.
    let client = logged_in(&node, &r).await;
    let (_, page) = open_message(&node, &client, &r.payload).await;
    assert!(page.contains(secret), "the portal shows the real subject");

    // An administrator's own neutral subject replaces the locale's.
    set_setting(&node, "mail.neutral_subject", "Post von Ihrer Bank").await;
    let before = node.sink.received().len();
    let results = node
        .send(ADVISOR, &[address], &plain_mail(address, secret))
        .await;
    assert_eq!(results, vec![RcptResult::Delivered]);
    let mails = node.wait_for_mails(before + 1).await;
    let carrier = &mails[before];
    assert_eq!(
        header_value(&carrier.data, "Subject").as_deref(),
        Some("Post von Ihrer Bank")
    );
    assert!(!String::from_utf8_lossy(&carrier.data).contains("Kreditvertrag"));
}

/// `mail.keep_subject` is a per-recipient-domain setting: a domain's override decides for
/// that domain's carriers only, within one message.
#[tokio::test]
async fn keep_subject_follows_the_recipients_domain_override() {
    let node = TestNode::start().await;
    set_setting(&node, "mail.keep_subject@neutral.example", "false").await;
    let secret = "Kreditvertrag 4712 Muster";
    let (plain, neutral) = ("kept@example.com", "hidden@neutral.example");
    for address in [plain, neutral] {
        provision(&node, address).await;
    }
    let before = node.sink.received().len();
    let results = node
        .send(ADVISOR, &[plain, neutral], &plain_mail(plain, secret))
        .await;
    assert_eq!(results, vec![RcptResult::Delivered, RcptResult::Delivered]);
    let mails = node.wait_for_mails(before + 2).await;
    let subject_for = |to: &str| {
        let carrier = mails[before..]
            .iter()
            .find(|m| kind_of(m) == "carrier" && m.rcpt_to.iter().any(|r| r == to))
            .unwrap_or_else(|| panic!("a carrier to {to}"));
        header_value(&carrier.data, "Subject").unwrap_or_default()
    };
    assert!(subject_for(plain).contains("Kreditvertrag 4712"));
    let hidden = subject_for(neutral);
    assert!(
        !hidden.contains("Kreditvertrag"),
        "the override hides the subject for its domain: {hidden:?}"
    );
}

// mime

/// A flagged mail from the advisor whose Reply-To points outside the organisation.
fn mail_with_reply_to(to: &str, reply_to: &str) -> Vec<u8> {
    crlf(&format!(
        "From: Anna Advisor <{ADVISOR}>\nTo: {to}\nReply-To: {reply_to}\n\
Subject: Your statement [secure]\nMessage-ID: <rt-{}@bank.example>\nMIME-Version: 1.0\n\
Content-Type: text/plain; charset=utf-8\n\nYour balance is confidential.\n",
        nanos()
    ))
}

async fn post_reply(
    node: &TestNode,
    client: &reqwest::Client,
    open: &str,
    form: reqwest::multipart::Form,
) -> reqwest::Response {
    client
        .post(node.url(&format!("{open}/reply")))
        .multipart(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_reply_to_an_external_reply_to_is_refused_on_the_form_and_nothing_is_sent() {
    let node = TestNode::start().await;
    let address = "replyto@example.com";
    let mail = mail_with_reply_to(address, "Harvest <harvest@attacker.example>");
    let r = provision_with(&node, address, &mail).await;
    let client = logged_in(&node, &r).await;
    let (open, page) = open_message(&node, &client, &r.payload).await;
    let refusal = sealpost_i18n::t("en", "portal-reply-external");
    assert!(
        refusal.contains("outside address"),
        "catalogue text: {refusal}"
    );
    assert!(
        page.contains(&refusal),
        "the refusal where the form was:\n{page}"
    );
    assert!(
        !page.contains(&format!("action=\"{open}/reply\"")),
        "no reply form for an external Reply-To"
    );

    // Posting the form anyway (a page loaded before, or by hand) is refused with the same
    // message, and nothing is queued.
    let csrf = hidden(&page, "csrf");
    let before = node.sink.received().len();
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf)
        .text("body", "Here is my account number.");
    let resp = post_reply(&node, &client, &open, form).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains(&refusal));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        node.sink.received().len(),
        before,
        "nothing reached the sink"
    );
    let queue = node
        .node
        .store
        .queue_stats(sealpost_store::unix_now())
        .await
        .unwrap();
    assert_eq!(queue.queued, 0, "nothing queued");
    node.stop().await;
}

#[tokio::test]
async fn format_characters_in_attachment_names_reach_neither_the_list_nor_the_download() {
    let node = TestNode::start().await;
    let address = "rtlo@example.com";
    // "invoice" U+202E "fdp.exe": shown right-to-left it reads "invoiceexe.pdf".
    let spoofed = "invoice%E2%80%AEfdp.exe";
    let mail = crlf(&format!(
        "From: Anna Advisor <{ADVISOR}>\nTo: {address}\nSubject: Invoice [secure]\n\
Message-ID: <rtlo-{}@bank.example>\nMIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=B1\n\n--B1\nContent-Type: text/plain\n\nSee attached.\n\
--B1\nContent-Type: application/octet-stream\n\
Content-Disposition: attachment; filename*=utf-8''{spoofed}\n\nMZ\n\
--B1\nContent-Type: application/pdf\n\
Content-Disposition: attachment; filename*=utf-8''%E2%80%8Bnote%E2%81%A6.pdf%C2%AD\n\n%PDF\n--B1--\n",
        nanos()
    ));
    let r = provision_with(&node, address, &mail).await;
    let client = logged_in(&node, &r).await;
    let (open, page) = open_message(&node, &client, &r.payload).await;
    let format_chars = ['\u{202e}', '\u{200b}', '\u{2066}', '\u{ad}'];
    assert!(
        !page.contains(&format_chars[..]),
        "no format character in the page"
    );
    for escaped in ["&#8238;", "&#x202e;", "&#x202E;"] {
        assert!(!page.contains(escaped));
    }
    assert!(page.contains("invoicefdp.exe"), "the name in stored order");
    assert!(page.contains("note.pdf"));

    // The list's download links, in the list's order.
    let marker = format!("href=\"{open}/part/");
    let links: Vec<String> = page
        .match_indices(&marker)
        .map(|(at, _)| {
            let rest = &page[at + 6..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .collect();
    assert_eq!(links.len(), 2, "{page}");
    for (link, expected) in links.iter().zip(["invoicefdp.exe", "note.pdf"]) {
        let resp = get(&node, &client, link).await;
        assert_eq!(resp.status(), 200);
        let disposition = resp
            .headers()
            .get("content-disposition")
            .expect("a download")
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            disposition.contains(&format!("filename*=UTF-8''{expected}")),
            "{disposition}"
        );
        for encoded in ["%E2%80%AE", "%E2%80%8B", "%E2%81%A6", "%C2%AD"] {
            assert!(!disposition.contains(encoded), "{disposition}");
        }
    }

    // A file the recipient attaches to a reply loses them too.
    let csrf = hidden(&page, "csrf");
    let before = node.sink.received().len();
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf)
        .text("body", "Signed.")
        .part(
            "attachment",
            reqwest::multipart::Part::bytes(b"MZ".to_vec())
                .file_name("scan\u{202e}fdp.exe")
                .mime_str("application/octet-stream")
                .unwrap(),
        );
    let resp = post_reply(&node, &client, &open, form).await;
    assert_eq!(resp.status(), 303);
    let mails = node.wait_for_mails(before + 1).await;
    let reply = mails[before..]
        .iter()
        .find(|m| kind_of(m) == "reply")
        .expect("reply at the sink");
    let msg = mail_parser::MessageParser::default()
        .parse(&reply.data)
        .unwrap();
    let name = msg
        .attachment(0)
        .and_then(mail_parser::MimeHeaders::attachment_name)
        .unwrap();
    assert_eq!(name, "scanfdp.exe");
    node.stop().await;
}
