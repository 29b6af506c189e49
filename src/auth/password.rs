//! argon2id hashing on a small dedicated thread pool.
//!
//! One hash costs ~11 ms of a core. Running them on the async executor would
//! stall every other request; running them unbounded on the blocking pool
//! would take every core. So hashes run on `concurrency` threads of their own
//! at a lower scheduling priority, and callers wait for a turn asynchronously.

use std::sync::{Arc, Mutex, mpsc};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::rngs::OsRng;
use tokio::sync::{Semaphore, oneshot};

/// OWASP's recommended argon2id parameters: 19 MiB, 2 passes, 1 lane.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_blocking(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing with valid parameters")
        .to_string()
}

/// Verifies against a stored PHC string; a malformed hash never matches.
pub fn verify_blocking(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

type Job = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct PasswordHasher {
    jobs: mpsc::Sender<Job>,
    turns: Arc<Semaphore>,
    /// Verified against when the e-mail is unknown, so both paths cost the same.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    pub fn new(concurrency: usize) -> Self {
        return_large_allocations_to_the_system();
        let (jobs, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..concurrency {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || {
                    lower_thread_priority();
                    loop {
                        let job = {
                            let guard = receiver.lock().unwrap_or_else(|p| p.into_inner());
                            guard.recv()
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return, // every sender dropped: shut down
                        }
                    }
                })
                .expect("spawn argon2 thread");
        }
        Self {
            jobs,
            turns: Arc::new(Semaphore::new(concurrency)),
            dummy_hash: hash_blocking("medesk-timing-equaliser-not-a-password").into(),
        }
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
        let _turn = self.turns.acquire().await.expect("semaphore never closed");
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(work());
        });
        self.jobs.send(job).expect("argon2 threads are running");
        result.await.expect("argon2 job completed")
    }

    pub async fn hash(&self, password: String) -> String {
        self.run(move || hash_blocking(&password)).await
    }

    /// `stored` is None for an unknown account: a dummy hash is verified so the
    /// answer takes as long as for a wrong password.
    pub async fn verify(&self, password: String, stored: Option<String>) -> bool {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let matched = self.run(move || verify_blocking(&password, &stored)).await;
        known && matched
    }
}

/// Hashing threads run only when no request thread wants the core:
/// SCHED_IDLE where allowed, else the lowest niceness.
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: both calls only change the calling thread's scheduling.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, 19);
        }
    }
}

/// Each argon2 hash allocates 19 MiB; glibc would keep every such block
/// after it is freed (≈190 MiB per hashing thread, measured). Serving blocks
/// of 1 MiB and more straight from mmap gives them back at once.
fn return_large_allocations_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes glibc's allocator; any value is valid.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_argon2id_with_owasp_parameters() {
        let hash = hash_blocking("a long enough password");
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_blocking("a long enough password", &hash));
        assert!(!verify_blocking("a wrong password!!", &hash));
        assert!(!verify_blocking(
            "a long enough password",
            "not-a-phc-string"
        ));
    }

    #[test]
    fn salts_differ() {
        assert_ne!(
            hash_blocking("same password here"),
            hash_blocking("same password here")
        );
    }

    #[tokio::test]
    async fn unknown_account_never_verifies() {
        let hasher = PasswordHasher::new(1);
        let stored = hasher.hash("the right password".into()).await;
        assert!(
            hasher
                .verify("the right password".into(), Some(stored.clone()))
                .await
        );
        assert!(
            !hasher
                .verify("the wrong password".into(), Some(stored))
                .await
        );
        assert!(
            !hasher
                .verify("medesk-timing-equaliser-not-a-password".into(), None)
                .await
        );
    }
}
