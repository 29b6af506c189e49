//! Load from `wrk` when it is installed: a C load generator that needs
//! about a tenth of the CPU this benchmark's own client needs, so on two
//! cores its rates are the server's rather than the client's (issue 19).
//! `/health` is measured with it and is then the reference of `%health`;
//! intake, read and the triage queue are also driven by it, from a Lua
//! script that sends the same requests the benchmark's own clients send.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// What one `wrk` run measured, read from the line the script's `done`
/// prints (so percentiles and errors need no parsing of wrk's prose).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WrkRun {
    /// Completed requests, whatever their status.
    pub requests: u64,
    pub seconds: f64,
    /// Answers outside 2xx and 3xx.
    pub bad_status: u64,
    /// Connect, read, write errors and timeouts.
    pub socket_errors: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl WrkRun {
    pub fn requests_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.requests as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// One request of a scripted run; the script sends them in turn, over all
/// connections.
pub struct ScriptedRequest {
    pub method: &'static str,
    pub path: String,
    pub bearer: String,
    /// A JSON body.
    pub body: Option<String>,
}

impl ScriptedRequest {
    /// A `GET` of `path` with `bearer`'s token.
    pub fn get(path: impl Into<String>, bearer: &str) -> Self {
        Self {
            method: "GET",
            path: path.into(),
            bearer: bearer.to_owned(),
            body: None,
        }
    }
}

/// The line `done` prints, then the fields in [`WrkRun`]'s order (latencies in µs).
const RESULT_MARK: &str = "medesk-wrk-result";

/// Prints the result line after the run. Latencies are in microseconds.
const DONE_FUNCTION: &str = r#"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("%s %d %d %d %d %d %d %d %d %.1f\n", "medesk-wrk-result",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean))
end
"#;

/// `wrk -t1 -c{clients}` for `duration` against `url`, the same request
/// each time; `Ok(None)` when `wrk` is not installed.
pub fn measure(url: &str, clients: usize, duration: Duration) -> anyhow::Result<Option<WrkRun>> {
    run(url, clients, duration, DONE_FUNCTION)
}

/// As [`measure`], sending `requests` in turn (`base_url` names the server;
/// each request its own path).
pub fn measure_script(
    base_url: &str,
    clients: usize,
    duration: Duration,
    requests: &[ScriptedRequest],
) -> anyhow::Result<Option<WrkRun>> {
    anyhow::ensure!(!requests.is_empty(), "a wrk script needs requests");
    run(base_url, clients, duration, &script(requests)?)
}

fn run(
    url: &str,
    clients: usize,
    duration: Duration,
    script: &str,
) -> anyhow::Result<Option<WrkRun>> {
    let script_file = ScriptFile::write(script)?;
    let seconds = duration.as_secs().max(1);
    let output = match Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{clients}"),
            &format!("-d{seconds}s"),
            "-s",
        ])
        .arg(&script_file.0)
        .arg(url)
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
        .ok_or_else(|| anyhow::anyhow!("wrk printed no {RESULT_MARK} line: {text}"))
}

/// The Lua script: the requests formatted once, sent in turn, and `done`.
fn script(requests: &[ScriptedRequest]) -> anyhow::Result<String> {
    // Formatted in `init`: only then does wrk know the Host header.
    let mut lua = String::from("local specs = {}\n");
    for request in requests {
        let body = match &request.body {
            Some(body) => long_string(body)?,
            None => "nil".to_owned(),
        };
        writeln!(
            lua,
            "specs[#specs + 1] = {{{}, {}, {}, {body}}}",
            long_string(request.method)?,
            long_string(&request.path)?,
            long_string(&request.bearer)?,
        )?;
    }
    lua.push_str(
        "local requests = {}\n\
         init = function(args)\n\
         \x20 for i, spec in ipairs(specs) do\n\
         \x20   local headers = {[\"Authorization\"] = \"Bearer \" .. spec[3]}\n\
         \x20   if spec[4] then headers[\"Content-Type\"] = \"application/json\" end\n\
         \x20   requests[i] = wrk.format(spec[1], spec[2], headers, spec[4])\n\
         \x20 end\n\
         end\n\
         local sent = 0\n\
         request = function()\n\
         \x20 sent = sent % #requests + 1\n\
         \x20 return requests[sent]\n\
         end\n",
    );
    lua.push_str(DONE_FUNCTION);
    Ok(lua)
}

/// `text` as a Lua long string, which takes it verbatim (quotes, UTF-8).
fn long_string(text: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        !text.contains("]==]") && !text.contains('\n'),
        "text unfit for a Lua long string: {text}"
    );
    Ok(format!("[==[{text}]==]"))
}

/// Reads the line [`DONE_FUNCTION`] prints.
fn parse(report: &str) -> Option<WrkRun> {
    let line = report
        .lines()
        .find_map(|line| line.trim().strip_prefix(RESULT_MARK))?;
    let fields: Vec<f64> = line
        .split_whitespace()
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    let [
        requests,
        micros,
        bad_status,
        socket_errors,
        p50,
        p95,
        p99,
        max,
        mean,
    ] = fields[..]
    else {
        return None;
    };
    let ms = |us: f64| us / 1000.0;
    Some(WrkRun {
        requests: requests as u64,
        seconds: micros / 1e6,
        bad_status: bad_status as u64,
        socket_errors: socket_errors as u64,
        p50_ms: ms(p50),
        p95_ms: ms(p95),
        p99_ms: ms(p99),
        max_ms: ms(max),
        mean_ms: ms(mean),
    })
}

/// A script in the temporary directory, removed when dropped.
struct ScriptFile(PathBuf);

impl ScriptFile {
    fn write(script: &str) -> anyhow::Result<Self> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "medesk-load-{}-{}.lua",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, script)?;
        Ok(Self(path))
    }
}

impl Drop for ScriptFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
