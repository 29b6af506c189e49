//! A loopback SMTP sink inside the benchmark (issue 19): a tokio server on
//! 127.0.0.1 that accepts every mail at once and only counts. When a chosen
//! scenario needs it (`mail-drain`, `two-instances`), the driver starts it
//! before the server, and every server instance of the run delivers to it
//! (`MEDESK_SMTP_URL`) instead of dropping files.
//!
//! It speaks as much SMTP as lettre's client uses: EHLO (8BITMIME,
//! SMTPUTF8, PIPELINING) or HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT, each
//! answered 250 (DATA 354, then 250), checking nothing. Connections have
//! `TCP_NODELAY`; answers are written when no pipelined command is left to
//! read. Of a message it keeps nothing: its header lines are scanned (with
//! dot-stuffing undone) for the `Message-ID` value, the rest is read up to
//! the lone `.` and dropped.
//!
//! It counts mails, one per recipient of an accepted message (the desk's
//! mail to its supporters is one message to several), messages, distinct
//! `Message-ID` values (a message delivered twice shows as fewer ids than
//! messages), messages without one, connections, and
//! the time of the last mail and of the first since [`SmtpSink::mark`]: a
//! scenario marks at its start and reads the difference at its end.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the sink received so far (or since a [`SmtpSink::mark`]).
#[derive(Debug, Clone, Copy)]
pub struct SinkCounts {
    /// Mails delivered: one per recipient of each message accepted (250
    /// after its data).
    pub mails: u64,
    /// Messages accepted.
    pub messages: u64,
    /// Distinct `Message-ID` values among them.
    pub distinct_ids: u64,
    /// Messages without a `Message-ID` header.
    pub without_id: u64,
    /// Connections accepted.
    pub connections: u64,
    /// The first mail since the last [`SmtpSink::mark`].
    pub first: Option<Instant>,
    /// The last mail.
    pub last: Option<Instant>,
}

#[derive(Default)]
struct Counts {
    mails: u64,
    messages: u64,
    ids: HashSet<Box<[u8]>>,
    without_id: u64,
    connections: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Counts {
    fn snapshot(&self) -> SinkCounts {
        SinkCounts {
            mails: self.mails,
            messages: self.messages,
            distinct_ids: self.ids.len() as u64,
            without_id: self.without_id,
            connections: self.connections,
            first: self.first,
            last: self.last,
        }
    }
}

pub struct SmtpSink {
    counts: Arc<Mutex<Counts>>,
    accepting: JoinHandle<()>,
}

impl SmtpSink {
    /// A listener on a free port of 127.0.0.1, bound before the server
    /// starts (its URL goes into the server's environment); [`Self::start`]
    /// serves it once the runtime runs.
    pub fn bind() -> anyhow::Result<std::net::TcpListener> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .context("binding the SMTP sink on 127.0.0.1")?;
        listener
            .set_nonblocking(true)
            .context("the SMTP sink's listener")?;
        Ok(listener)
    }

    /// `smtp://127.0.0.1:PORT` of a listener from [`Self::bind`].
    pub fn url_of(listener: &std::net::TcpListener) -> anyhow::Result<String> {
        let port = listener
            .local_addr()
            .context("the SMTP sink's port")?
            .port();
        Ok(format!("smtp://127.0.0.1:{port}"))
    }

