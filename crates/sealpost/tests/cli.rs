//! The administration CLI as a script runs it: the built binary with a temporary config.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use sealpost_core::KeyRing;
use sealpost_crypto::MasterKey;
use sealpost_store::{AccountStatus, NewAccount, Store};

struct Env {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("sealpost.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = \"{}\"\n[web]\npublic_url = \"https://gw.example:8443\"\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        Env { dir, config }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_sealpost"))
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .env("SEALPOST_LOG", "error")
            .env_remove("SEALPOST_CONFIG")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim().lines().count(), 1, "one-line reason: {err}");
        err
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    async fn store(&self) -> Store {
        let url = format!("sqlite://{}", self.data().join("sealpost.db").display());
        let store = Store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        store
    }

    async fn add_account(&self, store: &Store, address: &str) -> String {
        let (master, _) = MasterKey::load_or_create(&self.data().join("master.key")).unwrap();
        let keys = KeyRing::new(master);
        let id = uuid::Uuid::new_v4();
        let (_, _, wrapped) = keys.new_account_key(id);
        let mut tx = store.begin().await.unwrap();
        store
            .insert_account(
                &mut tx,
                &NewAccount {
                    id: &id.to_string(),
                    address,
                    password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
                    language: None,
                    created_by: Some("advisor@bank.example"),
                    created_at: 1_700_000_000,
                    valid_until: None,
                    must_change_password: false,
                },
                &wrapped,
            )
            .await
            .unwrap();
        tx.commit().await.unwrap();
        id.to_string()
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn admin_commands() {
    let env = Env::new();
    let out = env.ok(&["admin", "create", "root"]);
    assert!(out.contains("admin root created"), "{out}");
    assert!(out.contains("https://gw.example:8443/admin"), "{out}");
    let password = out
        .lines()
        .find_map(|l| l.strip_prefix("one-time password: "))
        .unwrap()
        .to_string();
    assert!(password.len() >= 16);
    let err = env.fails(&["admin", "create", "root"]);
    assert!(err.contains("already exists"), "{err}");
    env.fails(&["admin", "create", "bad name"]);
    let list = env.ok(&["admin", "list"]);
    assert!(list.starts_with("root\ttotp=no"), "{list}");
    let out = env.ok(&["admin", "reset-password", "root"]);
    let second = out.trim().rsplit(' ').next().unwrap();
    assert_ne!(second, password);
    env.fails(&["admin", "reset-password", "nobody"]);

    let store = env.store().await;
    let admin = store.admin_by_name("root").await.unwrap().unwrap();
    assert!(admin.must_change_password);
    assert!(sealpost_crypto::verify_secret(second, &admin.password_hash));
    assert!(!sealpost_crypto::verify_secret(
        &password,
        &admin.password_hash
    ));
    store.close().await;
}

#[tokio::test]
async fn user_and_key_commands() {
    let env = Env::new();
    env.ok(&["migrate"]);
    let store = env.store().await;
    let id = env.add_account(&store, "kunde@example.com").await;
    env.add_account(&store, "other@example.org").await;

    let list = env.ok(&["user", "list", "--search", "KUNDE"]);
    assert_eq!(list.lines().count(), 1, "{list}");
    assert!(list.starts_with("kunde@example.com\tactive"));
    assert_eq!(env.ok(&["user", "list"]).lines().count(), 2);

    env.ok(&["user", "disable", "kunde@example.com"]);
    let a = store.account_by_id(&id).await.unwrap().unwrap();
    assert_eq!(a.status, AccountStatus::Disabled);
    env.ok(&["user", "enable", "Kunde@Example.com"]);
    let a = store.account_by_id(&id).await.unwrap().unwrap();
    assert_eq!(a.status, AccountStatus::Active);
    store
        .record_login_failure(&id, 1, i64::MAX / 2)
        .await
        .unwrap();
    env.ok(&["user", "unlock", "kunde@example.com"]);
    assert!(
        store
            .account_by_id(&id)
            .await
            .unwrap()
            .unwrap()
            .locked_until
            .is_none()
    );

    let out = env.ok(&["user", "reset-password", "kunde@example.com"]);
    assert!(
        out.contains("queued in a mail to kunde@example.com"),
        "{out}"
    );
    let queued = store
        .lease_due("t", i64::MAX / 4, i64::MAX / 4 + 1, 10)
        .await
        .unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].kind, "password-reset");
    assert_eq!(queued[0].rcpt_to, vec!["kunde@example.com"]);
    let a = store.account_by_id(&id).await.unwrap().unwrap();
    assert_ne!(
        a.password_hash,
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"
    );

    env.ok(&["keys", "rotate", "kunde@example.com"]);
    assert_eq!(store.key_versions(&id).await.unwrap().len(), 2);
    env.fails(&["keys", "rotate", "nobody@example.com"]);

    let err = env.fails(&["user", "delete", "kunde@example.com"]);
    assert!(err.contains("--yes") && err.contains("unreadable"), "{err}");
    assert!(store.account_by_id(&id).await.unwrap().is_some());
    env.ok(&["user", "delete", "kunde@example.com", "--yes"]);
    assert!(store.account_by_id(&id).await.unwrap().is_none());
    assert!(store.key_versions(&id).await.unwrap().is_empty());
    env.fails(&["user", "disable", "kunde@example.com"]);

    let audit = store.recent_audit(50).await.unwrap();
    for action in [
        "account.disabled",
        "account.unlocked",
        "account.password_reset",
        "account.key_rotated",
        "account.deleted",
    ] {
        assert!(
            audit.iter().any(|e| e.action == action && e.actor == "cli"),
            "{action}"
        );
    }
    store.close().await;
}

