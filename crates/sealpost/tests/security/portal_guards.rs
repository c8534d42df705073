//! Request guards, redirects, session lifetime, admin listener and TOTP.

#[allow(unused_imports)]
use super::*;

// ---------------------------------------------------------------------------------------
// Finding 6: `next` is an allow-list of internal paths.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn next_targets_outside_the_allow_list_redirect_home() {
    let node = TestNode::start().await;
    let r = provision(&node, "next-target@example.com").await;
    // The first sign-in replaces the generated password; afterwards `next` is followed.
    let _ = logged_in(&node, &r).await;
    for bad in [
        "/%09/evil.example",
        "/\t/evil.example",
        "//evil.example/",
        "/\\evil.example",
        "https://evil.example/",
        "/profile\r\nSet-Cookie: planted=1",
        "/admin",
    ] {
        let client = node.client();
        let resp = client
            .post(node.url("/login"))
            .form(&[
                ("address", r.address.as_str()),
                ("password", NEW_PASSWORD),
                ("next", bad),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "sign-in with next={bad:?}");
        assert_eq!(location(&resp), "/", "next={bad:?}");
        // Signed in, the sign-in page forwards to `next` at once: also only to known paths.
        let resp = client
            .get(node.url(&format!("/login?next={}", pct_encode(bad))))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303, "GET /login?next={bad:?}");
        assert_eq!(location(&resp), "/", "GET next={bad:?}");
    }
    // Known destinations still work.
    let client = node.client();
    let resp = client
        .post(node.url("/login"))
        .form(&[
            ("address", r.address.as_str()),
            ("password", NEW_PASSWORD),
            ("next", "/profile"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&resp), "/profile");
    node.stop().await;
}

// ---------------------------------------------------------------------------------------
// Finding 16: absolute session lifetime, validity checked on every request.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_session_ends_at_its_absolute_lifetime_even_while_in_use() {
    use sealpost_core::sessions::{Principal, resume_reader_at, start};
    let node = TestNode::start().await;
    let r = provision(&node, "absolute@example.com").await;
    let store = &node.node.store;
    let settings = node.node.settings.get();
    let account = store.account_by_address(&r.address).await.unwrap().unwrap();
    let started = start(
        store,
        &settings,
        &Principal {
            kind: sealpost_store::SessionKind::Portal,
            id: &account.id,
            audit_actor: &account.address,
        },
        None,
        "192.0.2.7",
    )
    .await
    .unwrap();
    assert_eq!(settings.session_absolute_secs, 12 * 3600);
    let t0 = sealpost_store::unix_now();
    // Used every 20 minutes (never idle), it lives until 12 hours after sign-in...
    let mut t = t0;
    while t < t0 + 12 * 3600 - 1200 {
        t += 1200;
        assert!(
            resume_reader_at(store, &settings, &started.token, t)
                .await
                .unwrap()
                .is_some(),
            "in use at +{}s",
            t - t0
        );
    }
    // ...and not a second longer (13 hours in use was valid before).
    assert!(
        resume_reader_at(store, &settings, &started.token, t0 + 12 * 3600 + 1)
            .await
            .unwrap()
            .is_none()
    );
    // Its stored expiry never passed the absolute end, so housekeeping removes it then.
    assert!(store.purge_expired(t0 + 12 * 3600).await.unwrap() >= 1);
    node.stop().await;
}

#[tokio::test]
async fn an_account_past_its_validity_or_disabled_loses_its_session_at_once() {
    let node = TestNode::start().await;
    let store = &node.node.store;
    let r = provision(&node, "validity@example.com").await;
    let client = logged_in(&node, &r).await;
    assert_eq!(get(&node, &client, "/profile").await.status(), 200);
    let id = store
        .account_by_address(&r.address)
        .await
        .unwrap()
        .unwrap()
        .id;
    // Past its validity (an admin set it, or it lapsed while the session was open).
    store
        .set_valid_until(&id, Some(sealpost_store::unix_now() - 1))
        .await
        .unwrap();
    let resp = get(&node, &client, "/").await;
    assert_eq!(resp.status(), 303, "validity is checked on every request");
    assert_eq!(location(&resp), "/login");
    store.set_valid_until(&id, None).await.unwrap();
    assert_eq!(
        get(&node, &client, "/profile").await.status(),
        303,
        "the session ended; it does not come back"
    );

    // Disabled: the same.
    let client = node.client();
    assert_eq!(
        node.login(&client, &r.address, NEW_PASSWORD).await.status(),
        303
    );
    assert_eq!(get(&node, &client, "/").await.status(), 200);
    store
        .set_status(&id, sealpost_store::AccountStatus::Disabled)
        .await
        .unwrap();
    assert_eq!(get(&node, &client, "/").await.status(), 303);
    node.stop().await;
}

