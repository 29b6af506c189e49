//! argon2id hashing on a small dedicated thread pool.
//!
//! One hash keeps a core busy for milliseconds (figures in
//! docs/performance.md). Running them on the async executor would
//! stall every other request; running them unbounded on the blocking pool
//! would take every core. So hashes run on `concurrency` threads of their own
//! at a lower scheduling priority, and callers wait for a turn asynchronously.

use std::cell::RefCell;
use std::sync::{Arc, Mutex, mpsc};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::rngs::OsRng;
use tokio::sync::{Semaphore, oneshot};

/// argon2id with 7 MiB, 5 passes, 1 lane: one of the configurations OWASP's
/// Password Storage Cheat Sheet lists as equal in defence to 19 MiB and 2
/// passes. The same work in less memory: on a 2-core machine the request
/// threads' p99 rose less while logins kept coming, and 12 MiB less is held
/// per hashing thread (issue 19, eighteenth round). Hashes stored with other
/// parameters still verify with their own and are rehashed at the next
/// sign-in ([`needs_rehash`]).
fn params() -> Params {
    Params::new(7 * 1024, 5, 1, None).expect("valid argon2 parameters")
}

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
}

/// Whether a stored hash was made otherwise than [`hash_blocking`] makes
/// one now (older parameters, another algorithm or version). A string that
/// is no PHC hash at all needs none: it never verifies.
pub fn needs_rehash(stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let current = params();
    let same = Algorithm::try_from(parsed.algorithm) == Ok(Algorithm::Argon2id)
        && parsed.version == Some(Version::V0x13.into())
        && Params::try_from(&parsed).is_ok_and(|stored| {
            (stored.m_cost(), stored.t_cost(), stored.p_cost())
                == (current.m_cost(), current.t_cost(), current.p_cost())
        });
    !same
}

/// What a password check found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    /// Unknown account, wrong password or unreadable hash.
    No,
    /// The password matches; `rehashed` is its hash with today's
    /// parameters when the stored one has others, to store in its place.
    Yes { rehashed: Option<String> },
}

/// A hashing thread keeps its working memory while logins keep coming and
/// returns it after this long without one.
const KEEP_WORKING_MEMORY_WHILE_BUSY: std::time::Duration = std::time::Duration::from_secs(2);

thread_local! {
    /// argon2's working memory (7 MiB), kept by each hashing thread while
    /// it is busy. A fresh block per hash would be mapped, faulted in page by
    /// page and unmapped every time (TLB shootdowns that reach the request
    /// threads too).
    static WORKING_MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs argon2 into `out` on this thread's reusable working memory.
fn compute(
    argon2: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    WORKING_MEMORY.with_borrow_mut(|blocks| {
        let needed = argon2.params().block_count();
        if blocks.len() < needed {
            blocks.resize(needed, Block::default());
        }
        argon2.hash_password_into_with_memory(password, salt, out, &mut blocks[..needed])
    })
}

pub fn hash_blocking(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    let argon2 = argon2();
    let mut salt_buffer = [0u8; 64];
    let phc = (|| -> argon2::password_hash::Result<String> {
        let salt_bytes = salt.decode_b64(&mut salt_buffer)?;
        let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
            Ok(compute(&argon2, password.as_bytes(), salt_bytes, out)?)
        })?;
        let hash = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(argon2.params())?,
            salt: Some(salt.as_salt()),
            hash: Some(output),
        };
        Ok(hash.to_string())
    })();
    phc.expect("argon2 hashing with valid parameters")
}