#[tokio::test]
async fn master_key_backup_and_restore() {
    let env = Env::new();
    // No key yet: a backup must not invent one.
    let backup = env.dir.path().join("backup.key");
    env.fails(&["keys", "backup-master", backup.to_str().unwrap()]);
    assert!(!backup.exists());
    env.ok(&["migrate"]);
    let (original, _) = MasterKey::load_or_create(&env.data().join("master.key")).unwrap();

    env.ok(&["keys", "backup-master", backup.to_str().unwrap()]);
    assert_eq!(mode(&backup), 0o600);
    assert_eq!(
        std::fs::read_to_string(&backup).unwrap().trim(),
        original.to_base64().as_str()
    );
    let err = env.fails(&["keys", "backup-master", backup.to_str().unwrap()]);
    assert!(err.contains("--force"), "{err}");
    std::fs::set_permissions(&backup, std::fs::Permissions::from_mode(0o644)).unwrap();
    env.ok(&["keys", "backup-master", backup.to_str().unwrap(), "--force"]);
    assert_eq!(mode(&backup), 0o600, "tightened on overwrite");

    // Restore onto a machine without the key, and refuse to overwrite one.
    let err = env.fails(&["keys", "restore-master", backup.to_str().unwrap()]);
    assert!(err.contains("--force"), "{err}");
    std::fs::remove_file(env.data().join("master.key")).unwrap();
    env.ok(&["keys", "restore-master", backup.to_str().unwrap()]);
    let restored = env.data().join("master.key");
    assert_eq!(mode(&restored), 0o600);
    let (again, created) = MasterKey::load_or_create(&restored).unwrap();
    assert!(!created);
    assert_eq!(again.to_base64().as_str(), original.to_base64().as_str());
    let junk = env.dir.path().join("junk.key");
    std::fs::write(&junk, "not a key\n").unwrap();
    env.fails(&["keys", "restore-master", junk.to_str().unwrap(), "--force"]);
    assert_eq!(
        std::fs::read_to_string(&restored).unwrap().trim(),
        original.to_base64().as_str(),
        "a bad file never replaces the key"
    );
}

