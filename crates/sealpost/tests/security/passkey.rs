//! Passkeys (issue 15): registration in the profile and passwordless sign-in, against a real
//! node with a software authenticator (a P-256 key, "none" attestation, built here by hand).
//! Re-authentication before registering and removing, sign-in without any session or token,
//! user verification required, single-use ceremonies, replayed and cloned answers refused,
//! disabled accounts refused, one answer for every refusal, and the audit trail.

#[allow(unused_imports)]
use super::*;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A CTAP2-like authenticator in software: one credential, its signature counter, and
/// whether it reports user verification.
struct SoftAuthenticator {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    credential_id: Vec<u8>,
    user_handle: Option<String>,
    counter: u32,
}

fn cbor_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    match bytes.len() {
        n if n < 24 => out.push(0x40 | n as u8),
        n if n < 256 => out.extend([0x58, n as u8]),
        n => out.extend([0x59, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(bytes);
}

fn cbor_text(out: &mut Vec<u8>, text: &str) {
    assert!(text.len() < 24);
    out.push(0x60 | text.len() as u8);
    out.extend_from_slice(text.as_bytes());
}

impl SoftAuthenticator {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        SoftAuthenticator {
            key,
            rng,
            credential_id: (0..32).map(|i| (nanos() as u8).wrapping_add(i)).collect(),
            user_handle: None,
            counter: 0,
        }
    }

    /// The COSE form of the public key (EC2, ES256, P-256).
    fn cose_key(&self) -> Vec<u8> {
        let point = self.key.public_key().as_ref();
        let mut out = vec![0xa5, 0x01, 0x02, 0x03, 0x26, 0x20, 0x01, 0x21];
        cbor_bytes(&mut out, &point[1..33]);
        out.push(0x22);
        cbor_bytes(&mut out, &point[33..65]);
        out
    }

    fn client_data(kind: &str, options: &Value, origin: &str) -> Vec<u8> {
        json!({
            "type": kind,
            "challenge": options["publicKey"]["challenge"].as_str().unwrap(),
            "origin": origin,
            "crossOrigin": false,
        })
        .to_string()
        .into_bytes()
    }

    /// The answer to `navigator.credentials.create()` for `options`, as the portal's script
    /// sends it. `verified` sets the UV flag.
    fn register(&mut self, options: &Value, origin: &str, verified: bool) -> String {
        let rp_id = options["publicKey"]["rp"]["id"].as_str().unwrap();
        self.user_handle = Some(options["publicKey"]["user"]["id"].as_str().unwrap().into());
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(0x41 | if verified { 0x04 } else { 0 });
        auth_data.extend(self.counter.to_be_bytes());
        auth_data.extend([0u8; 16]);
        auth_data.extend((self.credential_id.len() as u16).to_be_bytes());
        auth_data.extend(&self.credential_id);
        auth_data.extend(self.cose_key());
        let mut attestation = vec![0xa3];
        cbor_text(&mut attestation, "fmt");
        cbor_text(&mut attestation, "none");
        cbor_text(&mut attestation, "attStmt");
        attestation.push(0xa0);
        cbor_text(&mut attestation, "authData");
        cbor_bytes(&mut attestation, &auth_data);
        let client_data = Self::client_data("webauthn.create", options, origin);
        json!({
            "id": B64.encode(&self.credential_id),
            "rawId": B64.encode(&self.credential_id),
            "type": "public-key",
            "response": {
                "attestationObject": B64.encode(&attestation),
                "clientDataJSON": B64.encode(&client_data),
            },
            "extensions": {},
        })
        .to_string()
    }

    /// The answer to `navigator.credentials.get()` for `options`, with the next counter value.
    fn assert(&mut self, options: &Value, origin: &str, verified: bool) -> String {
        self.counter += 1;
        self.assert_with_counter(options, origin, verified, self.counter)
    }

    fn assert_with_counter(
        &self,
        options: &Value,
        origin: &str,
        verified: bool,
        counter: u32,
    ) -> String {
        let rp_id = options["publicKey"]["rpId"].as_str().unwrap();
        let mut auth_data = Sha256::digest(rp_id.as_bytes()).to_vec();
        auth_data.push(0x01 | if verified { 0x04 } else { 0 });
        auth_data.extend(counter.to_be_bytes());
        let client_data = Self::client_data("webauthn.get", options, origin);
        let mut signed = auth_data.clone();
        signed.extend(Sha256::digest(&client_data));
        let signature = self.key.sign(&self.rng, &signed).unwrap();
        json!({
            "id": B64.encode(&self.credential_id),
            "rawId": B64.encode(&self.credential_id),
            "type": "public-key",
            "response": {
                "authenticatorData": B64.encode(&auth_data),
                "clientDataJSON": B64.encode(&client_data),
                "signature": B64.encode(signature.as_ref()),
                "userHandle": self.user_handle,
            },
            "extensions": {},
        })
        .to_string()
    }
}

/// A node whose public URL is `https://localhost:PORT`: an IP address cannot be a WebAuthn
/// RP ID (the relying party refuses to start with one), `localhost` can. Requests still go to
/// 127.0.0.1; only the RP ID and the origin the authenticator signs use the name.
async fn passkey_node() -> TestNode {
    let node = TestNode::start().await;
    set_setting(&node, "web.public_url", &origin(&node)).await;
    node
}

fn origin(node: &TestNode) -> String {
    node.base.replace("127.0.0.1", "localhost")
}

async fn post_form(
    node: &TestNode,
    client: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String) {
    let r = client.post(node.url(path)).form(form).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|_| panic!("JSON: {body}"))
}

