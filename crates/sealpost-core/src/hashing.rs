//! Where Argon2 runs: on a few dedicated threads (one per core, at most four), never on the
//! async executor and never on tokio's blocking pool.
//!
//! Each Argon2 call needs about 19 MiB of working memory. On the blocking pool, a burst of
//! logins or of new recipients ran on as many threads as there were requests; every thread got
//! its own allocator arena and each arena kept its 19 MiB afterwards, so the process grew by
//! hundreds of megabytes and 200 simultaneous logins would have wanted 4 GB. A fixed set of
//! threads bounds both: requests beyond it wait in line, which is also what an attacker who
//! floods the login form gets.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};

use crate::CoreError;

type Job = Box<dyn FnOnce() + Send>;

fn pool() -> &'static Sender<Job> {
    static POOL: OnceLock<Sender<Job>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (jobs, incoming) = mpsc::channel::<Job>();
        let incoming = Arc::new(Mutex::new(incoming));
        let threads = std::thread::available_parallelism()
            .map(|n| n.get().clamp(1, 4))
            .unwrap_or(2);
        for i in 0..threads {
            let incoming = Arc::clone(&incoming);
            let spawned = std::thread::Builder::new()
                .name(format!("sealpost-argon2-{i}"))
                .spawn(move || work(&incoming));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        jobs
    })
}

fn work(incoming: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only while taking the next job, not while running it.
        let job = match incoming.lock() {
            Ok(rx) => rx.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(job) = job else { return };
        // A panicking job drops its reply channel (the caller sees `Join`); the thread lives on.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
    }
}

/// Runs `f` (an Argon2 hash or verification) on the hashing threads and waits for it.
pub async fn run<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, CoreError> {
    let (reply, result) = tokio::sync::oneshot::channel();
    pool()
        .send(Box::new(move || {
            let _ = reply.send(f());
        }))
        .map_err(|_| CoreError::Join)?;
    result.await.map_err(|_| CoreError::Join)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_and_survives_a_panicking_one() {
        assert_eq!(run(|| 6 * 7).await.unwrap(), 42);
        let panicked = run(|| -> u8 { panic!("boom") }).await;
        assert!(matches!(panicked, Err(CoreError::Join)));
        // More jobs than threads: all complete, in whatever order the threads take them.
        let all: Vec<_> = (0..16u32).map(|i| run(move || i * 2)).collect();
        let mut got = Vec::new();
        for job in all {
            got.push(job.await.unwrap());
        }
        assert_eq!(got, (0..16u32).map(|i| i * 2).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_real_hash_verifies() {
        let hash = run(|| sealpost_crypto::hash_secret("correct horse"))
            .await
            .unwrap()
            .unwrap();
        assert!(
            run(move || sealpost_crypto::verify_secret("correct horse", &hash))
                .await
                .unwrap()
        );
    }
}