#[tokio::test]
async fn settings_commands() {
    let env = Env::new();
    env.ok(&["migrate"]);

    let list = env.ok(&["settings", "list"]);
    assert!(list.contains("\nmail.keep_subject = true\n"), "{list}");
    assert!(
        list.contains("web.public_url = https://gw.example:8443\n"),
        "seeded from the file"
    );
    assert!(
        list.lines().all(|l| l.contains(" = ") || l.ends_with(" =")),
        "{list}"
    );
    assert_eq!(
        env.ok(&["settings", "get", "security.admin_totp_required"]),
        "true\n"
    );

    // A global value and a per-domain override, validated and normalised like the admin form.
    env.ok(&["settings", "set", "limits.max_recipients", "7"]);
    env.ok(&[
        "settings",
        "set",
        "mail.keep_subject@Partner.Example",
        "off",
    ]);
    assert_eq!(env.ok(&["settings", "get", "limits.max_recipients"]), "7\n");
    assert_eq!(
        env.ok(&["settings", "get", "mail.keep_subject@partner.example"]),
        "false\n"
    );
    assert_eq!(
        env.ok(&["settings", "get", "mail.keep_subject@bank.example"]),
        "true\n"
    );
    assert_eq!(env.ok(&["settings", "get", "mail.keep_subject"]), "true\n");
    let list = env.ok(&["settings", "list"]);
    assert!(list.contains("limits.max_recipients = 7\n"), "{list}");
    assert!(
        list.contains("mail.keep_subject@partner.example = false\n"),
        "{list}"
    );

    // Secrets are never printed.
    let hash = "ab".repeat(32);
    env.ok(&["settings", "set", "metrics.token_sha256", &hash]);
    let list = env.ok(&["settings", "list"]);
    assert!(list.contains("metrics.token_sha256 = (set)\n"), "{list}");
    assert!(!list.contains(&hash));
    assert_eq!(
        env.ok(&["settings", "get", "metrics.token_sha256"]),
        "(set)\n"
    );

    // Bad keys and values: exit 2, one line, nothing stored.
    let store = env.store().await;
    let before = store.all_settings().await.unwrap();
    for (args, reason) in [
        (
            &["settings", "set", "no.such.key", "1"][..],
            "unknown setting",
        ),
        (
            &["settings", "set", "limits.max_recipients", "many"][..],
            "limits.max_recipients",
        ),
        (
            &["settings", "set", "limits.max_recipients", "-1"][..],
            "limits.max_recipients",
        ),
        (
            &[
                "settings",
                "set",
                "network.trusted_proxies",
                "10.0.0.0/8, proxy",
            ][..],
            "network",
        ),
        (
            &["settings", "set", "branding.org_name@partner.example", "X"][..],
            "per domain",
        ),
        (
            &["settings", "set", "mail.keep_subject@not a domain", "true"][..],
            "domain",
        ),
        (&["settings", "get", "no.such.key"][..], "unknown setting"),
    ] {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = env.fails(args);
        assert!(err.contains(reason), "{args:?}: {err}");
    }
    let mut after = store.all_settings().await.unwrap();
    let mut before = before;
    before.sort();
    after.sort();
    assert_eq!(before, after, "refused commands change nothing");

    // Audited as the CLI, by name only.
    let audit = store.recent_audit(50).await.unwrap();
    let changes: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "settings.changed" && e.actor == "cli")
        .collect();
    assert_eq!(changes.len(), 3, "{changes:?}");
    let detail = |e: &&sealpost_store::AuditEvent| e.detail.clone().unwrap_or_default();
    assert!(changes.iter().all(|e| !detail(e).contains(&hash)));
    assert!(
        changes
            .iter()
            .any(|e| detail(e) == "mail.keep_subject@partner.example")
    );
    store.close().await;
}

/// `check-config` in `dir` without a config file unless `config` is given.
fn check_config(dir: &Path, config: Option<&Path>, strict: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sealpost"));
    cmd.current_dir(dir)
        .env("SEALPOST_LOG", "error")
        .env_remove("SEALPOST_CONFIG");
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    cmd.arg("check-config");
    if strict {
        cmd.arg("--strict");
    }
    cmd.output().unwrap()
}

/// check-config's lines about names (hostname, notification sender, public URL), without the
/// DKIM lines that the signer's checks add.
fn identity_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| !l.contains("DKIM")).collect()
}

