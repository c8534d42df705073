//! The request guards against the router itself (`tower::ServiceExt::oneshot`, a SQLite test
//! store, no TLS, no sockets): each guard's accept path and its reject paths.
#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response, header};
use sealpost_core::sessions::{Principal, start};
use sealpost_core::{KeyRing, Settings, SettingsHandle};
use sealpost_store::{NewAccount, SessionKind, Store};
use sealpost_web::{AppState, WebConfig};
use tower::ServiceExt;

const LOOPBACK: &str = "127.0.0.1:40000";
const OUTSIDE: &str = "203.0.113.5:40000";

struct World {
    state: AppState,
    _guard: sealpost_store::testing::DropGuard,
}

async fn world(adjust: impl FnOnce(&mut Settings)) -> World {
    let (store, guard) = sealpost_store::testing::fresh_store("sqlite:")
        .await
        .unwrap();
    let mut settings = Settings::default();
    adjust(&mut settings);
    let state = AppState {
        store,
        keys: KeyRing::new(sealpost_crypto::MasterKey::generate()),
        settings: SettingsHandle::new(settings),
        web: Arc::new(WebConfig::default()),
        delivery_wake: Arc::new(tokio::sync::Notify::new()),
        rate_limits: Arc::new(Default::default()),
        reports: Arc::new(sealpost_core::message_report::ReportSigner::new(
            sealpost_crypto::report::ReportKey::generate(),
            "test",
        )),
    };
    World {
        state,
        _guard: guard,
    }
}