/// A signed-in recipient (own password chosen) and the CSRF token of their profile.
async fn signed_in(node: &TestNode, address: &str) -> (reqwest::Client, String) {
    let r = provision(node, address).await;
    let client = logged_in(node, &r).await;
    let page = page_text(node, &client, "/profile").await;
    (client, hidden(&page, "csrf"))
}

/// Registers `auth`'s credential for the signed-in client; returns the finish answer.
async fn register(
    node: &TestNode,
    client: &reqwest::Client,
    csrf: &str,
    auth: &mut SoftAuthenticator,
    name: &str,
) -> (u16, String) {
    let (status, body) = post_form(
        node,
        client,
        "/profile/passkeys/register/start",
        &[("csrf", csrf), ("current", NEW_PASSWORD)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let started = json_of(&body);
    let credential = auth.register(&started["options"], &origin(node), true);
    post_form(
        node,
        client,
        "/profile/passkeys/register/finish",
        &[
            ("csrf", csrf),
            ("ceremony", started["ceremony"].as_str().unwrap()),
            ("credential", &credential),
            ("name", name),
        ],
    )
    .await
}

async fn login_start(node: &TestNode, client: &reqwest::Client) -> (String, Value) {
    let (status, body) = post_form(node, client, "/login/passkey/start", &[]).await;
    assert_eq!(status, 200, "{body}");
    let started = json_of(&body);
    (
        started["ceremony"].as_str().unwrap().to_string(),
        started["options"].clone(),
    )
}

async fn login_finish(
    node: &TestNode,
    client: &reqwest::Client,
    ceremony: &str,
    credential: &str,
    next: &str,
) -> reqwest::Response {
    client
        .post(node.url("/login/passkey/finish"))
        .form(&[
            ("ceremony", ceremony),
            ("credential", credential),
            ("next", next),
        ])
        .send()
        .await
        .unwrap()
}

async fn account_id_of(node: &TestNode, address: &str) -> String {
    node.node
        .store
        .account_by_address(address)
        .await
        .unwrap()
        .unwrap()
        .id
}

#[tokio::test]
async fn a_registered_passkey_alone_signs_in_once_per_answer_with_user_verification() {
    let node = passkey_node().await;
    let address = "holder@example.com";
    let (client, csrf) = signed_in(&node, address).await;
    let id = account_id_of(&node, address).await;

    // Registration needs the current password; a wrong one starts nothing.
    let (status, body) = post_form(
        &node,
        &client,
        "/profile/passkeys/register/start",
        &[("csrf", &csrf), ("current", "not the password")],
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        json_of(&body)["error"]
            .as_str()
            .unwrap()
            .contains("current password")
    );

    // The options: this portal as RP, user verification and a discoverable credential
    // required, the account id as user handle.
    let (status, body) = post_form(
        &node,
        &client,
        "/profile/passkeys/register/start",
        &[("csrf", &csrf), ("current", NEW_PASSWORD)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let started = json_of(&body);
    let pk = &started["options"]["publicKey"];
    assert_eq!(pk["rp"]["id"], "localhost");
    assert_eq!(pk["authenticatorSelection"]["userVerification"], "required");
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "required");
    let handle = B64.decode(pk["user"]["id"].as_str().unwrap()).unwrap();
    assert_eq!(uuid::Uuid::from_slice(&handle).unwrap().to_string(), id);

    // An answer without user verification is refused; the ceremony is used up either way.
    let mut auth = SoftAuthenticator::new();
    let unverified = auth.register(&started["options"], &origin(&node), false);
    let ceremony = started["ceremony"].as_str().unwrap();
    let finish = |credential: String| {
        let client = client.clone();
        let csrf = csrf.clone();
        let node = &node;
        async move {
            post_form(
                node,
                &client,
                "/profile/passkeys/register/finish",
                &[
                    ("csrf", &csrf),
                    ("ceremony", ceremony),
                    ("credential", &credential),
                    ("name", "Laptop"),
                ],
            )
            .await
        }
    };
    let (status, _) = finish(unverified).await;
    assert_eq!(status, 400);
    let verified = auth.register(&started["options"], &origin(&node), true);
    let (status, body) = finish(verified).await;
    assert_eq!(status, 400, "a finished ceremony cannot be finished again");
    assert!(
        json_of(&body)["error"]
            .as_str()
            .unwrap()
            .contains("already used")
    );
    assert!(node.node.store.passkeys_of(&id).await.unwrap().is_empty());

    // A fresh ceremony registers it; the holder gets a notice, the profile lists it.
    let before = node.sink.received().len();
    let (status, body) = register(&node, &client, &csrf, &mut auth, "Work laptop").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json_of(&body)["redirect"],
        "/profile?saved=passkey#passkeys"
    );
    let notice = wait_for_kind(&node, "notice", address, before).await;
    assert!(
        mail_text(&notice).contains("A passkey was added"),
        "{}",
        mail_text(&notice)
    );
    let profile = page_text(&node, &client, "/profile").await;
    assert!(profile.contains("Work laptop"));
    assert!(profile.contains("last used: never"));
    // The same credential cannot be registered twice.
    let (status, _) = register(&node, &client, &csrf, &mut auth, "Again").await;
    assert_eq!(status, 400);

    // Passwordless sign-in, from a browser without any session: the options name no
    // credential, so the authenticator picks the account.
    let browser = node.client();
    let (ceremony, options) = login_start(&node, &browser).await;
    assert!(
        options["publicKey"]["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty)
    );
    assert_eq!(options["publicKey"]["userVerification"], "required");
    assert!(options.get("mediation").is_none());
    let answer = auth.assert(&options, &origin(&node), true);
    let next = "/profile";
    let r = login_finish(&node, &browser, &ceremony, &answer, next).await;
    assert_eq!(r.status(), 200);
    assert!(set_cookie_token(&r, "__Host-sealpost").is_some());
    assert_eq!(json_of(&r.text().await.unwrap())["redirect"], next);
    assert_eq!(get(&node, &browser, "/profile").await.status(), 200);

    // The same answer again (same ceremony): refused, no session.
    let replay = raw_client();
    let r = login_finish(&node, &replay, &ceremony, &answer, next).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    let refused_body = r.text().await.unwrap();
    // The same answer to a new ceremony: its challenge is not the new one.
    let (ceremony2, _) = login_start(&node, &replay).await;
    let r = login_finish(&node, &replay, &ceremony2, &answer, next).await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.text().await.unwrap(),
        refused_body,
        "one answer for every refusal"
    );
    // No user verification: refused.
    let (ceremony3, options3) = login_start(&node, &replay).await;
    let unverified = auth.assert(&options3, &origin(&node), false);
    assert_eq!(
        login_finish(&node, &replay, &ceremony3, &unverified, next)
            .await
            .status(),
        401
    );
    // A counter that did not move on (a cloned authenticator): refused.
    let (ceremony4, options4) = login_start(&node, &replay).await;
    let cloned = auth.assert_with_counter(&options4, &origin(&node), true, 1);
    assert_eq!(
        login_finish(&node, &replay, &ceremony4, &cloned, next)
            .await
            .status(),
        401
    );
    // Another origin (a phishing site relaying the ceremony): refused.
    let (ceremony5, options5) = login_start(&node, &replay).await;
    let phished = auth.assert(&options5, "https://evil.example", true);
    assert_eq!(
        login_finish(&node, &replay, &ceremony5, &phished, next)
            .await
            .status(),
        401
    );
    // An unknown credential answers exactly like a refused one.
    let (ceremony6, options6) = login_start(&node, &replay).await;
    let mut stranger = SoftAuthenticator::new();
    stranger.user_handle = Some(B64.encode(uuid::Uuid::new_v4().as_bytes()));
    let r = login_finish(
        &node,
        &replay,
        &ceremony6,
        &stranger.assert(&options6, &origin(&node), true),
        next,
    )
    .await;
    assert_eq!(r.status(), 401);
    assert_eq!(r.text().await.unwrap(), refused_body);

    // The use was recorded, and the audit trail names the method.
    let stored = node.node.store.passkeys_of(&id).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].counter, 1);
    assert!(stored[0].last_used_at.is_some());
    let events = node.node.store.recent_audit(200).await.unwrap();
    let has = |action: &str, detail: Option<&str>| {
        events.iter().any(|e| {
            e.action == action
                && e.subject.as_deref() == Some(id.as_str())
                && (detail.is_none() || e.detail.as_deref() == detail)
        })
    };
    assert!(has("portal.passkey_added", None));
    assert!(has("portal.login", Some("passkey")));
    assert!(has("portal.login_failed", Some("passkey")));

    // A disabled account cannot sign in with its passkey.
    node.node
        .store
        .set_status(&id, sealpost_store::AccountStatus::Disabled)
        .await
        .unwrap();
    let (ceremony7, options7) = login_start(&node, &replay).await;
    let r = login_finish(
        &node,
        &replay,
        &ceremony7,
        &auth.assert(&options7, &origin(&node), true),
        next,
    )
    .await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().get("set-cookie").is_none());
    node.stop().await;
}

