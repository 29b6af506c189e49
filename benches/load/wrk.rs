//! `/health` measured by `wrk` when it is installed: a C load generator
//! that needs about a tenth of the CPU this benchmark's own client needs,
//! so its rate is the server's ceiling rather than the client's. The
//! `%health` column divides by it when it is there (issue 19).

use std::process::Command;
use std::time::Duration;

/// What one `wrk` run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WrkHealth {
    pub requests_per_second: f64,
    pub p99_ms: Option<f64>,
}

/// Runs `wrk -t1 -c{clients} -d{duration} --latency {url}`; `Ok(None)`
/// when `wrk` is not installed.
pub fn measure(url: &str, clients: usize, duration: Duration) -> anyhow::Result<Option<WrkHealth>> {
    let seconds = duration.as_secs().max(1);
    let output = match Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{clients}"),
            &format!("-d{seconds}s"),
            "--latency",
            url,
        ])
        .output()
    {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        anyhow::bail!(
            "wrk failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    parse(&text)
        .map(Some)
        .ok_or_else(|| anyhow::anyhow!("wrk printed no Requests/sec: {text}"))
}

/// Reads `Requests/sec:` and the `99%` latency line of wrk's report.
fn parse(report: &str) -> Option<WrkHealth> {
    let requests_per_second = report
        .lines()
        .find_map(|line| line.trim().strip_prefix("Requests/sec:"))?
        .trim()
        .parse()
        .ok()?;
    let p99_ms = report.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        (fields.next()? == "99%").then_some(())?;
        milliseconds(fields.next()?)
    });
    Some(WrkHealth {
        requests_per_second,
        p99_ms,
    })
}

/// `812.00us`, `3.00ms`, `1.20s` in milliseconds.
fn milliseconds(value: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = value.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = value.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}
