//! Background work that gives way to the HTTP requests: how many requests
//! the server is answering right now, and threads that step back from the
//! request threads on a busy machine.
//!
//! The mail worker claims larger rounds when no request is waiting: a round
//! of 128 mails costs a third less CPU per mail than one of 20 and drains a
//! backlog twice as fast, but taken while applicants file cases it took
//! that CPU from them (issue 19's twenty-fourth round, docs/performance.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Requests under way in this process; cloned into the HTTP middleware and
/// the background workers.
#[derive(Clone, Default, Debug)]
pub struct RequestsInFlight(Arc<AtomicUsize>);

impl RequestsInFlight {
    /// Counts one request until the returned guard is dropped (when its
    /// answer is ready, or when the client went away first).
    pub fn enter(&self) -> InFlight {
        self.0.fetch_add(1, Ordering::Relaxed);
        InFlight(self.0.clone())
    }

    /// Requests under way at this moment.
    pub fn now(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// One request of [`RequestsInFlight`], counted while it lives.
#[derive(Debug)]
pub struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How far a background thread steps back from the HTTP workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GiveWay {
    /// Runs only on a core no other thread wants (SCHED_IDLE; where that
    /// is refused, the lowest niceness): password hashing.
    Always,
    /// Takes a small share of a busy core (niceness 10: about a tenth of a
    /// request thread's share) and all of an idle one: the mail worker,
    /// which must keep going under a steady load, only more slowly.
    Mostly,
}

/// How much nicer than the request threads [`GiveWay::Mostly`] makes a
/// thread: CFS weighs a thread 10 steps nicer at about a tenth (110
/// against 1024 at niceness 10 and 0).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
const MAIL_NICER_BY: libc::c_int = 10;

/// Lowers the calling thread's scheduling priority; threads it starts
/// afterwards inherit it (Linux; elsewhere nothing changes).
pub fn give_way(how: GiveWay) {
    #[cfg(target_os = "linux")]
    // SAFETY: the calls change only the calling thread's scheduling.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        match how {
            GiveWay::Always => {
                let param = libc::sched_param { sched_priority: 0 };
                if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
                    libc::setpriority(libc::PRIO_PROCESS, tid, 19);
                }
            }
            GiveWay::Mostly => {
                // Relative to the thread's own: a server started under
                // `nice` keeps its mail below its requests, never above.
                let own = libc::getpriority(libc::PRIO_PROCESS, tid);
                libc::setpriority(libc::PRIO_PROCESS, tid, (own + MAIL_NICER_BY).min(19));
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = how;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_counts_until_its_guard_is_dropped() {
        let requests = RequestsInFlight::default();
        let seen_elsewhere = requests.clone();
        assert_eq!(seen_elsewhere.now(), 0);
        let first = requests.enter();
        let second = requests.enter();
        assert_eq!(seen_elsewhere.now(), 2);
        drop(first);
        assert_eq!(seen_elsewhere.now(), 1);
        drop(second);
        assert_eq!(seen_elsewhere.now(), 0);
    }

    /// The calling thread's niceness.
    #[cfg(target_os = "linux")]
    fn niceness() -> libc::c_int {
        // SAFETY: reads the calling thread's scheduling only.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::getpriority(libc::PRIO_PROCESS, tid)
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_thread_that_mostly_gives_way_and_the_threads_it_starts_run_10_steps_nicer() {
        let ours = niceness();
        let (own, started) = std::thread::spawn(|| {
            give_way(GiveWay::Mostly);
            (niceness(), std::thread::spawn(niceness).join().unwrap())
        })
        .join()
        .unwrap();
        let expected = (ours + MAIL_NICER_BY).min(19);
        assert_ne!(expected, ours, "this test needs a thread below niceness 19");
        assert_eq!((own, started), (expected, expected));
        assert_eq!(niceness(), ours, "only the calling thread changed");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_thread_that_always_gives_way_runs_only_on_idle_cores() {
        let (policy, nice) = std::thread::spawn(|| {
            give_way(GiveWay::Always);
            // SAFETY: reads the calling thread's scheduling only.
            (unsafe { libc::sched_getscheduler(0) }, niceness())
        })
        .join()
        .unwrap();
        assert!(
            policy == libc::SCHED_IDLE || nice == 19,
            "policy {policy}, niceness {nice}"
        );
    }
}
