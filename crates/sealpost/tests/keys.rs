//! Key backup, restore and master-key rotation as an operator runs them: the built binary
//! against the databases of real nodes, and the old envelope opened in the portal afterwards.
#![allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use sealpost_core::KeyRing;
use sealpost_crypto::{KeyId, MasterKey};
use sealpost_smtp::outbound::RcptResult;
use sealpost_store::Store;
use sealpost_store::testing::{fresh_database, server_url};

const ADVISOR: &str = "advisor@bank.example";
const CUSTOMER: &str = "kunde@example.com";
const SECRET: &str = "Your loan of 48,000 EUR is approved.";

fn flagged_mail() -> Vec<u8> {
    crlf(&format!(
        "From: Anna Advisor <{ADVISOR}>\nTo: {CUSTOMER}\nSubject: Loan [secure]\n\
Date: Thu, 26 Nov 2026 10:00:00 +0000\nMessage-ID: <loan-1@bank.example>\nMIME-Version: 1.0\n\
Content-Type: text/plain; charset=utf-8\n\n{SECRET}\n"
    ))
}

/// A config file for the CLI: the given database and master key(s).
fn write_config(
    dir: &Path,
    name: &str,
    db: &str,
    master: &Path,
    previous: Option<&Path>,
) -> PathBuf {
    let mut text = format!(
        "data_dir = \"{}\"\n[database]\nurl = \"{db}\"\n[keys]\nmaster_key_file = \"{}\"\n",
        dir.join(format!("{name}-data")).display(),
        master.display()
    );
    if let Some(p) = previous {
        text.push_str(&format!("previous_master_key_file = \"{}\"\n", p.display()));
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn sealpost(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sealpost"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("SEALPOST_LOG", "error")
        .env_remove("SEALPOST_CONFIG")
        .env_remove("SEALPOST_KEYS__MASTER_KEY")
        .env_remove("SEALPOST_KEYS__PREVIOUS_MASTER_KEY")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(config: &Path, args: &[&str]) -> String {
    let (success, out, err) = sealpost(config, args);
    assert!(success, "{args:?} failed: {err}");
    out
}

fn fails(config: &Path, args: &[&str]) -> String {
    let (success, _, err) = sealpost(config, args);
    assert!(!success, "{args:?} should fail");
    assert_eq!(err.trim().lines().count(), 1, "one-line reason: {err}");
    err
}

/// Logs in with the recipient's password and opens the envelope; returns the page.
async fn open_envelope(node: &TestNode, password: &str, payload: &str) -> (u16, String) {
    let client = node.client();
    let r = node.login(&client, CUSTOMER, password).await;
    assert_eq!(r.status(), 303, "login with the backed-up password hash");
    complete_first_login(node, &client, password).await;
    let r = node.post_open(&client, payload).await;
    assert_eq!(r.status(), 303);
    let r = get(node, &client, &location(&r)).await;
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

/// The keys of every account in `db` as the given key ring sees them: Ok(n) when all n open.
async fn all_keys_open(db: &str, keys: &KeyRing) -> Result<usize, String> {
    let store = Store::connect(db).await.unwrap();
    let rows = store.keys_after("", 0, 10_000).await.unwrap();
    store.close().await;
    for row in &rows {
        let id = KeyId {
            account_id: row.account_id.parse().unwrap(),
            version: row.version,
        };
        keys.unwrap(&id, &row.wrapped)
            .map_err(|e| format!("{} v{}: {e}", row.account_id, row.version))?;
    }
    Ok(rows.len())
}

fn load(path: &Path) -> MasterKey {
    MasterKey::from_base64(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn envelope_survives_backup_restore_on_another_backend_and_master_rotation() {
    let work = tempfile::tempdir().unwrap();

    // 1. A node on SQLite seals a mail; the customer's account and key are created.
    let source = TestNode::start().await;
    let results = source.send(ADVISOR, &[CUSTOMER], &flagged_mail()).await;
    assert_eq!(results, vec![RcptResult::Delivered]);
    let mails = source.wait_for_mails(2).await;
    let carrier = mails.iter().find(|m| kind_of(m) == "carrier").unwrap();
    let cred = mails.iter().find(|m| kind_of(m) == "credentials").unwrap();
    let payload = carrier_payload(carrier);
    let password = credentials_password(cred);
    let (status, page) = open_envelope(&source, &password, &payload).await;
    assert_eq!(status, 200);
    assert!(page.contains(SECRET));
    // A second key version, so the backup carries more than version 1.
    let account = source
        .node
        .store
        .account_by_address(CUSTOMER)
        .await
        .unwrap()
        .unwrap();
    source
        .node
        .keys
        .rotate(&source.node.store, &account.id)
        .await
        .unwrap();

    // 2. Back it up with the CLI while the node runs.
    // The node's directory goes away with it: keep the master key (as an operator would).
    let old_master = work.path().join("old-master.key");
    std::fs::copy(source.config.master_key_file(), &old_master).unwrap();
    let source_cfg = write_config(
        work.path(),
        "source",
        &source.config.database_url(),
        &old_master,
        None,
    );
    let backup = work.path().join("keys.backup");
    let out = ok(&source_cfg, &["keys", "backup", backup.to_str().unwrap()]);
    assert!(
        out.contains("1 accounts, 2 keys and 1 message secrets"),
        "the message secret travels with the keys: {out}"
    );
    let sealed = std::fs::read(&backup).unwrap();
    assert!(
        !sealed
            .windows(CUSTOMER.len())
            .any(|w| w == CUSTOMER.as_bytes()),
        "the backup is encrypted"
    );
    let err = fails(&source_cfg, &["keys", "backup", backup.to_str().unwrap()]);
    assert!(err.contains("--force"), "{err}");
    source.stop().await;

    // 3. Restore into a fresh database of another backend.
    let target_label = if server_url("postgres").is_some() {
        "postgres"
    } else {
        eprintln!("SEALPOST_TEST_POSTGRES_URL not set: restoring into a fresh SQLite file instead");
        "sqlite"
    };
    let (target_db, guard) = fresh_database(&server_url(target_label).unwrap())
        .await
        .unwrap();
    // The wrong master key neither opens the backup nor touches the database.
    let stranger = work.path().join("stranger.key");
    MasterKey::load_or_create(&stranger).unwrap();
    let stranger_cfg = write_config(work.path(), "stranger", &target_db, &stranger, None);
    let err = fails(
        &stranger_cfg,
        &["keys", "restore", backup.to_str().unwrap()],
    );
    assert!(err.contains("master key"), "{err}");
    let target_cfg = write_config(work.path(), "target", &target_db, &old_master, None);
    let out = ok(&target_cfg, &["keys", "restore", backup.to_str().unwrap()]);
    assert!(out.contains("restored 1 accounts and 2 keys"), "{out}");
    let err = fails(&target_cfg, &["keys", "restore", backup.to_str().unwrap()]);
    assert!(err.contains("empty database"), "{err}");

    // 4. A node on the restored database with the same master key opens the old envelope.
    let db = target_db.clone();
    let master = old_master.clone();
    let restored = TestNode::start_with(move |c| {
        c.database.url = Some(db);
        c.keys.master_key_file = Some(master);
    })
    .await;
    let (status, page) = open_envelope(&restored, &password, &payload).await;
    assert_eq!(status, 200, "{target_label}: {page}");
    assert!(page.contains(SECRET));
    restored.stop().await;

    // 5. Master rotation: a new key; nodes run with new as current and old as previous.
    let new_master = work.path().join("new-master.key");
    ok(
        &target_cfg,
        &["keys", "new-master", new_master.to_str().unwrap()],
    );
    fails(
        &target_cfg,
        &["keys", "new-master", new_master.to_str().unwrap()],
    );
    let start_with_keys = |current: PathBuf, previous: Option<PathBuf>| {
        let db = target_db.clone();
        TestNode::start_with(move |c| {
            c.database.url = Some(db);
            c.keys.master_key_file = Some(current);
            c.keys.previous_master_key_file = previous;
        })
    };
    let during = start_with_keys(new_master.clone(), Some(old_master.clone())).await;
    // Both keys are accepted before anything is re-wrapped.
    let (status, page) = open_envelope(&during, &password, &payload).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(SECRET));
    let new_only = KeyRing::new(load(&new_master));
    assert!(all_keys_open(&target_db, &new_only).await.is_err());

    // Re-wrap while the node keeps serving.
    let rotate_cfg = write_config(
        work.path(),
        "rotate",
        &target_db,
        &new_master,
        Some(&old_master),
    );
    let out = ok(&rotate_cfg, &["keys", "rotate-master", "--batch", "1"]);
    // Two recipient keys and the message secret of the format-2 envelope.
    assert!(out.contains("re-wrapped 3 keys"), "{out}");
    let (status, page) = open_envelope(&during, &password, &payload).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(SECRET));
    let out = ok(&rotate_cfg, &["keys", "rotate-master"]);
    assert!(
        out.contains("re-wrapped 0 keys") && out.contains("3 already"),
        "{out}"
    );
    during.stop().await;
    assert_eq!(all_keys_open(&target_db, &new_only).await, Ok(2));
    let old_only = KeyRing::new(load(&old_master));
    assert!(
        all_keys_open(&target_db, &old_only).await.is_err(),
        "old key no longer needed"
    );

    // 6. The previous key is dropped from the configuration: the envelope still opens.
    let after = start_with_keys(new_master.clone(), None).await;
    let (status, page) = open_envelope(&after, &password, &payload).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(SECRET));
    after.stop().await;

    // A backup made under the new master key restores with it (here into MariaDB when set).
    let new_cfg = write_config(work.path(), "new", &target_db, &new_master, None);
    let backup2 = work.path().join("keys2.backup");
    ok(&new_cfg, &["keys", "backup", backup2.to_str().unwrap()]);
    if let Some(mysql) = server_url("mysql") {
        let (mysql_db, mysql_guard) = fresh_database(&mysql).await.unwrap();
        let mysql_cfg = write_config(work.path(), "mysql", &mysql_db, &new_master, None);
        let out = ok(&mysql_cfg, &["keys", "restore", backup2.to_str().unwrap()]);
        assert!(out.contains("restored 1 accounts and 2 keys"), "{out}");
        assert_eq!(all_keys_open(&mysql_db, &new_only).await, Ok(2));
        // Rotation on MariaDB too: back to the old key as current.
        let back_cfg = write_config(
            work.path(),
            "back",
            &mysql_db,
            &old_master,
            Some(&new_master),
        );
        let out = ok(&back_cfg, &["keys", "rotate-master"]);
        // Two recipient keys and the message secret of the format-2 envelope.
        assert!(out.contains("re-wrapped 3 keys"), "{out}");
        assert_eq!(all_keys_open(&mysql_db, &old_only).await, Ok(2));
        mysql_guard.drop_database().await.unwrap();
    } else {
        eprintln!("SEALPOST_TEST_MYSQL_URL not set: MariaDB restore skipped");
    }
    guard.drop_database().await.unwrap();
}