/// Verifies against a stored PHC string with the parameters it names; a
/// malformed hash never matches.
pub fn verify_blocking(password: &str, stored: &str) -> bool {
    let verify = || -> argon2::password_hash::Result<bool> {
        let parsed = PasswordHash::new(stored)?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Ok(false);
        };
        let algorithm = Algorithm::try_from(parsed.algorithm)?;
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()?
            .unwrap_or_default();
        let argon2 = Argon2::new(algorithm, version, Params::try_from(&parsed)?);
        let mut salt_buffer = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_buffer)?;
        let computed = Output::init_with(expected.len(), |out| {
            Ok(compute(&argon2, password.as_bytes(), salt_bytes, out)?)
        })?;
        // Output's equality is constant-time.
        Ok(computed == expected)
    };
    verify().unwrap_or(false)
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
        let (jobs, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..concurrency {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{index}"))
                .spawn(move || {
                    crate::busy::give_way(crate::busy::GiveWay::Always);
                    loop {
                        let job = {
                            let guard = receiver.lock().unwrap_or_else(|p| p.into_inner());
                            match guard.recv_timeout(KEEP_WORKING_MEMORY_WHILE_BUSY) {
                                Err(mpsc::RecvTimeoutError::Timeout) => {
                                    // A quiet spell: give the memory back.
                                    WORKING_MEMORY.take();
                                    guard.recv()
                                }
                                Ok(job) => Ok(job),
                                Err(mpsc::RecvTimeoutError::Disconnected) => return,
                            }
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return, // every sender dropped: shut down
                        }
                    }
                })
                .expect("spawn argon2 thread");
        }
        // Hashed on a hashing thread so no other thread keeps working memory.
        let (done, dummy_hash) = mpsc::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(hash_blocking("medesk-timing-equaliser-not-a-password"));
        });
        jobs.send(job).expect("argon2 threads are running");
        Self {
            jobs,
            turns: Arc::new(Semaphore::new(concurrency)),
            dummy_hash: dummy_hash.recv().expect("dummy hash computed").into(),
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
    /// answer takes as long as for a wrong password. A match against a hash
    /// of older parameters is hashed again in the same turn.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Verified {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        self.run(move || {
            if !(verify_blocking(&password, &stored) && known) {
                return Verified::No;
            }
            let rehashed = needs_rehash(&stored).then(|| hash_blocking(&password));
            Verified::Yes { rehashed }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An argon2id PHC string made by the argon2 crate itself with other
    /// parameters than today's.
    fn hash_with(memory_kib: u32, passes: u32, password: &str) -> String {
        use argon2::password_hash::PasswordHasher as _;
        Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(memory_kib, passes, 1, None).unwrap(),
        )
        .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string()
    }

    #[test]
    fn hash_is_argon2id_with_owasp_parameters() {
        let hash = hash_blocking("a long enough password");
        assert!(hash.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{hash}");
        assert!(!needs_rehash(&hash));
        assert!(verify_blocking("a long enough password", &hash));
        assert!(!verify_blocking("a wrong password!!", &hash));
        assert!(!verify_blocking(
            "a long enough password",
            "not-a-phc-string"
        ));
    }

    #[test]
    fn agrees_with_the_argon2_crates_own_phc_strings() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let salt = SaltString::generate(&mut OsRng);
        let theirs = argon2()
            .hash_password(b"interoperable password", &salt)
            .unwrap()
            .to_string();
        assert!(verify_blocking("interoperable password", &theirs));
        assert!(!verify_blocking("interoperable passwore", &theirs));

        let ours = hash_blocking("interoperable password");
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            argon2()
                .verify_password(b"interoperable password", &parsed)
                .is_ok()
        );

        // Stored hashes keep their own parameters (e.g. from before a change).
        let weaker = hash_with(8 * 1024, 1, "older parameters");
        assert!(verify_blocking("older parameters", &weaker));
        assert!(!verify_blocking("older parameterz", &weaker));
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
        assert_eq!(
            hasher
                .verify("the right password".into(), Some(stored.clone()))
                .await,
            Verified::Yes { rehashed: None }
        );
        assert_eq!(
            hasher
                .verify("the wrong password".into(), Some(stored))
                .await,
            Verified::No
        );
        assert_eq!(
            hasher
                .verify("medesk-timing-equaliser-not-a-password".into(), None)
                .await,
            Verified::No
        );
    }

    #[tokio::test]
    async fn a_match_against_older_parameters_is_hashed_again() {
        // What medesk stored before issue 19's eighteenth round.
        let older = hash_with(19 * 1024, 2, "an older password hash");
        assert!(needs_rehash(&older));
        assert!(!needs_rehash("not-a-phc-string"));

        let hasher = PasswordHasher::new(1);
        assert_eq!(
            hasher
                .verify("an older password hasx".into(), Some(older.clone()))
                .await,
            Verified::No,
            "a wrong password gets no new hash"
        );
        let Verified::Yes {
            rehashed: Some(rehashed),
        } = hasher
            .verify("an older password hash".into(), Some(older))
            .await
        else {
            panic!("the right password against older parameters is hashed again");
        };
        assert!(!needs_rehash(&rehashed), "{rehashed}");
        assert!(verify_blocking("an older password hash", &rehashed));
    }
}
