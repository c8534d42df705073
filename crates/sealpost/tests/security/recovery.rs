//! Recovery and factor changes: mailbox code, notices, re-authentication, standard questions, reset links.

#[allow(unused_imports)]
use super::*;

/// The answer `complete_first_login` sets (question "pet").
const ANSWER: &str = "sealpost";

async fn forgot_address(client: &reqwest::Client, node: &TestNode, address: &str) -> (u16, String) {
    let r = client
        .post(node.url("/forgot"))
        .form(&[("address", address)])
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn forgot_answer(
    client: &reqwest::Client,
    node: &TestNode,
    address: &str,
    code: Option<&str>,
    answer: &str,
) -> (u16, String) {
    let mut form = vec![("address", address), ("answer", answer)];
    if let Some(code) = code {
        form.push(("code", code));
    }
    let r = client
        .post(node.url("/forgot/answer"))
        .form(&form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The code of a `code` mail ("Code: 123456").
fn mailed_code(mail: &sealpost_smtp::sink::ReceivedMail) -> String {
    mail_text(mail)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Code: ").map(str::to_string))
        .expect("a code line")
}

fn question_blanked(page: &str, address: &str) -> String {
    let start = page.find(":</strong> ").expect("question shown") + ":</strong> ".len();
    let end = page[start..].find("</p>").unwrap() + start;
    page.replace(&page[start..end], "QUESTION")
        .replace(address, "ADDRESS")
}

async fn account(node: &TestNode, address: &str) -> sealpost_store::Account {
    node.node
        .store
        .account_by_address(address)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn recovery_needs_the_mailed_code_and_the_answer_and_the_holder_is_notified() {
    let node = TestNode::start().await;
    let r = provision(&node, "recover@example.com").await;
    let _session = logged_in(&node, &r).await;
    let client = raw_client();

    let before = node.sink.received().len();
    let (status, page) = forgot_address(&client, &node, &r.address).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("name=\"code\""),
        "the question step asks for the code"
    );
    assert!(page.contains("If this address has an account, a 6-digit code"));
    let code_mail = wait_for_kind(&node, "code", &r.address, before).await;
    let code = mailed_code(&code_mail);
    assert_eq!(code.len(), 6, "{code}");
    assert!(code.chars().all(|c| c.is_ascii_digit()));

    // Each factor alone, or a wrong code, is not enough.
    let other = if code == "000000" { "111111" } else { "000000" };
    for (code, answer) in [
        (None, ANSWER),
        (Some(other), ANSWER),
        (Some(code.as_str()), "wrong"),
    ] {
        let (status, page) = forgot_answer(&client, &node, &r.address, code, answer).await;
        assert_eq!(status, 401, "code {code:?}, answer {answer}");
        assert!(!page.contains("New password"));
        assert!(page.contains("The code or the answer is not correct"));
    }
    // Both right: a new password, shown once.
    let (status, done) = forgot_answer(&client, &node, &r.address, Some(&code), ANSWER).await;
    assert_eq!(status, 200);
    assert!(done.contains("New password: "));
    // The code was used up.
    let (status, _) = forgot_answer(&client, &node, &r.address, Some(&code), ANSWER).await;
    assert_eq!(status, 401, "a code works once");

    // The holder gets a notice: what, when, from where; no secret in it.
    let notice = wait_for_kind(&node, "notice", &r.address, before).await;
    let text = mail_text(&notice);
    assert!(
        text.contains("was reset on the forgotten-password page"),
        "{text}"
    );
    assert!(text.contains(" UTC"));
    assert!(text.contains("127.0.0.1"));
    assert!(text.contains("If this was not you"));
    assert!(!text.contains("Password") && !text.contains(&code));
    node.stop().await;
}

async fn r_id(node: &TestNode, address: &str) -> String {
    account(node, address).await.id
}

#[tokio::test]
async fn unknown_addresses_get_the_same_code_page_and_no_mail_is_sent() {
    let node = TestNode::start().await;
    let known = provision(&node, "known@example.com").await;
    let _session = logged_in(&node, &known).await;
    let noquestion = provision(&node, "noquestion@example.com").await;
    let unknown = "nobody-code-page@example.com";
    let client = raw_client();
    let before = node.sink.received().len();
    let (sk, pk) = forgot_address(&client, &node, &known.address).await;
    let (su, pu) = forgot_address(&client, &node, unknown).await;
    let (sn, pn) = forgot_address(&client, &node, &noquestion.address).await;
    assert_eq!((sk, su, sn), (200, 200, 200));
    assert!(pu.contains("name=\"code\""));
    assert_eq!(
        question_blanked(&pk, &known.address),
        question_blanked(&pu, unknown)
    );
    assert_eq!(
        question_blanked(&pn, &noquestion.address),
        question_blanked(&pu, unknown)
    );
    // Only the account that can be reset gets a code.
    wait_for_kind(&node, "code", &known.address, before).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after: Vec<_> = node.sink.received().into_iter().skip(before).collect();
    assert_eq!(after.len(), 1, "one code mail, nothing for the others");
    node.stop().await;
}

#[tokio::test]
async fn answer_only_is_an_explicit_weaker_choice_and_still_notifies() {
    let node = TestNode::start().await;
    set_setting(&node, "security.recovery", "answer-only").await;
    let r = provision(&node, "answeronly@example.com").await;
    let _session = logged_in(&node, &r).await;
    let client = raw_client();
    let before = node.sink.received().len();
    let (_, page) = forgot_address(&client, &node, &r.address).await;
    assert!(!page.contains("name=\"code\""));
    let (status, done) = forgot_answer(&client, &node, &r.address, None, ANSWER).await;
    assert_eq!(status, 200);
    assert!(done.contains("New password: "));
    wait_for_kind(&node, "notice", &r.address, before).await;
    let kinds: Vec<String> = node
        .sink
        .received()
        .iter()
        .skip(before)
        .map(kind_of)
        .collect();
    assert!(!kinds.contains(&"code".to_string()), "{kinds:?}");
    assert_eq!(
        sealpost_core::Settings::default()
            .recovery_policy
            .to_string(),
        "answer+code"
    );
    assert!(
        sealpost_core::settings::definition("security.recovery")
            .unwrap()
            .help
            .contains("weaker")
    );
    node.stop().await;
}

async fn profile_post(
    node: &TestNode,
    client: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> reqwest::Response {
    client.post(node.url(path)).form(form).send().await.unwrap()
}

#[tokio::test]
async fn factor_changes_need_the_current_password_count_failures_and_notify() {
    let node = TestNode::start().await;
    let r = provision(&node, "factors@example.com").await;
    let client = logged_in(&node, &r).await;
    let csrf = csrf_of(&page_text(&node, &client, "/profile").await);
    let before_q = account(&node, &r.address).await.secret_answer_hash;
    let before = node.sink.received().len();

    // The question: without or with a wrong current password nothing changes, and a wrong one
    // counts like a failed sign-in.
    let question = |current: Option<&'static str>| {
        let mut form = vec![
            ("csrf", csrf.clone()),
            ("question", "city".to_string()),
            ("answer", "Bonn".to_string()),
        ];
        if let Some(c) = current {
            form.push(("current", c.to_string()));
        }
        form
    };
    for current in [None, Some("not my password")] {
        let form = question(current);
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let resp = profile_post(&node, &client, "/profile/question", &form).await;
        assert_eq!(resp.status(), 400, "{current:?}");
        assert!(
            resp.text()
                .await
                .unwrap()
                .contains("current password is not correct")
        );
    }
    let a = account(&node, &r.address).await;
    assert_eq!(a.secret_answer_hash, before_q, "question unchanged");
    assert_eq!(a.secret_question.as_deref(), Some("std:pet"));
    assert_eq!(
        a.failed_logins, 2,
        "wrong re-authentications count like failed sign-ins"
    );

    let resp = profile_post(
        &node,
        &client,
        "/profile/password",
        &[
            ("csrf", &csrf),
            ("current", "still not it"),
            ("password", "another fine passphrase"),
            ("password2", "another fine passphrase"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(account(&node, &r.address).await.failed_logins, 3);

    // With the current password both changes work, and each is notified.
    let form = question(Some(NEW_PASSWORD));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let resp = profile_post(&node, &client, "/profile/question", &form).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(
        account(&node, &r.address).await.secret_question.as_deref(),
        Some("std:city")
    );
    let notice = wait_for_kind(&node, "notice", &r.address, before).await;
    assert!(mail_text(&notice).contains("secret question of your account"));
    let before = node.sink.received().len();
    let resp = profile_post(
        &node,
        &client,
        "/profile/password",
        &[
            ("csrf", &csrf),
            ("current", NEW_PASSWORD),
            ("password", "another fine passphrase"),
            ("password2", "another fine passphrase"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 303);
    let notice = wait_for_kind(&node, "notice", &r.address, before).await;
    let text = mail_text(&notice);
    assert!(text.contains("password of your account factors@example.com was changed"));
    assert!(!text.contains("another fine passphrase"));

    // Enough wrong re-authentications lock the account like wrong sign-ins.
    for _ in 0..5 {
        profile_post(
            &node,
            &client,
            "/profile/password",
            &[
                ("csrf", &csrf),
                ("current", "guess"),
                ("password", "a third fine passphrase"),
                ("password2", "a third fine passphrase"),
            ],
        )
        .await;
    }
    assert!(account(&node, &r.address).await.locked_until.is_some());
    let resp = node
        .login(&node.client(), &r.address, "another fine passphrase")
        .await;
    assert_eq!(resp.status(), 401, "locked");
    node.stop().await;
}

#[tokio::test]
async fn forgot_does_not_show_an_own_question_unless_an_admin_allows_them() {
    let node = TestNode::start().await;
    let r = provision(&node, "ownq@example.com").await;
    let client = logged_in(&node, &r).await;
    // An own question from before the setting existed.
    let a = account(&node, &r.address).await;
    sealpost_core::accounts::set_secret_question(&node.node.store, &a, "Name of my boat?", "Ahoi")
        .await
        .unwrap();

    let (_, page) = forgot_address(&raw_client(), &node, &r.address).await;
    assert!(
        !page.contains("Name of my boat?"),
        "the own text is not shown"
    );
    let (_, decoy) = forgot_address(&raw_client(), &node, "nobody-ownq@example.com").await;
    assert_eq!(
        question_blanked(&page, &r.address),
        question_blanked(&decoy, "nobody-ownq@example.com"),
        "looks like any unknown address"
    );
    // Its answer no longer resets (answer-only, to test the question alone).
    set_setting(&node, "security.recovery", "answer-only").await;
    let (status, _) = forgot_answer(&raw_client(), &node, &r.address, None, "Ahoi").await;
    assert_eq!(status, 401);

    // The profile offers only the standard list, asks for a standard one, ignores own text.
    let profile = page_text(&node, &client, "/profile").await;
    assert!(!profile.contains("name=\"own_question\""));
    assert!(profile.contains("no longer works for a forgotten password"));
    let csrf = csrf_of(&profile);
    let resp = profile_post(
        &node,
        &client,
        "/profile/question",
        &[
            ("csrf", &csrf),
            ("question", ""),
            ("own_question", "Another own one?"),
            ("answer", "x"),
            ("current", NEW_PASSWORD),
        ],
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert_eq!(
        account(&node, &r.address).await.secret_question.as_deref(),
        Some("Name of my boat?")
    );

    // An administrator may allow own questions (the settings help states the risk).
    assert!(
        sealpost_core::settings::definition("security.own_questions")
            .unwrap()
            .help
            .contains("proves the account exists")
    );
    set_setting(&node, "security.own_questions", "true").await;
    let (_, page) = forgot_address(&raw_client(), &node, &r.address).await;
    assert!(page.contains("Name of my boat?"));
    node.stop().await;
}

#[tokio::test]
async fn admin_reset_mails_a_one_time_link_never_the_password() {
    let node = TestNode::start().await;
    let r = provision(&node, "linked@example.com").await;
    let id = r_id(&node, &r.address).await;
    let (admin, csrf) = admin_session(&node, "root").await;
    let before = node.sink.received().len();
    let resp = admin
        .post(node.url(&format!("/admin/users/{id}/reset-password")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    let shown = page_text(&node, &admin, &location(&resp)).await;
    assert!(
        shown.contains("one-time link"),
        "the admin page says what was sent"
    );
    let mail = wait_for_kind(&node, "password-reset", &r.address, before).await;
    let text = mail_text(&mail);
    assert!(!text.contains("Password:"), "{text}");
    let path = reset_link_path(&mail);
    let token = path.trim_start_matches("/reset/");
    assert_eq!(token.len(), 43, "256-bit token");
    // The old password stops working at once.
    assert_eq!(
        node.login(&node.client(), &r.address, &r.password)
            .await
            .status(),
        401
    );
    // The link works once and sets the recipient's own password.
    set_password_by_reset_link(&node, &mail, "my own new passphrase").await;
    let resp = node
        .login(&node.client(), &r.address, "my own new passphrase")
        .await;
    assert_eq!(resp.status(), 303);
    assert_eq!(
        location(&resp),
        "/",
        "no forced change: the recipient chose it"
    );
    let again = get(&node, &node.client(), &path).await;
    assert_eq!(again.status(), 404, "single use");
    let notice = wait_for_kind(&node, "notice", &r.address, before).await;
    assert!(mail_text(&notice).contains("one-time link"));
    // Only its hash is stored.
    assert!(
        node.node
            .store
            .reset_link_account(token, 0)
            .await
            .unwrap()
            .is_none()
    );

    // The `sender` choice mails a generated password to the last sender, never the mailbox.
    set_setting(&node, "mail.reset_mail_to", "sender").await;
    let before = node.sink.received().len();
    let resp = admin
        .post(node.url(&format!("/admin/users/{id}/reset-password")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert!(
        page_text(&node, &admin, &location(&resp))
            .await
            .contains("last sender")
    );
    let to_sender = wait_for_kind(&node, "password-reset", ADVISOR, before).await;
    let password = credentials_password(&to_sender);
    let notice = wait_for_kind(&node, "notice", &r.address, before).await;
    assert!(!mail_text(&notice).contains(&password));
    let to_holder = node
        .sink
        .received()
        .into_iter()
        .skip(before)
        .filter(|m| m.rcpt_to.contains(&r.address))
        .all(|m| !mail_text(&m).contains(&password));
    assert!(
        to_holder,
        "the password never reaches the recipient's mailbox"
    );
    assert_eq!(
        node.login(&node.client(), &r.address, &password)
            .await
            .status(),
        303
    );
    node.stop().await;
}

/// Finding 20 (recovery side): a stranger who cannot read the account's mailbox cannot use up
/// the holder's answer attempts and so block the self-service reset. Without the mailed code
/// no answer attempt of the account is spent; an unknown address answers exactly alike (never
/// "blocked"); the holder then resets with the code and the answer.
#[tokio::test]
async fn a_stranger_without_the_mailed_code_cannot_block_the_holders_reset() {
    let node = TestNode::start().await;
    let r = provision(&node, "target@example.com").await;
    let _session = logged_in(&node, &r).await;
    let stranger = raw_client();
    let limit = node.node.settings.get().secret_answer_max_attempts;
    // More guesses than the account's answer limit, fewer than the per-source budget (which
    // throttles the stranger's address after 20 failures in all).
    let guesses = limit + 3;
    assert!(2 * guesses < 20);
    for guess in 0..guesses {
        let answer = format!("guess {guess}");
        let known = forgot_answer(&stranger, &node, &r.address, Some("123456"), &answer).await;
        let unknown = forgot_answer(
            &stranger,
            &node,
            "nobody@example.com",
            Some("123456"),
            &answer,
        )
        .await;
        assert_eq!(known.0, 401, "guess {guess}: {}", known.1);
        assert_eq!(
            question_blanked(&known.1, &r.address),
            question_blanked(&unknown.1, "nobody@example.com"),
            "guess {guess}: known and unknown addresses answer alike"
        );
    }
    assert_eq!(
        account(&node, &r.address).await.failed_answers,
        0,
        "no answer attempt of the account was spent without its code"
    );

    let holder = raw_client();
    let before = node.sink.received().len();
    let (status, _) = forgot_address(&holder, &node, &r.address).await;
    assert_eq!(status, 200);
    let code = mailed_code(&wait_for_kind(&node, "code", &r.address, before).await);
    let (status, done) = forgot_answer(&holder, &node, &r.address, Some(&code), ANSWER).await;
    assert_eq!(status, 200, "the holder still resets: {done}");
    assert!(done.contains("New password: "));
    node.stop().await;
}

/// The one-time reset link's form sets a password, so posting to guessed links is rate-limited
/// per client like the sign-in: after the burst (20) the client gets 429.
#[tokio::test]
async fn reset_link_posts_are_rate_limited_per_client() {
    let node = TestNode::start().await;
    let client = raw_client();
    let mut statuses = Vec::new();
    for _ in 0..25 {
        let (token, _) = sealpost_crypto::new_token();
        let r = client
            .post(node.url(&format!("/reset/{token}")))
            .header("origin", node.base.clone())
            .form(&[("csrf", "guess"), ("password", "x"), ("password2", "x")])
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert!(
        statuses[..20].iter().all(|s| *s != 429),
        "the burst is served: {statuses:?}"
    );
    assert_eq!(
        statuses[24], 429,
        "then the client is throttled: {statuses:?}"
    );
    node.stop().await;
}
