//! Trust cues against phishing look-alikes: the portal shows the organisation's brand, its
//! support contact, links and host, and the "is it genuine?" block; the logo is served only as
//! the checked image type with nosniff; the personal security phrase needs re-authentication
//! to change and then shows in every later carrier.

#[allow(unused_imports)]
use super::*;

/// A PNG's signature and header chunk: enough for the type check (the portal serves the
/// bytes as they are).
fn png_bytes() -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 8, 6, 0, 0, 0]);
    b
}

/// Stores a setting through the same check the admin UI and the CLI use.
async fn set_checked(node: &TestNode, name: &str, value: &str) {
    let (name, value) = sealpost_core::settings::check(name, value).unwrap();
    set_setting(node, &name, &value).await;
}

async fn brand(node: &TestNode) {
    set_checked(node, "branding.org_name", "Musterbank AG").await;
    set_checked(node, "branding.accent_color", "#0b3d2e").await;
    set_checked(node, "branding.support_contact", "+49 30 1234 5678").await;
    set_checked(
        node,
        "branding.imprint_url",
        "https://musterbank.example/imprint",
    )
    .await;
    set_checked(
        node,
        "branding.privacy_url",
        "https://musterbank.example/privacy",
    )
    .await;
    // The base64 of `png_bytes()`.
    set_checked(
        node,
        "branding.logo",
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAA=",
    )
    .await;
}

#[tokio::test]
async fn the_sign_in_page_shows_the_brand_contact_links_and_the_genuine_block() {
    let node = TestNode::start().await;
    let client = raw_client();
    // Without branding: the default name, no logo, and never "end-to-end".
    let page = page_text(&node, &client, "/login").await;
    assert!(page.contains("encrypted by Sealpost"), "{page}");
    assert!(!page.to_lowercase().contains("end-to-end"));
    assert!(!page.contains("/brand/logo"));
    assert_eq!(get(&node, &client, "/brand/logo").await.status(), 404);

    brand(&node).await;
    let page = page_text(&node, &client, "/login").await;
    assert!(page.contains("Musterbank AG"));
    assert!(page.contains("encrypted by Musterbank AG"), "footer");
    assert!(page.contains("+49 30 1234 5678"), "support contact");
    assert!(page.contains("href=\"https://musterbank.example/imprint\""));
    assert!(page.contains("href=\"https://musterbank.example/privacy\""));
    assert!(page.contains("<img class=\"logo\" src=\"/brand/logo\""));
    assert!(page.contains("Why did I get this, and is it genuine?"));
    assert!(page.contains("never asks for your password by e-mail"));
    assert!(page.contains("security phrase"));
    // The host in words: the test node's public URL is https://127.0.0.1:PORT.
    assert!(
        page.contains("This portal&#39;s address is 127.0.0.1."),
        "{page}"
    );
    assert!(!page.to_lowercase().contains("end-to-end"));
    assert!(
        !page.contains("style="),
        "no inline style under the strict CSP"
    );
    // The one script is the portal's own /static/passkey.js (same origin, nothing inline).
    assert_eq!(page.matches("<script").count(), 1, "one script");
    let script = &page[page.find("<script").unwrap()..];
    assert!(script.starts_with("<script src=\"/static/passkey.js\""));
    assert!(script[..script.find('>').unwrap() + 1].ends_with("defer>"));
    assert!(script[script.find('>').unwrap() + 1..].starts_with("</script>"));
    assert_inert(&page, "branded sign-in page", &["script"]);

    // German too.
    let de = client
        .get(node.url("/login"))
        .header("accept-language", "de")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(de.contains("Warum habe ich das bekommen, und ist es echt?"));
    assert!(de.contains("werden von Musterbank AG verschlüsselt"));
    assert!(!de.contains("Ende-zu-Ende"));

    // The logo: exactly the stored bytes, as image/png, never sniffed.
    let logo = get(&node, &client, "/brand/logo").await;
    assert_eq!(logo.status(), 200);
    assert_eq!(logo.headers()["content-type"], "image/png");
    assert_eq!(logo.headers()["x-content-type-options"], "nosniff");
    assert_eq!(logo.headers()["cache-control"], "no-cache");
    assert_eq!(logo.bytes().await.unwrap().to_vec(), png_bytes());

    // The accent colour comes from a same-origin style sheet.
    let css = get(&node, &client, "/static/brand.css").await;
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    // Revalidated on every page (a cached colour outlived an admin's change in the browser
    // suite), like the logo.
    assert_eq!(css.headers()["cache-control"], "no-cache");
    assert!(css.text().await.unwrap().contains("--accent: #0b3d2e"));
    node.stop().await;
}

#[tokio::test]
async fn the_upload_page_and_error_pages_carry_the_brand() {
    let node = TestNode::start().await;
    brand(&node).await;
    let r = provision(&node, "brand-home@example.com").await;
    let client = logged_in(&node, &r).await;
    let home = page_text(&node, &client, "/").await;
    assert!(home.contains("Why did I get this, and is it genuine?"));
    assert!(home.contains("encrypted by Musterbank AG"));
    let missing = page_text(&node, &client, "/no-such-page").await;
    assert!(missing.contains("encrypted by Musterbank AG"), "{missing}");
    node.stop().await;
}