#[tokio::test]
async fn passkey_sign_in_honours_next_and_replaces_a_planted_session() {
    let node = passkey_node().await;
    let address = "next@example.com";
    let r = provision(&node, address).await;
    let client = logged_in(&node, &r).await;
    let page = page_text(&node, &client, "/profile").await;
    let csrf = hidden(&page, "csrf");
    let mut auth = SoftAuthenticator::new();
    assert_eq!(
        register(&node, &client, &csrf, &mut auth, "Phone").await.0,
        200
    );

    // The message link of secure.htm: after the passkey, the reader lands on the message.
    let browser = node.client();
    let open = location(&node.post_open(&browser, &r.payload).await);
    assert!(open.starts_with("/open/"), "{open}");
    let (ceremony, options) = login_start(&node, &browser).await;
    let answer = auth.assert(&options, &origin(&node), true);
    let resp = login_finish(&node, &browser, &ceremony, &answer, &open).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        json_of(&resp.text().await.unwrap())["redirect"],
        open.as_str()
    );
    let message = get(&node, &browser, &open).await;
    assert_eq!(message.status(), 200);
    assert!(message.text().await.unwrap().contains("Dear customer"));
    // A crafted next is not followed.
    let (ceremony, options) = login_start(&node, &browser).await;
    let answer = auth.assert(&options, &origin(&node), true);
    let resp = login_finish(&node, &browser, &ceremony, &answer, "//evil.example/").await;
    assert_eq!(json_of(&resp.text().await.unwrap())["redirect"], "/");

    // A cookie planted before the sign-in never becomes the session.
    let planted = "planted-session-token";
    let raw = raw_client();
    let (ceremony, options) = login_start(&node, &raw).await;
    let resp = raw
        .post(node.url("/login/passkey/finish"))
        .header("cookie", format!("__Host-sealpost={planted}"))
        .form(&[
            ("ceremony", ceremony.as_str()),
            ("credential", &auth.assert(&options, &origin(&node), true)),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = resp
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(!cookie.contains(planted), "{cookie}");
    node.stop().await;
}

#[tokio::test]
async fn passkey_routes_need_a_session_a_token_and_for_removal_the_password() {
    let node = passkey_node().await;
    let (client, csrf) = signed_in(&node, "owner@example.com").await;
    let mut auth = SoftAuthenticator::new();
    assert_eq!(
        register(&node, &client, &csrf, &mut auth, "Key").await.0,
        200
    );
    let id = account_id_of(&node, "owner@example.com").await;
    let passkey = node.node.store.passkeys_of(&id).await.unwrap()[0]
        .id
        .clone();
    let rename = format!("/profile/passkeys/{passkey}/rename");
    let remove = format!("/profile/passkeys/{passkey}/remove");

    // Without a session, with a wrong token, or cross-site: refused, nothing changes.
    let anonymous = raw_client();
    for path in [
        "/profile/passkeys/register/start",
        "/profile/passkeys/register/finish",
        rename.as_str(),
        remove.as_str(),
    ] {
        let (status, _) = post_form(
            &node,
            &anonymous,
            path,
            &[("csrf", &csrf), ("current", NEW_PASSWORD), ("name", "x")],
        )
        .await;
        assert_eq!(status, 403, "{path} without a session");
        let (status, _) = post_form(
            &node,
            &client,
            path,
            &[("csrf", "forged"), ("current", NEW_PASSWORD), ("name", "x")],
        )
        .await;
        assert_eq!(status, 403, "{path} with a wrong token");
        let status = client
            .post(node.url(path))
            .header("sec-fetch-site", "cross-site")
            .form(&[
                ("csrf", csrf.as_str()),
                ("current", NEW_PASSWORD),
                ("name", "x"),
            ])
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 403, "{path} cross-site");
    }
    for path in ["/login/passkey/start", "/login/passkey/finish"] {
        let status = anonymous
            .post(node.url(path))
            .header("sec-fetch-site", "cross-site")
            .form(&[("ceremony", "x")])
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 403, "{path} cross-site");
    }
    assert_eq!(
        node.node.store.passkeys_of(&id).await.unwrap()[0].name,
        "Key"
    );

    // Another account's passkey cannot be renamed or removed.
    let (other, other_csrf) = signed_in(&node, "other@example.com").await;
    let (status, _) = post_form(
        &node,
        &other,
        &rename,
        &[("csrf", &other_csrf), ("name", "Mine")],
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = post_form(
        &node,
        &other,
        &remove,
        &[("csrf", &other_csrf), ("current", NEW_PASSWORD)],
    )
    .await;
    assert_eq!(status, 404);

    // Renaming needs the session only; removing needs the current password.
    let (status, _) = post_form(
        &node,
        &client,
        &rename,
        &[("csrf", &csrf), ("name", "Yubikey")],
    )
    .await;
    assert_eq!(status, 303);
    let (status, _) = post_form(
        &node,
        &client,
        &remove,
        &[("csrf", &csrf), ("current", "wrong password")],
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = post_form(&node, &client, &remove, &[("csrf", &csrf)]).await;
    assert_eq!(status, 400, "no password is a wrong password");
    let stored = node.node.store.passkeys_of(&id).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].name, "Yubikey");
    let before = node.sink.received().len();
    // A remembered device is forgotten with the factor change.
    let now = sealpost_store::unix_now();
    node.node
        .store
        .insert_remembered_device(&"d".repeat(64), &id, "test browser", now, now + 3600)
        .await
        .unwrap();
    let (status, _) = post_form(
        &node,
        &client,
        &remove,
        &[("csrf", &csrf), ("current", NEW_PASSWORD)],
    )
    .await;
    assert_eq!(status, 303);
    assert!(node.node.store.passkeys_of(&id).await.unwrap().is_empty());
    assert!(
        node.node
            .store
            .remembered_devices(&id, now)
            .await
            .unwrap()
            .is_empty(),
        "removing a passkey forgets the remembered devices"
    );
    let notice = wait_for_kind(&node, "notice", "owner@example.com", before).await;
    assert!(mail_text(&notice).contains("A passkey was removed"));

    // A removed passkey signs nobody in.
    let (ceremony, options) = login_start(&node, &anonymous).await;
    let r = login_finish(
        &node,
        &anonymous,
        &ceremony,
        &auth.assert(&options, &origin(&node), true),
        "/",
    )
    .await;
    assert_eq!(r.status(), 401);
    node.stop().await;
}

