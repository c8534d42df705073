//! Mail policy: credentials to internal senders only, neutral subject, internal-only replies, format characters in names (issue 12 findings 7, 8, 9, 17).

#[allow(unused_imports)]
use super::*;

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