async fn post_phrase(
    node: &TestNode,
    client: &reqwest::Client,
    phrase: &str,
    current: Option<&str>,
) -> reqwest::Response {
    let page = page_text(node, client, "/profile").await;
    let csrf = csrf_of(&page);
    let mut form = vec![("csrf", csrf.as_str()), ("phrase", phrase)];
    if let Some(current) = current {
        form.push(("current", current));
    }
    client
        .post(node.url("/profile/phrase"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn stored_phrase(node: &TestNode, address: &str) -> Option<String> {
    let account = node
        .node
        .store
        .account_by_address(address)
        .await
        .unwrap()
        .unwrap();
    node.node.store.security_phrase(&account.id).await.unwrap()
}

#[tokio::test]
async fn changing_the_security_phrase_needs_the_password_and_shows_in_later_carriers() {
    let node = TestNode::start().await;
    let r = provision(&node, "phrase@example.com").await;
    let client = logged_in(&node, &r).await;
    let address = r.address.as_str();

    // Without the current password, or with a wrong one: refused, nothing stored.
    let resp = post_phrase(&node, &client, "blue heron at dawn", None).await;
    assert_eq!(resp.status(), 400);
    let resp = post_phrase(&node, &client, "blue heron at dawn", Some("wrong guess 1")).await;
    assert_eq!(resp.status(), 400);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("current password is not correct")
    );
    assert_eq!(stored_phrase(&node, address).await, None);
    // Too long: refused.
    let resp = post_phrase(&node, &client, &"x".repeat(61), Some(NEW_PASSWORD)).await;
    assert_eq!(resp.status(), 400);
    assert_eq!(stored_phrase(&node, address).await, None);

    let resp = post_phrase(&node, &client, "  blue heron\tat dawn ", Some(NEW_PASSWORD)).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/profile?saved=phrase");
    assert_eq!(
        stored_phrase(&node, address).await.as_deref(),
        Some("blue heron at dawn")
    );
    let profile = page_text(&node, &client, "/profile?saved=phrase").await;
    assert!(
        profile.contains("<span class=\"phrase\" id=\"current-phrase\">blue heron at dawn</span>")
    );
    // Audited, without the phrase itself.
    let audit = node.node.store.recent_audit(50).await.unwrap();
    let event = audit
        .iter()
        .find(|e| e.action == "portal.security_phrase_set")
        .expect("audited");
    assert_eq!(event.actor, address);
    assert!(!format!("{:?}", event.detail).contains("heron"));

    // The next carrier to this address shows the phrase.
    let before = node.sink.received().len();
    let results = node
        .send(ADVISOR, &[address], &plain_mail(address, "Second letter"))
        .await;
    assert_eq!(results, vec![RcptResult::Delivered]);
    let mails = node.wait_for_mails(before + 1).await;
    let carrier = &mails[before];
    assert_eq!(kind_of(carrier), "carrier");
    assert!(mail_text(carrier).contains("blue heron at dawn"));

    // An empty phrase removes it (with the password again).
    let resp = post_phrase(&node, &client, "", Some(NEW_PASSWORD)).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(stored_phrase(&node, address).await, None);
    node.stop().await;
}

#[tokio::test]
async fn the_first_sign_in_offers_the_phrase_and_may_skip_it() {
    let node = TestNode::start().await;
    let skipped = provision(&node, "skips@example.com").await;
    let _ = logged_in(&node, &skipped).await; // posts no phrase
    assert_eq!(stored_phrase(&node, &skipped.address).await, None);

    let r = provision(&node, "chooses@example.com").await;
    let client = node.client();
    assert_eq!(
        node.login(&client, &r.address, &r.password).await.status(),
        303
    );
    let page = page_text(&node, &client, "/welcome?next=/").await;
    assert!(
        page.contains("name=\"phrase\""),
        "the welcome page offers the phrase"
    );
    let csrf = csrf_of(&page);
    let resp = client
        .post(node.url("/welcome"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("next", "/"),
            ("password", NEW_PASSWORD),
            ("password2", NEW_PASSWORD),
            ("question", "pet"),
            ("answer", "sealpost"),
            ("phrase", "Grüne Äpfel im Mai"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(
        stored_phrase(&node, &r.address).await.as_deref(),
        Some("Grüne Äpfel im Mai")
    );
    node.stop().await;
}

#[tokio::test]
async fn the_admin_branding_page_previews_and_refuses_unreadable_colours() {
    let node = TestNode::start().await;
    brand(&node).await;
    let (client, csrf) = admin_session(&node, "brander").await;
    let page = page_text(&node, &client, "/admin/settings/branding").await;
    assert!(page.contains("id=\"brand-preview\""));
    assert!(page.contains("Musterbank AG"));
    assert!(page.contains("+49 30 1234 5678"));
    assert!(page.contains("/brand/logo"));
    let resp = client
        .post(node.url("/admin/settings/branding"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("branding.org_name", "Musterbank AG"),
            ("branding.accent_color", "#ffd700"),
            ("i18n.default_language", "en"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(text.contains("contrast ratio of 1.4"), "{text}");
    assert_eq!(node.node.settings.get().accent_color, "#0b3d2e");
    node.stop().await;
}
