//! Recipients' second factor (issue 15 items 3, 5, 7): enrolment in the profile, the
//! two-step sign-in, a domain that requires it, single-use codes, recovery codes, remembered
//! devices, the lockout, the admin's reset, notices, and re-authentication for every change.

#[allow(unused_imports)]
use super::*;

/// A TOTP code of `secret` at Unix time `t`, as an authenticator app computes it.
fn totp_at(secret: &str, t: i64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_string())
        .to_bytes()
        .unwrap();
    totp_rs::TOTP::new(totp_rs::Algorithm::SHA1, 6, 1, 30, bytes)
        .unwrap()
        .generate(t as u64)
}

fn now() -> i64 {
    sealpost_store::unix_now()
}

async fn post_form(
    node: &TestNode,
    client: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client.post(node.url(path)).form(form).send().await.unwrap()
}

async fn account_id(node: &TestNode, address: &str) -> String {
    node.node
        .store
        .account_by_address(address)
        .await
        .unwrap()
        .unwrap()
        .id
}

/// Waits for a notice to `to` whose text contains `says` (notices of earlier changes may
/// still be on their way, so the newest mail is not necessarily this one).
async fn wait_for_notice(node: &TestNode, to: &str, says: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let found = node
            .sink
            .received()
            .into_iter()
            .filter(|m| kind_of(m) == "notice" && m.rcpt_to.iter().any(|r| r == to))
            .map(|m| mail_text(&m))
            .find(|t| t.contains(says));
        if let Some(text) = found {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no notice to {to} saying {says:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The text of `<code … id="totp-secret">SECRET</code>`.
fn shown_secret(page: &str) -> String {
    let marker = "id=\"totp-secret\">";
    let start = page.find(marker).expect("secret shown") + marker.len();
    let end = page[start..].find('<').unwrap() + start;
    page[start..end].to_string()
}

/// The recovery codes of the codes page.
fn shown_codes(page: &str) -> Vec<String> {
    page.split("<li><code>")
        .skip(1)
        .map(|s| s[..s.find('<').unwrap()].to_string())
        .collect()
}

/// Enrols an authenticator from the profile of a signed-in `client`; returns the secret and
/// the recovery codes. The confirming code is of the current step.
async fn enrol_in_profile(node: &TestNode, client: &reqwest::Client) -> (String, Vec<String>) {
    let profile = page_text(node, client, "/profile").await;
    let csrf = csrf_of(&profile);
    let r = post_form(
        node,
        client,
        "/profile/totp",
        &[("csrf", &csrf), ("current", NEW_PASSWORD)],
    )
    .await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    let secret = shown_secret(&page);
    let r = post_form(
        node,
        client,
        "/profile/totp/confirm",
        &[("csrf", &csrf), ("code", &totp_at(&secret, now()))],
    )
    .await;
    assert_eq!(r.status(), 200);
    let codes = shown_codes(&r.text().await.unwrap());
    (secret, codes)
}

/// A password sign-in with a fresh client: its response and the client.
async fn first_step(node: &TestNode, address: &str) -> (reqwest::Client, reqwest::Response) {
    let client = node.client();
    let r = node.login(&client, address, NEW_PASSWORD).await;
    (client, r)
}

async fn second_step(
    node: &TestNode,
    client: &reqwest::Client,
    code: &str,
    remember: bool,
) -> reqwest::Response {
    let mut form = vec![("code", code)];
    if remember {
        form.push(("remember", "1"));
    }
    post_form(node, client, "/login/second", &form).await
}

#[tokio::test]
async fn optional_enrolment_then_password_and_code_and_a_code_works_once() {
    let node = TestNode::start().await;
    let r = provision(&node, "totp@example.com").await;
    let client = logged_in(&node, &r).await;
    let profile = page_text(&node, &client, "/profile").await;
    assert!(
        profile.contains("id=\"totp-enrol\""),
        "the profile offers it"
    );

    let csrf = csrf_of(&profile);
    let r1 = post_form(
        &node,
        &client,
        "/profile/totp",
        &[("csrf", &csrf), ("current", NEW_PASSWORD)],
    )
    .await;
    assert_eq!(r1.status(), 200);
    assert_eq!(r1.headers()["cache-control"], "no-store");
    let page = r1.text().await.unwrap();
    // The QR code is drawn here, as inline SVG, with no script and no outside resource.
    assert!(page.contains("<svg class=\"qr\""), "inline SVG QR code");
    assert!(!page.contains("<?xml"));
    assert!(!page.contains("<script"));
    for outside in ["src=\"http", "href=\"http", "url(http", "action=\"http"] {
        assert!(!page.contains(outside), "no outside resource: {outside}");
    }
    let secret = shown_secret(&page);
    assert_eq!(secret.len(), 32, "160-bit base32 seed: {secret}");

    // The seed is stored wrapped under the master key, never in clear.
    let id = account_id(&node, &r.address).await;
    let state = node.node.store.totp_state(&id).await.unwrap();
    let pending = state.pending_wrapped.clone().expect("pending seed stored");
    assert!(!pending.windows(8).any(|w| w == &secret.as_bytes()[..8]));
    assert!(!state.enrolled(), "not enrolled before the first code");

    // A wrong code does not enrol; the right one does and shows ten recovery codes.
    let wrong = if totp_at(&secret, now()) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let bad = post_form(
        &node,
        &client,
        "/profile/totp/confirm",
        &[("csrf", &csrf), ("code", wrong)],
    )
    .await;
    assert_eq!(bad.status(), 400);
    assert_eq!(
        shown_secret(&bad.text().await.unwrap()),
        secret,
        "same seed again"
    );
    let confirm_code = totp_at(&secret, now());
    let ok = post_form(
        &node,
        &client,
        "/profile/totp/confirm",
        &[("csrf", &csrf), ("code", &confirm_code)],
    )
    .await;
    assert_eq!(ok.status(), 200);
    let codes = shown_codes(&ok.text().await.unwrap());
    assert_eq!(codes.len(), 10, "{codes:?}");
    let state = node.node.store.totp_state(&id).await.unwrap();
    let wrapped = state.secret_wrapped.expect("enrolled");
    assert!(!wrapped.windows(8).any(|w| w == &secret.as_bytes()[..8]));
    assert!(state.pending_wrapped.is_none());
    // The holder is told; the notice holds no secret.
    let text = wait_for_notice(&node, &r.address, "authenticator app was set up").await;
    assert!(!text.contains(&secret) && !text.contains(&codes[0]));
    let profile = page_text(&node, &client, "/profile").await;
    assert!(profile.contains("Unused recovery codes: 10"), "{profile}");

    // Sign-in now takes two steps: the password gives no session, only the code step.
    let (c2, resp) = first_step(&node, &r.address).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/login/second");
    assert!(set_cookie_token(&resp, "__Host-sealpost-pending").is_some());
    let portal = set_cookie_token(&resp, "__Host-sealpost").unwrap_or_default();
    assert!(portal.is_empty(), "no session after the first factor alone");
    let resp = get(&node, &c2, "/profile").await;
    assert_eq!(resp.status(), 303, "the pending state opens no page");
    assert!(location(&resp).starts_with("/login"));
    let form = get(&node, &c2, "/login/second").await;
    assert_eq!(form.status(), 200);
    // The confirming code's step is used up: the same code is refused.
    let reused = second_step(&node, &c2, &confirm_code, false).await;
    assert_eq!(reused.status(), 401, "a code works once");
    let next = totp_at(&secret, now() + 30);
    let resp = second_step(&node, &c2, &next, false).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/");
    assert!(set_cookie_token(&resp, "__Host-sealpost").is_some());
    assert_eq!(get(&node, &c2, "/profile").await.status(), 200);
    // The same code in another sign-in (another node would share the database) is refused.
    let (c3, _) = first_step(&node, &r.address).await;
    let again = second_step(&node, &c3, &next, false).await;
    assert_eq!(again.status(), 401, "a code cannot be used twice");
    // The audit log records both factors of the sign-in.
    let events = node.node.store.recent_audit(50).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.action == "portal.login" && e.detail.as_deref() == Some("password+totp")),
        "sign-in method audited"
    );
    node.stop().await;
}

#[tokio::test]
async fn recovery_codes_sign_in_once_each_and_the_holder_is_told() {
    let node = TestNode::start().await;
    let r = provision(&node, "codes@example.com").await;
    let client = logged_in(&node, &r).await;
    let (_, codes) = enrol_in_profile(&node, &client).await;
    let (c2, _) = first_step(&node, &r.address).await;
    let typed = codes[0].to_uppercase().replace('-', " ");
    let resp = second_step(&node, &c2, &typed, false).await;
    assert_eq!(resp.status(), 303, "a recovery code stands in for the app");
    wait_for_notice(&node, &r.address, "recovery code was used").await;
    let (c3, _) = first_step(&node, &r.address).await;
    assert_eq!(
        second_step(&node, &c3, &codes[0], false).await.status(),
        401,
        "a recovery code works once"
    );
    assert_eq!(
        second_step(&node, &c3, &codes[1], false).await.status(),
        303
    );
    let id = account_id(&node, &r.address).await;
    assert_eq!(
        node.node
            .store
            .unused_factor_recovery_codes(&id)
            .await
            .unwrap(),
        8
    );
    let events = node.node.store.recent_audit(50).await.unwrap();
    assert!(events.iter().any(
        |e| e.action == "portal.login" && e.detail.as_deref() == Some("password+recovery-code")
    ));
    node.stop().await;
}

#[tokio::test]
async fn a_domain_that_requires_it_enrols_before_anything_else() {
    let node = TestNode::start().await;
    set_setting(&node, "recipients.second_factor@must.example", "required").await;
    let r = provision(&node, "new@must.example").await;
    let client = node.client();
    let resp = node.login(&client, &r.address, &r.password).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/login/second/enrol");
    // Nothing else opens before the enrolment: not the welcome page, not the profile.
    for path in ["/welcome?next=/", "/profile", "/login/second"] {
        let resp = get(&node, &client, path).await;
        assert_eq!(resp.status(), 303, "{path}");
        assert_ne!(location(&resp), "/", "{path}");
        assert!(location(&resp).starts_with("/login"), "{path}");
    }
    let page = page_text(&node, &client, "/login/second/enrol").await;
    assert!(page.contains("requires a second factor"), "{page}");
    assert!(page.contains("<svg class=\"qr\""));
    let secret = shown_secret(&page);
    let resp = post_form(
        &node,
        &client,
        "/login/second/enrol",
        &[("code", &totp_at(&secret, now()))],
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(set_cookie_token(&resp, "__Host-sealpost").is_some());
    let page = resp.text().await.unwrap();
    assert_eq!(shown_codes(&page).len(), 10);
    // Then the generated password is replaced, as always.
    let next = extract_attr(&page, "id=\"codes-continue\" href=\"").unwrap();
    assert!(next.starts_with("/welcome"), "{next}");
    complete_first_login(&node, &client, NEW_PASSWORD).await;
    assert_eq!(get(&node, &client, "/profile").await.status(), 200);
    // Another account of an optional domain signs in with the password alone.
    let o = provision(&node, "free@example.com").await;
    let c = node.client();
    let resp = node.login(&c, &o.address, &o.password).await;
    assert!(location(&resp).starts_with("/welcome"));
    node.stop().await;
}

#[tokio::test]
async fn a_remembered_device_skips_the_second_factor_only() {
    let node = TestNode::start().await;
    let r = provision(&node, "device@example.com").await;
    let client = logged_in(&node, &r).await;
    let (secret, _) = enrol_in_profile(&node, &client).await;
    let (c2, _) = first_step(&node, &r.address).await;
    let resp = second_step(&node, &c2, &totp_at(&secret, now() + 30), true).await;
    assert_eq!(resp.status(), 303);
    let device = set_cookie_token(&resp, "__Host-sealpost-device").expect("device cookie");
    let sc: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let dc = sc
        .iter()
        .find(|c| c.starts_with("__Host-sealpost-device="))
        .unwrap();
    for attr in [
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=2592000",
    ] {
        assert!(dc.contains(attr), "{dc}");
    }
    let id = account_id(&node, &r.address).await;
    let devices = node
        .node
        .store
        .remembered_devices(&id, now())
        .await
        .unwrap();
    assert_eq!(devices.len(), 1);
    assert_ne!(devices[0].token_hash, device, "only the hash is stored");

    let with_device = |password: &'static str| {
        let c = raw_client();
        let url = node.url("/login");
        let cookie = format!("__Host-sealpost-device={device}");
        let address = r.address.clone();
        async move {
            c.post(url)
                .header("cookie", cookie)
                .form(&[
                    ("address", address.as_str()),
                    ("password", password),
                    ("next", "/"),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    // Password + device: a session at once. Wrong password + device: nothing.
    let resp = with_device(NEW_PASSWORD).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(location(&resp), "/");
    assert!(set_cookie_token(&resp, "__Host-sealpost").is_some());
    let resp = with_device("wrong password 1").await;
    assert_eq!(resp.status(), 401, "the device never skips the password");
    // The device is listed in the profile and a password change revokes it.
    let profile = page_text(&node, &client, "/profile").await;
    assert!(profile.contains("Forget this device"));
    let resp = post_form(
        &node,
        &client,
        "/profile/password",
        &[
            ("csrf", &csrf_of(&profile)),
            ("current", NEW_PASSWORD),
            ("password", "green boat 12 under bridges"),
            ("password2", "green boat 12 under bridges"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 303);
    let c = raw_client();
    let resp = c
        .post(node.url("/login"))
        .header("cookie", format!("__Host-sealpost-device={device}"))
        .form(&[
            ("address", r.address.as_str()),
            ("password", "green boat 12 under bridges"),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&resp),
        "/login/second",
        "revoked by the password change"
    );
    node.stop().await;
}

#[tokio::test]
async fn a_device_can_be_revoked_in_the_profile() {
    let node = TestNode::start().await;
    let r = provision(&node, "revoke@example.com").await;
    let client = logged_in(&node, &r).await;
    let (secret, _) = enrol_in_profile(&node, &client).await;
    let (c2, _) = first_step(&node, &r.address).await;
    let resp = second_step(&node, &c2, &totp_at(&secret, now() + 30), true).await;
    let device = set_cookie_token(&resp, "__Host-sealpost-device").unwrap();
    let profile = page_text(&node, &client, "/profile").await;
    let id = hidden(&profile, "device");
    let resp = post_form(
        &node,
        &client,
        "/profile/devices/revoke",
        &[("csrf", &csrf_of(&profile)), ("device", &id)],
    )
    .await;
    assert_eq!(resp.status(), 303);
    let c = raw_client();
    let resp = c
        .post(node.url("/login"))
        .header("cookie", format!("__Host-sealpost-device={device}"))
        .form(&[
            ("address", r.address.as_str()),
            ("password", NEW_PASSWORD),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&resp), "/login/second");
    node.stop().await;
}

#[tokio::test]
async fn wrong_second_factor_codes_lock_the_account() {
    let node = TestNode::start().await;
    set_setting(&node, "security.lockout_threshold", "3").await;
    let r = provision(&node, "guess@example.com").await;
    let client = logged_in(&node, &r).await;
    let (secret, _) = enrol_in_profile(&node, &client).await;
    let (c2, _) = first_step(&node, &r.address).await;
    let right = totp_at(&secret, now() + 30);
    let wrong = if right == "123456" {
        "654321"
    } else {
        "123456"
    };
    for _ in 0..3 {
        assert_eq!(second_step(&node, &c2, wrong, false).await.status(), 401);
    }
    let account = node
        .node
        .store
        .account_by_address(&r.address)
        .await
        .unwrap()
        .unwrap();
    assert!(account.locked_until.is_some_and(|t| t > now()), "locked");
    assert_eq!(
        second_step(&node, &c2, &right, false).await.status(),
        401,
        "a locked account is refused even with the right code"
    );
    node.stop().await;
}

#[tokio::test]
async fn every_factor_change_needs_the_current_password() {
    let node = TestNode::start().await;
    let r = provision(&node, "reauth@example.com").await;
    let client = logged_in(&node, &r).await;
    let id = account_id(&node, &r.address).await;
    let profile = page_text(&node, &client, "/profile").await;
    let csrf = csrf_of(&profile);
    for current in ["", "wrong password 1"] {
        let resp = post_form(
            &node,
            &client,
            "/profile/totp",
            &[("csrf", &csrf), ("current", current)],
        )
        .await;
        assert_eq!(resp.status(), 400);
        assert!(!resp.text().await.unwrap().contains("totp-secret"));
    }
    assert!(
        node.node
            .store
            .totp_state(&id)
            .await
            .unwrap()
            .pending_wrapped
            .is_none()
    );
    let (_, _) = enrol_in_profile(&node, &client).await;
    let profile = page_text(&node, &client, "/profile").await;
    let csrf = csrf_of(&profile);
    for path in ["/profile/totp/remove", "/profile/recovery-codes"] {
        let resp = post_form(
            &node,
            &client,
            path,
            &[("csrf", &csrf), ("current", "wrong password 1")],
        )
        .await;
        assert_eq!(resp.status(), 400, "{path}");
    }
    assert!(node.node.store.totp_state(&id).await.unwrap().enrolled());
    assert_eq!(
        node.node
            .store
            .unused_factor_recovery_codes(&id)
            .await
            .unwrap(),
        10
    );
    // With it: new codes, then removal; each mailed to the holder.
    let resp = post_form(
        &node,
        &client,
        "/profile/recovery-codes",
        &[("csrf", &csrf), ("current", NEW_PASSWORD)],
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(shown_codes(&resp.text().await.unwrap()).len(), 10);
    wait_for_notice(&node, &r.address, "New recovery codes").await;
    let resp = post_form(
        &node,
        &client,
        "/profile/totp/remove",
        &[("csrf", &csrf), ("current", NEW_PASSWORD)],
    )
    .await;
    assert_eq!(resp.status(), 303);
    assert!(!node.node.store.totp_state(&id).await.unwrap().enrolled());
    wait_for_notice(&node, &r.address, "authenticator app of your account").await;
    let (_, resp) = first_step(&node, &r.address).await;
    assert_eq!(location(&resp), "/", "the password alone again");
    node.stop().await;
}

#[tokio::test]
async fn an_admin_resets_the_second_factors_and_can_require_re_enrolment() {
    let node = TestNode::start().await;
    let r = provision(&node, "adminreset@example.com").await;
    let client = logged_in(&node, &r).await;
    let (secret, _) = enrol_in_profile(&node, &client).await;
    let id = account_id(&node, &r.address).await;
    let (admin, csrf) = admin_session(&node, "root").await;
    let page = page_text(&node, &admin, &format!("/admin/users/{id}")).await;
    assert!(page.contains("yes, since"), "TOTP shown as set");
    assert!(page.contains("id=\"recovery-left\">10<"));
    assert!(!page.contains(&secret), "never the secret");

    let resp = post_form(
        &node,
        &admin,
        &format!("/admin/users/{id}/reset-factors"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(resp.status(), 303);
    assert!(!node.node.store.totp_state(&id).await.unwrap().enrolled());
    assert_eq!(
        get(&node, &client, "/profile").await.status(),
        303,
        "sessions ended"
    );
    wait_for_notice(
        &node,
        &r.address,
        "An administrator reset the second factors",
    )
    .await;
    let (_, resp) = first_step(&node, &r.address).await;
    assert_eq!(location(&resp), "/");

    // Require re-enrolment: the next sign-in enrols before anything else.
    let resp = post_form(
        &node,
        &admin,
        &format!("/admin/users/{id}/require-reenrol"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(resp.status(), 303);
    let (_, resp) = first_step(&node, &r.address).await;
    assert_eq!(location(&resp), "/login/second/enrol");
    let events = node.node.store.recent_audit(50).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.action == "admin.second_factors_reset")
    );
    assert!(
        events
            .iter()
            .any(|e| e.action == "admin.second_factor_reenrol_required")
    );
    // Without the CSRF token nothing happens.
    let resp = post_form(
        &node,
        &admin,
        &format!("/admin/users/{id}/reset-factors"),
        &[("csrf", "forged")],
    )
    .await;
    assert!(resp.status().is_client_error());
    node.stop().await;
}

#[tokio::test]
async fn a_master_key_rotation_rewraps_the_totp_seeds() {
    use sealpost_core::KeyRing;
    use sealpost_crypto::MasterKey;
    let node = TestNode::start().await;
    let r = provision(&node, "rotate@example.com").await;
    let client = logged_in(&node, &r).await;
    let (secret, _) = enrol_in_profile(&node, &client).await;
    let id = account_id(&node, &r.address).await;
    let copy = |k: &MasterKey| MasterKey::from_base64(&k.to_base64()).unwrap();
    let old = copy(node.node.keys.master());
    let new = MasterKey::generate();
    let ring = KeyRing::with_previous(copy(&new), Some(old));
    let report = ring.rewrap_all(&node.node.store, &new, 1).await.unwrap();
    assert!(report.rewrapped >= 2, "{report:?}");
    let only_new = KeyRing::new(copy(&new));
    let state = node.node.store.totp_state(&id).await.unwrap();
    let seed = only_new
        .unwrap_factor_secret(&id, &state.secret_wrapped.unwrap())
        .unwrap();
    assert_eq!(seed.as_slice(), secret.as_bytes());
    // Run again: nothing left to do.
    let again = ring.rewrap_all(&node.node.store, &new, 1).await.unwrap();
    assert_eq!(again.rewrapped, 0);
    node.stop().await;
}