#[tokio::test]
async fn passkey_sign_in_is_rate_limited_per_client_like_the_password() {
    let node = passkey_node().await;
    let c = raw_client();
    let mut limited = false;
    for _ in 0..200 {
        let r = c
            .post(node.url("/login/passkey/start"))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            limited = true;
            break;
        }
        assert_eq!(r.status(), 200);
    }
    assert!(limited, "the per-client limit of /login applies");
    node.stop().await;
}

/// Issue 15: a passkey is the second factor after a password, and satisfies a domain that
/// requires one (no authenticator app has to be enrolled); only the pending account's own
/// passkey completes the sign-in.
#[tokio::test]
async fn a_passkey_completes_a_password_sign_in_where_a_second_factor_is_required() {
    let node = passkey_node().await;
    let address = "zweiter@pflicht.example";
    let (client, csrf) = signed_in(&node, address).await;
    let mut own = SoftAuthenticator::new();
    assert_eq!(
        register(&node, &client, &csrf, &mut own, "Phone").await.0,
        200
    );
    let (other_client, other_csrf) = signed_in(&node, "fremd@example.com").await;
    let mut foreign = SoftAuthenticator::new();
    assert_eq!(
        register(&node, &other_client, &other_csrf, &mut foreign, "Other")
            .await
            .0,
        200
    );
    set_setting(
        &node,
        "recipients.second_factor@pflicht.example",
        "required",
    )
    .await;

    let browser = node.client();
    let r = node.login(&browser, address, NEW_PASSWORD).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        location(&r),
        "/login/second",
        "the passkey counts: no enrolment"
    );
    let page = page_text(&node, &browser, "/login/second").await;
    assert!(
        page.contains("data-start=\"/login/second/passkey/start\""),
        "{page}"
    );
    assert!(
        !page.contains("name=\"code\""),
        "no app enrolled: no code form\n{page}"
    );
    // Not signed in yet.
    assert_ne!(get(&node, &browser, "/profile").await.status(), 200);

    let start = |client: &reqwest::Client| {
        let client = client.clone();
        let node = &node;
        async move {
            let (status, body) = post_form(node, &client, "/login/second/passkey/start", &[]).await;
            assert_eq!(status, 200, "{body}");
            json_of(&body)
        }
    };
    let finish = |client: &reqwest::Client, ceremony: String, credential: String| {
        let client = client.clone();
        let node = &node;
        async move {
            post_form(
                node,
                &client,
                "/login/second/passkey/finish",
                &[("ceremony", &ceremony), ("credential", &credential)],
            )
            .await
        }
    };
    // Another account's passkey does not complete this sign-in, and the step stays.
    let started = start(&browser).await;
    let answer = foreign.assert(&started["options"], &origin(&node), true);
    let (status, _) = finish(
        &browser,
        started["ceremony"].as_str().unwrap().to_string(),
        answer,
    )
    .await;
    assert_eq!(status, 401);
    assert_ne!(get(&node, &browser, "/profile").await.status(), 200);
    // Its own passkey does.
    let started = start(&browser).await;
    let answer = own.assert(&started["options"], &origin(&node), true);
    let (status, body) = finish(
        &browser,
        started["ceremony"].as_str().unwrap().to_string(),
        answer,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["redirect"], "/");
    assert_eq!(get(&node, &browser, "/profile").await.status(), 200);
    let audit = node.node.store.recent_audit(50).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.detail.as_deref() == Some("password+passkey")),
        "{audit:?}"
    );
    // Without a pending sign-in the step's endpoints refuse.
    let stranger = node.client();
    let (status, _) = post_form(&node, &stranger, "/login/second/passkey/start", &[]).await;
    assert_eq!(status, 403);

    // The admin sees the passkey (a count, no secret) and a reset of the second factors
    // removes it (a lost phone).
    let (admin, _) = admin_session(&node, "root").await;
    let id = account_id_of(&node, address).await;
    let page = page_text(&node, &admin, &format!("/admin/users/{id}")).await;
    assert!(page.contains("<dd id=\"passkeys\">1</dd>"), "{page}");
    let r = admin
        .post(node.url(&format!("/admin/users/{id}/reset-factors")))
        .form(&[("csrf", csrf_of(&page).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(node.node.store.passkeys_of(&id).await.unwrap().is_empty());
    node.stop().await;
}
