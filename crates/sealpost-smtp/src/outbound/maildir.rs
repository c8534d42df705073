//! Delivery into a local maildir, one file per envelope recipient, the way
//! Postfix's local(8) does it. Used by `sealpost demo` and as a relay-less
//! next hop.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use super::types::{OutboundMessage, RcptResult};
use crate::lineio::sanitize_line;

/// Maildir delivery: file I/O and fsync block, so they run off the async workers.
pub(super) async fn deliver_async(dir: &Path, msg: &OutboundMessage<'_>) -> Vec<RcptResult> {
    let dir = dir.to_path_buf();
    let from = msg.mail_from.to_string();
    let rcpts = msg.rcpt_to.to_vec();
    let data = msg.data.to_vec();
    let n = rcpts.len();
    let joined = tokio::task::spawn_blocking(move || {
        deliver(
            &dir,
            &OutboundMessage {
                mail_from: &from,
                rcpt_to: &rcpts,
                data: &data,
            },
        )
    })
    .await;
    match joined {
        Ok(results) => results,
        Err(e) => vec![RcptResult::Deferred(format!("maildir delivery task failed: {e}")); n],
    }
}

/// Writes one file per recipient into `dir/new`, via `dir/tmp` so a reader
/// never sees a partial file. The file starts with `Delivered-To: {rcpt}`,
/// followed by the message with CRLF converted to LF (maildir files use the
/// local line ending). Any I/O error defers that recipient; nothing panics.
pub fn deliver(dir: &Path, msg: &OutboundMessage<'_>) -> Vec<RcptResult> {
    if let Err(e) = ensure_dirs(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "maildir not usable");
        let reason = format!("maildir {}: {e}", dir.display());
        return msg
            .rcpt_to
            .iter()
            .map(|_| RcptResult::Deferred(reason.clone()))
            .collect();
    }
    let body = crlf_to_lf(msg.data);
    msg.rcpt_to
        .iter()
        .map(|rcpt| match write_one(dir, rcpt, &body) {
            Ok(()) => RcptResult::Delivered,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "maildir delivery failed");
                RcptResult::Deferred(format!("maildir {}: {e}", dir.display()))
            }
        })
        .collect()
}

fn ensure_dirs(dir: &Path) -> io::Result<()> {
    for sub in ["tmp", "new", "cur"] {
        fs::create_dir_all(dir.join(sub))?;
    }
    Ok(())
}

fn write_one(dir: &Path, rcpt: &str, body: &[u8]) -> io::Result<()> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    // Maildir naming: time, something unique on this host, host. A random
    // UUID makes it unique across processes and nodes sharing the directory.
    let name = format!(
        "{}.M{}P{}R{}.sealpost",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    );
    let tmp = dir.join("tmp").join(&name);
    let new = dir.join("new").join(&name);
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        // The recipient becomes a header line: it must not be able to inject
        // further headers.
        f.write_all(format!("Delivered-To: {}\n", sanitize_line(rcpt)).as_bytes())?;
        f.write_all(body)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, &new)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    // Make the rename itself durable. Some platforms cannot fsync a
    // directory; the file is already complete, so only warn.
    if let Err(e) = File::open(dir.join("new")).and_then(|d| d.sync_all()) {
        tracing::debug!(error = %e, "could not fsync maildir directory");
    }
    Ok(())
}

fn crlf_to_lf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i] == b'\r' && data.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(data[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may panic on failure
mod tests {
    use super::*;

    fn files(dir: &Path) -> Vec<Vec<u8>> {
        let mut v: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| fs::read(e.unwrap().path()).unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn delivers_one_file_per_recipient() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("outbox");
        let rcpts = vec!["a@x.test".to_string(), "b@x.test".to_string()];
        let msg = OutboundMessage {
            mail_from: "s@y.test",
            rcpt_to: &rcpts,
            data: b"Subject: t\r\n\r\nline\r\nbare\rcr\r\n",
        };
        let res = deliver(&dir, &msg);
        assert_eq!(res, vec![RcptResult::Delivered, RcptResult::Delivered]);
        assert!(dir.join("cur").is_dir());
        assert!(files(&dir.join("tmp")).is_empty());
        let got = files(&dir.join("new"));
        assert_eq!(
            got,
            vec![
                b"Delivered-To: a@x.test\nSubject: t\n\nline\nbare\rcr\n".to_vec(),
                b"Delivered-To: b@x.test\nSubject: t\n\nline\nbare\rcr\n".to_vec(),
            ]
        );
    }

    #[test]
    fn unusable_directory_defers() {
        let tmp = tempfile::tempdir().unwrap();
        // A regular file where a directory is needed fails even for root.
        let file = tmp.path().join("file");
        fs::write(&file, b"x").unwrap();
        let rcpts = vec!["a@x".to_string(), "b@x".to_string()];
        let msg = OutboundMessage {
            mail_from: "",
            rcpt_to: &rcpts,
            data: b"x\r\n",
        };
        let res = deliver(&file.join("maildir"), &msg);
        assert_eq!(res.len(), 2);
        assert!(res.iter().all(|r| matches!(r, RcptResult::Deferred(_))));
    }

    #[cfg(unix)]
    #[test]
    fn read_only_directory_defers() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("md");
        ensure_dirs(&dir).unwrap();
        fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o555)).unwrap();
        // root ignores permission bits; the check is meaningless then.
        if fs::write(dir.join("tmp").join("probe"), b"x").is_ok() {
            eprintln!("running with privileges that ignore permissions; skipping");
            return;
        }
        let rcpts = vec!["a@x".to_string()];
        let msg = OutboundMessage {
            mail_from: "",
            rcpt_to: &rcpts,
            data: b"x\r\n",
        };
        let res = deliver(&dir, &msg);
        assert!(matches!(&res[..], [RcptResult::Deferred(_)]));
        fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn header_injection_in_recipient_is_neutralised() {
        let tmp = tempfile::tempdir().unwrap();
        let rcpts = vec!["a@x\nBcc: evil@y".to_string()];
        let msg = OutboundMessage {
            mail_from: "",
            rcpt_to: &rcpts,
            data: b"x\r\n",
        };
        assert_eq!(deliver(tmp.path(), &msg), vec![RcptResult::Delivered]);
        let got = files(&tmp.path().join("new"));
        assert_eq!(got, vec![b"Delivered-To: a@x Bcc: evil@y\nx\n".to_vec()]);
    }
}