    /// Accepts connections on `listener` (inside a tokio runtime).
    pub fn start(listener: std::net::TcpListener) -> anyhow::Result<Self> {
        let listener = TcpListener::from_std(listener).context("serving the SMTP sink")?;
        let counts = Arc::new(Mutex::new(Counts::default()));
        let shared = counts.clone();
        let accepting = tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        shared.lock().expect("sink counts").connections += 1;
                        // A session that fails (the client went away) only
                        // ends: what it accepted is counted already.
                        tokio::spawn(session(stream, shared.clone()));
                    }
                    // Out of file descriptors and the like: try again shortly.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        });
        Ok(Self { counts, accepting })
    }

    pub fn counts(&self) -> SinkCounts {
        self.counts.lock().expect("sink counts").snapshot()
    }

    /// The counts so far; the next mail is the first of a new window
    /// (`first` of later counts).
    pub fn mark(&self) -> SinkCounts {
        let mut counts = self.counts.lock().expect("sink counts");
        let snapshot = counts.snapshot();
        counts.first = None;
        snapshot
    }

    /// Waits until `mails` mails arrived in all, or `timeout` passed;
    /// returns the counts then.
    pub async fn wait_for(&self, mails: u64, timeout: Duration) -> SinkCounts {
        let deadline = Instant::now() + timeout;
        loop {
            let counts = self.counts();
            if counts.mails >= mails || Instant::now() >= deadline {
                return counts;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

/// One connection: answers every command at once and counts each message.
async fn session(stream: TcpStream, counts: Arc<Mutex<Counts>>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (read, write) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, read);
    let mut writer = BufWriter::with_capacity(4 * 1024, write);
    writer
        .write_all(b"220 127.0.0.1 ESMTP medesk bench sink\r\n")
        .await?;
    writer.flush().await?;
    let mut line = Vec::with_capacity(1024);
    // Recipients of the message being given.
    let mut recipients: u64 = 0;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let verb = line
            .get(..4)
            .map(<[u8]>::to_ascii_uppercase)
            .unwrap_or_default();
        match verb.as_slice() {
            b"EHLO" => {
                writer
                    .write_all(
                        b"250-127.0.0.1 greets you\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n\
                          250 PIPELINING\r\n",
                    )
                    .await?
            }
            b"HELO" => writer.write_all(b"250 127.0.0.1\r\n").await?,
            b"MAIL" | b"RSET" => {
                recipients = 0;
                writer.write_all(b"250 2.0.0 OK\r\n").await?
            }
            b"RCPT" => {
                recipients += 1;
                writer.write_all(b"250 2.0.0 OK\r\n").await?
            }
            b"NOOP" => writer.write_all(b"250 2.0.0 OK\r\n").await?,
            b"DATA" => {
                writer
                    .write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                writer.flush().await?;
                let Some(message_id) = read_message(&mut reader, &mut line).await? else {
                    // The client went away inside the data: nothing accepted.
                    return Ok(());
                };
                record(&counts, message_id, std::mem::take(&mut recipients).max(1));
                writer.write_all(b"250 2.0.0 OK queued\r\n").await?;
            }
            b"QUIT" => {
                writer.write_all(b"221 2.0.0 bye\r\n").await?;
                writer.flush().await?;
                return Ok(());
            }
            _ => {
                writer
                    .write_all(b"502 5.5.2 command not implemented\r\n")
                    .await?
            }
        }
        // Pipelined commands still to read are answered together.
        if reader.buffer().is_empty() {
            writer.flush().await?;
        }
    }
}

fn record(counts: &Mutex<Counts>, message_id: Option<Vec<u8>>, recipients: u64) {
    let now = Instant::now();
    let mut counts = counts.lock().expect("sink counts");
    counts.mails += recipients;
    counts.messages += 1;
    match message_id {
        Some(id) => {
            counts.ids.insert(id.into_boxed_slice());
        }
        None => counts.without_id += 1,
    }
    counts.first.get_or_insert(now);
    counts.last = Some(now);
}

/// Reads one message's data up to the lone `.`, returning its
/// `Message-ID` value (folded lines unfolded); `None` when the client went
/// away first.
async fn read_message(
    reader: &mut (impl AsyncBufRead + Unpin),
    line: &mut Vec<u8>,
) -> std::io::Result<Option<Option<Vec<u8>>>> {
    let mut in_headers = true;
    let mut in_message_id = false;
    let mut message_id: Option<Vec<u8>> = None;
    loop {
        line.clear();
        if reader.read_until(b'\n', line).await? == 0 {
            return Ok(None);
        }
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content == b"." {
            return Ok(Some(message_id));
        }
        if !in_headers {
            continue;
        }
        // Dot-stuffing undone: a line starting with `.` came with two.
        let content = content.strip_prefix(b".").unwrap_or(content);
        if content.is_empty() {
            in_headers = false;
        } else if in_message_id && matches!(content[0], b' ' | b'\t') {
            if let Some(id) = &mut message_id {
                id.extend_from_slice(content.trim_ascii());
            }
        } else {
            in_message_id = false;
            const NAME: &[u8] = b"message-id:";
            if message_id.is_none()
                && content.len() >= NAME.len()
                && content[..NAME.len()].eq_ignore_ascii_case(NAME)
            {
                message_id = Some(content[NAME.len()..].trim_ascii().to_vec());
                in_message_id = true;
            }
        }
    }
}