#[test]
fn check_config_strict_refuses_names_unusable_on_the_internet() {
    let dir = tempfile::tempdir().unwrap();
    // Today's defaults (no file): plain check-config warns and passes ...
    let plain = check_config(dir.path(), None, false);
    assert!(plain.status.success());
    let warnings = String::from_utf8(plain.stderr).unwrap();
    // (DKIM's own warnings, tested with the signer, come on top.)
    assert_eq!(identity_lines(&warnings).len(), 3, "{warnings}");
    assert!(
        warnings.lines().all(|l| l.starts_with("warning: ")),
        "{warnings}"
    );
    assert!(
        String::from_utf8(plain.stdout)
            .unwrap()
            .contains("configuration OK")
    );
    // ... --strict fails, one line per problem: hostname, notification sender, public URL.
    let strict = check_config(dir.path(), None, true);
    assert_eq!(strict.status.code(), Some(2));
    assert!(strict.stdout.is_empty());
    let errors = String::from_utf8(strict.stderr).unwrap();
    let lines = identity_lines(&errors);
    assert_eq!(lines.len(), 3, "{errors}");
    assert!(lines[0].contains("hostname \"localhost\""), "{errors}");
    assert!(lines[1].contains("noreply@localhost"), "{errors}");
    assert!(
        lines[2].contains("web.public_url \"https://localhost:8443\""),
        "{errors}"
    );

    // The names the tests use (.example, .test) and an IP portal fail too.
    let config = dir.path().join("sealpost.toml");
    std::fs::write(
        &config,
        "hostname = \"gw.test\"\n[web]\npublic_url = \"https://127.0.0.1:8443\"\n\
[policy]\ninternal_domains = [\"bank.example\"]\n",
    )
    .unwrap();
    let strict = check_config(dir.path(), Some(&config), true);
    assert_eq!(strict.status.code(), Some(2));
    let errors = String::from_utf8(strict.stderr).unwrap();
    assert_eq!(identity_lines(&errors).len(), 3, "{errors}");
    assert!(errors.contains("noreply@bank.example"), "{errors}");
    assert!(errors.contains("IP address"), "{errors}");

    // Public names pass, and the default notification sender is noreply@ the first internal
    // domain.
    std::fs::write(
        &config,
        "hostname = \"gw.musterbank.de\"\n[web]\npublic_url = \"https://secure.musterbank.de\"\n\
[policy]\ninternal_domains = [\"musterbank.de\"]\n",
    )
    .unwrap();
    let strict = check_config(dir.path(), Some(&config), true);
    assert!(
        strict.status.success(),
        "{}",
        String::from_utf8_lossy(&strict.stderr)
    );
    assert!(
        identity_lines(&String::from_utf8_lossy(&strict.stderr)).is_empty(),
        "{}",
        String::from_utf8_lossy(&strict.stderr)
    );
}