/// An account (`must_change`: still has its generated password) with a signed-in session;
/// returns the session token and its CSRF token.
async fn reader(w: &World, address: &str, must_change: bool) -> (String, String) {
    let store: &Store = &w.state.store;
    let id = uuid::Uuid::new_v4();
    let (_, _, wrapped) = w.state.keys.new_account_key(id);
    let mut tx = store.begin().await.unwrap();
    store
        .insert_account(
            &mut tx,
            &NewAccount {
                id: &id.to_string(),
                address,
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
                language: None,
                created_by: None,
                created_at: sealpost_store::unix_now(),
                valid_until: None,
                must_change_password: must_change,
            },
            &wrapped,
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let started = start(
        store,
        &w.state.settings.get(),
        &Principal {
            kind: SessionKind::Portal,
            id: &id.to_string(),
            audit_actor: address,
        },
        None,
        "192.0.2.1",
    )
    .await
    .unwrap();
    (started.token, started.csrf)
}

fn request(method: &str, path: &str, peer: &str) -> axum::http::request::Builder {
    let peer: SocketAddr = peer.parse().unwrap();
    let mut b = Request::builder().method(method).uri(path);
    b.extensions_mut().unwrap().insert(ConnectInfo(peer));
    b
}

fn with_cookie(b: axum::http::request::Builder, token: &str) -> axum::http::request::Builder {
    b.header(header::COOKIE, format!("__Host-sealpost={token}"))
}

fn form(b: axum::http::request::Builder, body: &str) -> Request<Body> {
    b.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn send(router: &Router, req: Request<Body>) -> Response<Body> {
    router.clone().oneshot(req).await.unwrap()
}

fn location(r: &Response<Body>) -> String {
    r.headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

async fn text(r: Response<Body>) -> String {
    let bytes = axum::body::to_bytes(r.into_body(), usize::MAX)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn get(path: &str) -> Request<Body> {
    request("GET", path, LOOPBACK).body(Body::empty()).unwrap()
}

fn get_as(path: &str, token: &str) -> Request<Body> {
    with_cookie(request("GET", path, LOOPBACK), token)
        .body(Body::empty())
        .unwrap()
}

// --- Reader and PageCtx ----------------------------------------------------------------

#[tokio::test]
async fn reader_accepts_a_live_session_and_the_page_shows_its_context() {
    let w = world(|_| {}).await;
    let (token, csrf) = reader(&w, "reader@example.com", false).await;
    let router = sealpost_web::router(w.state.clone());
    let r = send(&router, get_as("/", &token)).await;
    assert_eq!(r.status(), 200);
    let page = text(r).await;
    assert!(page.contains("reader@example.com"), "address in the nav");
    assert!(page.contains(&csrf), "CSRF token in the sign-out form");
}

#[tokio::test]
async fn reader_without_a_cookie_is_sent_to_sign_in_on_get_and_refused_on_post() {
    let w = world(|_| {}).await;
    let router = sealpost_web::router(w.state.clone());
    let r = send(&router, get("/")).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login");
    let r = send(&router, get("/open/short-token/sent")).await;
    assert_eq!(
        r.status(),
        410,
        "a bad token syntax is refused before anything"
    );
    let (token, _) = sealpost_crypto::new_token();
    let r = send(&router, get(&format!("/open/{token}/part/1"))).await;
    assert_eq!(location(&r), format!("/login?next=/open/{token}"));
    // The framed body is not a navigation: no sign-in page inside the frame.
    let r = send(&router, get(&format!("/open/{token}/html"))).await;
    assert_eq!(r.status(), 403);
    let r = send(
        &router,
        form(request("POST", "/logout", LOOPBACK), "csrf=x"),
    )
    .await;
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn reader_refuses_an_idle_session() {
    let w = world(|s| s.session_idle_secs = 0).await;
    let (token, _) = reader(&w, "idle@example.com", false).await;
    let router = sealpost_web::router(w.state.clone());
    let r = send(&router, get_as("/", &token)).await;
    assert_eq!(location(&r), "/login");
}

#[tokio::test]
async fn reader_refuses_a_session_past_its_absolute_lifetime() {
    let w = world(|s| s.session_absolute_secs = 0).await;
    let (token, _) = reader(&w, "old@example.com", false).await;
    let router = sealpost_web::router(w.state.clone());
    let r = send(&router, get_as("/profile", &token)).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login?next=/profile");
}

#[tokio::test]
async fn reader_sends_a_forced_password_change_to_welcome() {
    let w = world(|_| {}).await;
    let (token, _) = reader(&w, "new@example.com", true).await;
    let router = sealpost_web::router(w.state.clone());
    let r = send(&router, get_as("/", &token)).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/welcome?next=/");
    let (open, _) = sealpost_crypto::new_token();
    let r = send(&router, get_as(&format!("/open/{open}/sent"), &token)).await;
    assert_eq!(location(&r), format!("/welcome?next=/open/{open}"));
}

// --- Opened ----------------------------------------------------------------------------

#[tokio::test]
async fn opened_refuses_bad_token_syntax_and_unknown_tokens() {
    let w = world(|_| {}).await;
    let (token, _) = reader(&w, "opener@example.com", false).await;
    let router = sealpost_web::router(w.state.clone());
    for bad in ["short", "..%2F..%2Fetc", &"a".repeat(44)] {
        let r = send(&router, get_as(&format!("/open/{bad}"), &token)).await;
        assert_eq!(r.status(), 410, "{bad}");
    }
    let (unknown, _) = sealpost_crypto::new_token();
    let r = send(&router, get_as(&format!("/open/{unknown}"), &token)).await;
    assert_eq!(r.status(), 410, "nothing parked under a well-formed token");
}

// --- CsrfForm and the same-origin layer ------------------------------------------------

#[tokio::test]
async fn csrf_form_needs_the_session_token_and_the_layer_a_same_origin_request() {
    let w = world(|_| {}).await;
    let (token, csrf) = reader(&w, "csrf@example.com", false).await;
    let router = sealpost_web::router(w.state.clone());
    let post = || with_cookie(request("POST", "/logout", LOOPBACK), &token);
    let r = send(&router, form(post(), "csrf=forged")).await;
    assert_eq!(r.status(), 403, "wrong token");
    let r = send(&router, form(post(), "")).await;
    assert_eq!(r.status(), 403, "no token");
    let r = send(
        &router,
        form(
            post().header("sec-fetch-site", "cross-site"),
            &format!("csrf={csrf}"),
        ),
    )
    .await;
    assert_eq!(r.status(), 403, "cross-site");
    let r = send(
        &router,
        form(
            post()
                .header(header::HOST, "portal.example")
                .header(header::ORIGIN, "https://evil.example"),
            &format!("csrf={csrf}"),
        ),
    )
    .await;
    assert_eq!(r.status(), 403, "foreign Origin");
    // Still signed in after all of that; then the right token signs out.
    assert_eq!(send(&router, get_as("/", &token)).await.status(), 200);
    let r = send(
        &router,
        form(
            post().header("sec-fetch-site", "same-origin"),
            &format!("csrf={csrf}"),
        ),
    )
    .await;
    let status = r.status();
    let location_header = location(&r);
    assert_eq!(status, 303, "{location_header}");
    assert_eq!(location_header, "/login?bye=1");
    assert_eq!(
        location(&send(&router, get_as("/", &token)).await),
        "/login"
    );
}

#[tokio::test]
async fn post_open_stays_open_to_cross_site_posts() {
    let w = world(|_| {}).await;
    let router = sealpost_web::router(w.state.clone());
    let r = send(
        &router,
        form(
            request("POST", "/open", OUTSIDE).header("sec-fetch-site", "cross-site"),
            "payload=not-an-envelope",
        ),
    )
    .await;
    // Refused for its content (an error page), not by the same-origin layer (403).
    assert_ne!(r.status(), 403);
}

// --- The profile, welcome, reset and forgot pages on the guards ------------------------

fn post_as(path: &str, token: &str, body: &str) -> Request<Body> {
    form(
        with_cookie(request("POST", path, LOOPBACK), token).header("sec-fetch-site", "same-origin"),
        body,
    )
}

#[tokio::test]
async fn profile_needs_a_reader_and_its_forms_a_same_origin_post_with_the_csrf_token() {
    let w = world(|_| {}).await;
    let router = sealpost_web::router(w.state.clone());
    let r = send(&router, get("/profile")).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/login?next=/profile");
    let (forced, _) = reader(&w, "forced@example.com", true).await;
    let r = send(&router, get_as("/profile", &forced)).await;
    assert_eq!(location(&r), "/welcome?next=/profile");

    let (token, csrf) = reader(&w, "profile@example.com", false).await;
    let r = send(&router, get_as("/profile", &token)).await;
    assert_eq!(r.status(), 200);
    let page = text(r).await;
    assert!(page.contains("profile@example.com") && page.contains(&csrf));

    let body = format!("csrf={csrf}&language=en");
    let cross_site = form(
        with_cookie(request("POST", "/profile/language", LOOPBACK), &token)
            .header("sec-fetch-site", "cross-site"),
        &body,
    );
    assert_eq!(send(&router, cross_site).await.status(), 403, "cross-site");
    let r = send(
        &router,
        post_as("/profile/language", &token, "csrf=forged&language=en"),
    )
    .await;
    assert_eq!(r.status(), 403, "wrong CSRF token");
    let r = send(
        &router,
        post_as("/profile/language", &forced, "csrf=x&language=en"),
    )
    .await;
    assert_eq!(r.status(), 403, "forced change pending");
    let r = send(&router, post_as("/profile/language", &token, &body)).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/profile?saved=language");
}

#[tokio::test]
async fn welcome_takes_a_forced_change_and_refuses_an_account_past_it() {
    let w = world(|_| {}).await;
    let router = sealpost_web::router(w.state.clone());
    let r = send(&router, get("/welcome?next=/profile")).await;
    assert_eq!(location(&r), "/login?next=/profile");
    let (forced, forced_csrf) = reader(&w, "welcome@example.com", true).await;
    let r = send(&router, get_as("/welcome?next=/profile", &forced)).await;
    assert_eq!(r.status(), 200, "the forced change is allowed here");
    assert!(text(r).await.contains(&forced_csrf));
    let r = send(
        &router,
        post_as("/welcome", &forced, "csrf=forged&password=x&password2=x"),
    )
    .await;
    assert_eq!(r.status(), 403, "wrong CSRF token");

    let (token, csrf) = reader(&w, "done@example.com", false).await;
    let r = send(&router, get_as("/welcome?next=/profile", &token)).await;
    assert_eq!(location(&r), "/profile", "nothing to replace: on to next");
    // Without a forced change the welcome form would set a password without the current one.
    let body = format!(
        "csrf={csrf}&next=/&password=Correct-Horse-9-Battery&password2=Correct-Horse-9-Battery\
         &question=pet&answer=Rocket"
    );
    let r = send(&router, post_as("/welcome", &token, &body)).await;
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn reset_and_forgot_forms_are_checked_by_the_guards() {
    let w = world(|_| {}).await;
    let router = sealpost_web::router(w.state.clone());
    let (link, _) = sealpost_crypto::new_token();
    let path = format!("/reset/{link}");
    assert_eq!(
        send(&router, get(&path)).await.status(),
        404,
        "unknown link"
    );
    let post = |body: String| {
        form(
            request("POST", &path, LOOPBACK).header("sec-fetch-site", "same-origin"),
            &body,
        )
    };
    let fields = "password=Correct-Horse-9-Battery&password2=Correct-Horse-9-Battery";
    let r = send(&router, post(format!("csrf=forged&{fields}"))).await;
    assert_eq!(r.status(), 403, "form token not derived from the link");
    let derived = sealpost_crypto::hash_token(&format!("reset-form\n{link}"));
    let r = send(&router, post(format!("csrf={derived}&{fields}"))).await;
    assert_eq!(r.status(), 404, "right form token, unknown link");

    assert_eq!(send(&router, get("/forgot")).await.status(), 200);
    let cross_site = form(
        request("POST", "/forgot", LOOPBACK).header("sec-fetch-site", "cross-site"),
        "address=someone@example.com",
    );
    assert_eq!(send(&router, cross_site).await.status(), 403);
}

// --- AdminUser and the admin network rule ----------------------------------------------

#[tokio::test]
async fn admin_ui_on_the_public_listener_answers_only_the_admin_networks() {
    let w = world(|_| {}).await;
    let router = sealpost_web::router(w.state.clone());
    let login = |peer: &str| {
        request("GET", "/admin/login", peer)
            .body(Body::empty())
            .unwrap()
    };
    // No admin networks configured (the default): nobody on the public listener, anybody on
    // an admin listener.
    assert_eq!(send(&router, login(LOOPBACK)).await.status(), 404);
    let admin_only = sealpost_web::admin_router(w.state.clone());
    assert_eq!(send(&admin_only, login(OUTSIDE)).await.status(), 200);
    w.state
        .store
        .set_setting(
            "admin.allowed_networks",
            "127.0.0.0/8",
            sealpost_store::unix_now(),
        )
        .await
        .unwrap();
    // Every node reads settings from its snapshot; a node notices a change within seconds.
    w.state.settings.reload(&w.state.store).await.unwrap();
    assert_eq!(send(&router, login(LOOPBACK)).await.status(), 200);
    assert_eq!(send(&router, login(OUTSIDE)).await.status(), 404);
    // Its own listener answers whoever reaches it while no admin networks are set, and only
    // them once they are.
    let admin_only = sealpost_web::admin_router(w.state.clone());
    assert_eq!(send(&admin_only, login(OUTSIDE)).await.status(), 404);
    assert_eq!(send(&admin_only, login(LOOPBACK)).await.status(), 200);
    // The portal listener alone has no admin UI at all.
    let portal_only = sealpost_web::portal_router(w.state.clone());
    assert_eq!(send(&portal_only, login(LOOPBACK)).await.status(), 404);
}

#[tokio::test]
async fn admin_user_without_a_session_is_sent_to_sign_in() {
    let w = world(|_| {}).await;
    let router = sealpost_web::admin_router(w.state.clone());
    let r = send(
        &router,
        request("GET", "/admin/users", OUTSIDE)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/admin/login?next=/admin/users");
    // A portal session is no admin session.
    let (token, _) = reader(&w, "reader@example.com", false).await;
    let r = send(
        &router,
        with_cookie(request("GET", "/admin/users", OUTSIDE), &token)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(r.status(), 303);
}
