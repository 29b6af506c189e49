//! What the processes on this machine use, read from `/proc`: the CPU time
//! of the server, of this load generator, of PostgreSQL and of everything
//! else during a phase, and the server's resident memory during a scenario.

use std::future::Future;
use std::time::Duration;

use crate::common::{Backend, proc_status_kib};
use crate::report::round3;

/// How often the server's VmRSS is read while a scenario runs.
const RSS_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// CPU seconds used so far, read at the start and at the end of a phase
/// (`None` where `/proc` could not be read).
pub struct CpuTimes {
    server: Option<f64>,
    loadgen: Option<f64>,
    machine: Option<f64>,
    database: Option<f64>,
}

impl CpuTimes {
    /// `server_pids`: the server's instances (one, or two in `two-instances`), summed.
    pub fn now(server_pids: &[u32], backend: Backend) -> Self {
        Self {
            server: server_pids
                .iter()
                .map(|pid| cpu_seconds(&pid.to_string()))
                .sum(),
            // Its waited-for children too: wrk, when it drives a phase.
            loadgen: cpu_seconds("self")
                .zip(children_cpu_seconds())
                .map(|(own, children)| own + children),
            machine: machine_cpu_seconds(),
            database: database_cpu_seconds(backend),
        }
    }
}

/// Cores busy on average between two [`CpuTimes`] (1.0 = one core busy);
/// NaN where a reading is missing.
pub struct CpuCores {
    pub server: f64,
    /// This load generator: all its threads, every phase running, and wrk
    /// when it drove the phase.
    pub loadgen: f64,
    /// The PostgreSQL server's processes (0 on SQLite, which runs inside the
    /// server).
    pub database: f64,
    /// Everything else on the machine: well above 0 means other work
    /// competed for the cores and disturbed the figures.
    pub other: f64,
}

impl CpuCores {
    pub fn between(before: &CpuTimes, after: &CpuTimes, seconds: f64) -> Self {
        let per_second = |before: Option<f64>, after: Option<f64>| match (before, after) {
            (Some(before), Some(after)) => round3((after - before) / seconds),
            _ => f64::NAN,
        };
        let server = per_second(before.server, after.server);
        let loadgen = per_second(before.loadgen, after.loadgen);
        let machine = per_second(before.machine, after.machine);
        let database = per_second(before.database, after.database);
        Self {
            server,
            loadgen,
            database,
            other: round3((machine - server - loadgen - database).max(0.0)),
        }
    }
}

/// Runs `work` while reading `pid`'s VmRSS every [`RSS_SAMPLE_INTERVAL`];
/// returns its output and the largest VmRSS read (KiB), before, during and
/// after it.
pub async fn with_peak_rss<T>(pid: u32, work: impl Future<Output = T>) -> (T, u64) {
    let rss = || proc_status_kib(pid, "VmRSS").unwrap_or(0);
    let mut peak_kib = rss();
    let mut tick = tokio::time::interval(RSS_SAMPLE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tokio::pin!(work);
    let output = loop {
        tokio::select! {
            output = &mut work => break output,
            _ = tick.tick() => peak_kib = peak_kib.max(rss()),
        }
    };
    (output, peak_kib.max(rss()))
}

/// `pid`'s VmHWM (KiB): its peak resident memory since it started.
pub fn peak_since_start_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmHWM").unwrap_or(0)
}

/// User plus system CPU time of a process (`"self"` or a pid), in seconds.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces;
    // utime and stime are fields 14 and 15, so 11 and 12 here.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / ticks_per_second()?)
}

/// CPU time of this process's children that have been waited for
/// (cutime and cstime, fields 16 and 17), in seconds.
fn children_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let cutime: u64 = fields.get(13)?.parse().ok()?;
    let cstime: u64 = fields.get(14)?.parse().ok()?;
    Some((cutime + cstime) as f64 / ticks_per_second()?)
}

/// CPU time every process on the machine used since boot, in seconds.
fn machine_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<u64> = stat
        .lines()
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal (guest time is in user).
    let all: u64 = ticks.get(..8)?.iter().sum();
    Some((all - ticks[3] - ticks[4]) as f64 / ticks_per_second()?)
}

/// CPU time of the PostgreSQL server processes (all of them: this machine
/// runs no other PostgreSQL work while benchmarking, or it disturbs anyway).
fn database_cpu_seconds(backend: Backend) -> Option<f64> {
    match backend {
        Backend::Sqlite => Some(0.0),
        Backend::Postgres => {
            let mut total = 0.0;
            for entry in std::fs::read_dir("/proc").ok()?.flatten() {
                let name = entry.file_name();
                let Some(pid) = name
                    .to_str()
                    .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
                else {
                    continue;
                };
                let is_postgres = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|comm| comm.trim_end() == "postgres");
                if is_postgres {
                    total += cpu_seconds(pid).unwrap_or(0.0);
                }
            }
            Some(total)
        }
    }
}

fn ticks_per_second() -> Option<f64> {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then_some(ticks as f64)
}