// ---------------------------------------------------------------------------------------
// `/open/{t}/sent` needs a reader past the forced password change.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_sent_page_sends_a_forced_password_change_to_welcome() {
    let node = TestNode::start().await;
    let r = provision(&node, "sent-detour@example.com").await;
    let client = node.client();
    // Signed in with the generated password, not yet replaced.
    let resp = node.login(&client, &r.address, &r.password).await;
    assert!(location(&resp).starts_with("/welcome"));
    let open = location(&node.post_open(&client, &r.payload).await);
    assert!(open.starts_with("/open/"), "{open}");
    let resp = get(&node, &client, &format!("{open}/sent")).await;
    assert_eq!(resp.status(), 303, "no decrypted data before the change");
    assert_eq!(
        location(&resp),
        format!("/welcome?next={open}"),
        "back to the message afterwards"
    );
    node.stop().await;
}

// ---------------------------------------------------------------------------------------
// Finding 12: admin UI only on its own listener or the admin networks; TOTP by default.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_admin_ui_answers_nobody_on_the_public_listener_by_default() {
    // A node whose one listener is public, on the defaults.
    let node = TestNode::start_with(|c| c.web.listen_is_internal = false).await;
    let client = raw_client();
    // No admin networks: the public listener has no admin UI at all.
    for path in ["/admin/login", "/admin", "/admin/users"] {
        let resp = client.get(node.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 404, "{path}");
    }
    let resp = client
        .post(node.url("/admin/login"))
        .form(&[("name", "root"), ("password", "x"), ("code", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    // The portal is unaffected.
    let resp = client.get(node.url("/login")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    // Loopback as an admin network (what `sealpost demo` sets) opens it to this machine.
    set_setting(&node, "admin.allowed_networks", "127.0.0.0/8, ::1/128").await;
    let resp = client.get(node.url("/admin/login")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    node.stop().await;
}

#[tokio::test]
async fn a_new_admin_must_enrol_totp_by_default() {
    assert!(sealpost_core::Settings::default().admin_totp_required);
    let node = TestNode::start().await;
    let (client, _) = admin_session_with_password(&node, "fresh").await;
    for path in ["/admin", "/admin/users", "/admin/settings/security"] {
        let resp = get(&node, &client, path).await;
        assert_eq!(resp.status(), 303, "{path}");
        assert_eq!(location(&resp), "/admin/totp", "{path}");
    }
    node.stop().await;
}

// ---------------------------------------------------------------------------------------
// Finding 13: an admin TOTP code is single-use.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_admin_totp_code_signs_in_only_once() {
    let node = TestNode::start().await;
    let _ = admin_session(&node, "root").await;
    let secret = node
        .node
        .store
        .admin_by_name("root")
        .await
        .unwrap()
        .unwrap()
        .totp_secret
        .unwrap();
    let code = totp_code(&secret);
    let first = admin_login(
        &node,
        &node.client(),
        "root",
        "root-chosen-password-1",
        &code,
    )
    .await;
    assert_eq!(first.status(), 303, "the code signs in");
    let again = admin_login(
        &node,
        &node.client(),
        "root",
        "root-chosen-password-1",
        &code,
    )
    .await;
    assert_eq!(
        again.status(),
        401,
        "the same code a second time is refused"
    );
    node.stop().await;
}

// ---------------------------------------------------------------------------------------
// Finding 18: replacing an admin's TOTP needs the current password and a current code.
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn replacing_an_admin_totp_needs_the_current_password_and_code() {
    let node = TestNode::start().await;
    let (client, csrf) = admin_session(&node, "root").await;
    let stored = |node: &TestNode| {
        let store = node.node.store.clone();
        async move {
            store
                .admin_by_name("root")
                .await
                .unwrap()
                .unwrap()
                .totp_secret
                .unwrap()
        }
    };
    let old = stored(&node).await;
    let page = page_text(&node, &client, "/admin/totp").await;
    let new_secret = extract_attr(&page, "name=\"secret\" value=\"").unwrap();
    assert_ne!(new_secret, old);
    let new_code = totp_code(&new_secret);
    // A hijacked session alone (no password, no current code), or with only one of them.
    for (password, current) in [
        ("", String::new()),
        ("root-chosen-password-1", String::new()),
        ("", totp_code(&old)),
        ("wrong password here", totp_code(&old)),
    ] {
        let resp = client
            .post(node.url("/admin/totp"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("secret", new_secret.as_str()),
                ("code", new_code.as_str()),
                ("current_password", password),
                ("current_code", current.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "password={password:?}");
        assert_eq!(stored(&node).await, old, "the factor stayed");
    }
    let resp = client
        .post(node.url("/admin/totp"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("secret", new_secret.as_str()),
            ("code", new_code.as_str()),
            ("current_password", "root-chosen-password-1"),
            ("current_code", totp_code(&old).as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303, "both factors: replaced");
    assert_eq!(stored(&node).await, new_secret);
    node.stop().await;
}