#[test]
fn dkim_generate_writes_a_private_key_and_prints_its_record() {
    let env = Env::new();
    let rsa = env.dir.path().join("rsa.pem");
    let ed = env.dir.path().join("ed.pem");
    let rsa_s = rsa.to_str().unwrap();
    let ed_s = ed.to_str().unwrap();
    let record = env.ok(&[
        "dkim",
        "generate",
        "--domain",
        "Bank.Example",
        "--selector",
        "s1",
        "--out",
        rsa_s,
    ]);
    assert!(
        record.starts_with("s1._domainkey.bank.example IN TXT \"v=DKIM1; k=rsa; p=MII"),
        "{record}"
    );
    assert_eq!(
        record.lines().count(),
        1,
        "one record line on stdout: {record}"
    );
    let record = env.ok(&[
        "dkim",
        "generate",
        "--domain",
        "bank.example",
        "--selector",
        "s2",
        "--algorithm",
        "ed25519",
        "--out",
        ed_s,
    ]);
    let value: String = record
        .split('"')
        .skip(1)
        .step_by(2)
        .collect::<Vec<_>>()
        .concat();
    let p = value.split("p=").nth(1).unwrap().trim();
    assert!(value.starts_with("v=DKIM1; k=ed25519; p="), "{value}");
    assert_eq!(p.len(), 44, "32 bytes of Ed25519 public key in base64: {p}");
    for file in [&rsa, &ed] {
        assert_eq!(mode(file) & 0o777, 0o600, "{}", file.display());
    }
    // Never over an existing key.
    let before = std::fs::read(&rsa).unwrap();
    let err = env.fails(&[
        "dkim",
        "generate",
        "--domain",
        "bank.example",
        "--selector",
        "s1",
        "--out",
        rsa_s,
    ]);
    assert!(err.contains("never overwritten"), "{err}");
    assert_eq!(std::fs::read(&rsa).unwrap(), before);
    let err = env.fails(&[
        "dkim",
        "generate",
        "--domain",
        "bank.example",
        "--selector",
        "s3",
        "--algorithm",
        "dsa",
        "--out",
        "x.pem",
    ]);
    assert!(err.contains("rsa") && err.contains("ed25519"), "{err}");

    // The keys load: check-config with both is quiet about DKIM when the sender aligns ...
    let base = std::fs::read_to_string(&env.config).unwrap();
    let dkim = format!(
        "hostname = \"gw.bank.example\"\n{base}[policy]\nnotification_from = \"noreply@bank.example\"\n\
         [delivery.dkim]\ndomain = \"bank.example\"\nselector = \"s1\"\nkey_file = \"{rsa_s}\"\n\
         ed25519_key_file = \"{ed_s}\"\ned25519_selector = \"s2\"\n"
    );
    std::fs::write(&env.config, &dkim).unwrap();
    let out = env.run(&["check-config"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(!err.contains("DKIM"), "{err}");
    // ... warns when it does not ...
    std::fs::write(
        &env.config,
        dkim.replace("noreply@bank.example", "noreply@other.example"),
    )
    .unwrap();
    let out = env.run(&["check-config"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning:") && err.contains("noreply@other.example"),
        "{err}"
    );
    // ... and refuses a key file others can read, naming it.
    std::fs::set_permissions(&ed, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&env.config, &dkim).unwrap();
    let err = env.fails(&["check-config"]);
    assert!(err.contains(ed_s) && err.contains("chmod 600"), "{err}");
    // Both keys need two selectors (one DNS record each).
    std::fs::write(&env.config, dkim.replace("ed25519_selector = \"s2\"\n", "")).unwrap();
    let err = env.fails(&["check-config"]);
    assert!(err.contains("ed25519_selector"), "{err}");
    // Without [delivery.dkim], check-config says that nothing is signed.
    std::fs::write(&env.config, &base).unwrap();
    let out = env.run(&["check-config"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("DKIM signing is not configured"), "{err}");
}

#[tokio::test]
async fn message_report_verify_and_tamper() {
    let env = Env::new();
    let store = env.store().await;
    let account = env.add_account(&store, "customer@example.com").await;
    let id = "0123456789abcdef0123456789abcdef";
    let mut tx = store.begin().await.unwrap();
    store
        .insert_ledger(
            &mut tx,
            &sealpost_store::LedgerEntry {
                envelope_id: id.into(),
                sender: "advisor@bank.example".into(),
                recipient: "customer@example.com".into(),
                account_id: account,
                created_at: 1_700_000_000,
                first_opened_at: Some(1_700_000_600),
            },
        )
        .await
        .unwrap();
    store
        .insert_message_subject(
            &mut tx,
            &sealpost_store::MessageSubject {
                envelope_id: id.into(),
                subject_sha256: sealpost_crypto::report::subject_sha256("Your mortgage"),
                subject: None,
            },
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    store.close().await;

    let key = env.ok(&["message", "report-key"]);
    assert_eq!(mode(&env.data().join("report.key")), 0o600);
    let public = key
        .lines()
        .find_map(|l| l.strip_prefix("base64: "))
        .unwrap()
        .to_string();
    assert!(key.contains("fingerprint: SHA256:"), "{key}");

    let out = env.dir.path().join("report.json");
    let out_s = out.to_str().unwrap();
    let printed = env.ok(&["message", "report", id, "--out", out_s]);
    assert!(printed.contains(id), "{printed}");
    let json = std::fs::read_to_string(&out).unwrap();
    assert!(json.contains("advisor@bank.example") && json.contains("first-opened"));
    assert!(json.contains(&sealpost_crypto::report::subject_sha256("Your mortgage")));
    assert!(
        !json.contains("Your mortgage"),
        "the subject only as its hash by default"
    );
    let html = std::fs::read_to_string(format!("{out_s}.html")).unwrap();
    assert!(html.contains("customer@example.com") && html.contains(&public));

    let ok = env.ok(&["message", "verify-report", out_s, "--key", &public]);
    assert!(ok.starts_with("report OK"), "{ok}");
    // Offline: no configuration needed at all.
    let offline = Command::new(env!("CARGO_BIN_EXE_sealpost"))
        .args([
            "--config",
            "/nonexistent/sealpost.toml",
            "message",
            "verify-report",
            out_s,
        ])
        .output()
        .unwrap();
    assert!(offline.status.success(), "{offline:?}");

    // One changed byte: the recipient's address.
    std::fs::write(
        &out,
        json.replacen("customer@example.com", "customer@example.org", 1),
    )
    .unwrap();
    let err = env.fails(&["message", "verify-report", out_s, "--key", &public]);
    assert!(
        err.contains("does NOT verify") && err.contains("signature"),
        "{err}"
    );

    // Another node's key: caught by --key.
    let other = sealpost_crypto::report::ReportKey::generate();
    let forged = other
        .sign(
            &sealpost_crypto::report::verify_report(json.as_bytes(), None)
                .unwrap()
                .document,
        )
        .unwrap();
    std::fs::write(&out, forged).unwrap();
    env.ok(&["message", "verify-report", out_s]);
    let err = env.fails(&["message", "verify-report", out_s, "--key", &public]);
    assert!(err.contains("another key"), "{err}");

    let err = env.fails(&["message", "report", "ffff", "--out", out_s]);
    assert!(err.contains("no message"), "{err}");
}
