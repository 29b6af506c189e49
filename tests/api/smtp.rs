//! A real SMTP server for the mail tests: a small tokio server on 127.0.0.1
//! speaking as much RFC 5321 as lettre's client uses (EHLO with 8BITMIME and
//! SMTPUTF8, MAIL, RCPT, DATA with dot-stuffing, RSET, NOOP, QUIT), keeping
//! every accepted message. Recipients whose local part starts with
//! `reject` are refused with 550, as a mailbox that does not exist, until
//! `set_refusing(false)`.
//!
//! It can also go quiet the way a hung relay does, keeping its connections
//! open: `stall` makes the next connections never greet, or the next
//! messages never be confirmed after their data; `vanish` stops listening
//! and answering at once, as a stalled process whose sockets stay open.
//!
//! `ReceivedMail::parse` decodes a message with `mail-parser` into what the
//! tests check: headers, the text/plain and text/html alternatives and the
//! attachments.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders, PartType};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// One message as the server accepted it.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The reverse path of `MAIL FROM`.
    pub from: String,
    /// The accepted `RCPT TO` paths.
    pub recipients: Vec<String>,
    /// The message with dot-stuffing undone, lines ending in CRLF.
    pub data: Vec<u8>,
}

/// How a server goes quiet while keeping the connection open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    /// Accepts the connection and never sends its greeting.
    NoGreeting,
    /// Answers `DATA` with 354, reads the message and never confirms it
    /// (no 250): the message is kept apart, in `unconfirmed`.
    AfterData,
}

/// What the sessions of a server share.
#[derive(Default)]
struct Shared {
    inbox: Mutex<Vec<Envelope>>,
    /// Messages read after `DATA` and never confirmed.
    unconfirmed: Mutex<Vec<Envelope>>,
    /// Whether `reject…` recipients are refused.
    refusing: AtomicBool,
    /// Connections accepted so far.
    connections: AtomicUsize,
    /// How many of the next connections get no greeting.
    silent_connections: AtomicUsize,
    /// How many of the next messages are not confirmed.
    unconfirmed_messages: AtomicUsize,
    /// Connections the server stopped answering, kept open and unread.
    held: Mutex<Vec<TcpStream>>,
}

impl Shared {
    /// Takes one of `stalls` if any is left.
    fn take(stalls: &AtomicUsize) -> bool {
        stalls
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

pub struct SmtpServer {
    port: u16,
    shared: Arc<Shared>,
    /// Turned true by `vanish`: every session of this listener stops
    /// answering and the listener closes.
    frozen: watch::Sender<bool>,
    /// Accepts connections; dropping its `JoinSet` ends every session.
    accepting: Option<JoinHandle<()>>,
}

impl SmtpServer {
    /// Listens on a port of the system's choosing.
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// Listens on `port` (0: any), with an empty inbox.
    pub async fn start_on(port: u16) -> Self {
        let shared = Shared {
            refusing: AtomicBool::new(true),
            ..Shared::default()
        };
        let mut server = SmtpServer {
            port,
            shared: Arc::new(shared),
            frozen: watch::channel(false).0,
            accepting: None,
        };
        server.listen().await;
        server
    }

    async fn listen(&mut self) {
        let address = format!("127.0.0.1:{}", self.port);
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(&address).await {
                Ok(listener) => break listener,
                // A port just given up may take a moment to be free again.
                Err(e) => {
                    tries += 1;
                    assert!(
                        tries < 50,
                        "test SMTP server cannot listen on {address}: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        self.port = listener.local_addr().expect("bound address").port();
        self.frozen = watch::channel(false).0;
        let shared = self.shared.clone();
        let frozen = self.frozen.subscribe();
        let mut vanishing = self.frozen.subscribe();
        self.accepting = Some(tokio::spawn(async move {
            let mut sessions = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        if let Ok((stream, _)) = accepted {
                            sessions.spawn(serve(stream, shared.clone(), frozen.clone()));
                        }
                    }
                    Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
                    _ = vanishing.wait_for(|frozen| *frozen) => break,
                }
            }
            // Vanished: the port is free again, and each session holds its
            // connection open, unanswered.
            drop(listener);
            while sessions.join_next().await.is_some() {}
        }));
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `smtp://127.0.0.1:PORT`, for `MEDESK_SMTP_URL`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Whether recipients whose local part starts with `reject` are
    /// refused with 550 (they are at start).
    pub fn set_refusing(&self, refusing: bool) {
        self.shared.refusing.store(refusing, Ordering::SeqCst);
    }

    /// Makes the next `times` connections (`NoGreeting`) or messages
    /// (`AfterData`) stall: the server stops answering there and holds
    /// the connection open.
    pub fn stall(&self, stall: Stall, times: usize) {
        let stalls = match stall {
            Stall::NoGreeting => &self.shared.silent_connections,
            Stall::AfterData => &self.shared.unconfirmed_messages,
        };
        stalls.fetch_add(times, Ordering::SeqCst);
    }

    /// How many connections the server accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Every message accepted so far, oldest first.
    pub fn messages(&self) -> Vec<Envelope> {
        self.shared.inbox.lock().unwrap().clone()
    }

    /// The messages read after `DATA` and never confirmed
    /// (`Stall::AfterData`), decoded: not in the inbox.
    pub fn unconfirmed(&self) -> Vec<ReceivedMail> {
        let unconfirmed = self.shared.unconfirmed.lock().unwrap();
        unconfirmed.iter().map(ReceivedMail::parse).collect()
    }

    /// Every message accepted so far, decoded.
    pub fn mails(&self) -> Vec<ReceivedMail> {
        self.messages().iter().map(ReceivedMail::parse).collect()
    }

    /// Waits until at least `count` messages arrived (panicking after
    /// `timeout`), and returns them all, decoded.
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.messages().len();
            if arrived >= count {
                return self.mails();
            }
            if tokio::time::Instant::now() >= deadline {
                let subjects: Vec<String> = self
                    .mails()
                    .into_iter()
                    .map(|m| format!("{} -> {:?}", m.subject, m.envelope_to))
                    .collect();
                panic!("expected {count} mails within {timeout:?}, got {arrived}: {subjects:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops listening and ends every open session: the port refuses
    /// connections until `resume`.
    pub async fn stop(&mut self) {
        if let Some(task) = self.accepting.take() {
            task.abort();
            let _ = task.await;
        }
        self.shared.held.lock().unwrap().clear();
    }

    /// Goes away as a stalled process does, without closing anything: stops
    /// listening (the port refuses connections until `resume`) and stops
    /// answering on every open connection, which stays open, unread.
    pub async fn vanish(&mut self) {
        self.frozen.send_replace(true);
        if let Some(task) = self.accepting.take() {
            task.await.expect("the accepting task ends");
        }
    }

    /// Listens again on the same port, keeping the messages received so far.
    pub async fn resume(&mut self) {
        assert!(self.accepting.is_none(), "the server is running");
        self.listen().await;
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(task) = self.accepting.take() {
            task.abort();
        }
    }
}

/// A port kept for a server started later: bound, so no other test's
/// listener gets it meanwhile, but not listening, so connections to it are
/// refused. Drop it right before `SmtpServer::start_on(port)`.
pub struct ReservedPort {
    _socket: tokio::net::TcpSocket,
    port: u16,
}

impl ReservedPort {
    pub fn new() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket
            .bind("127.0.0.1:0".parse().unwrap())
            .expect("bind a free port");
        let port = socket.local_addr().expect("bound address").port();
        ReservedPort {
            _socket: socket,
            port,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

/// The address inside `<…>` of a `MAIL FROM:` or `RCPT TO:` command.
fn path_of(command: &str) -> Option<String> {
    let start = command.find('<')?;
    let end = command[start..].find('>')? + start;
    Some(command[start + 1..end].to_owned())
}

/// How a session ended.
enum Ending {
    /// The client quit or went away.
    Closed,
    /// The server stopped answering; the connection is to stay open.
    Stalled,
}

/// Runs one session on `stream`; a connection the server stopped
/// answering on is held open, unread, until the server stops.
async fn serve(mut stream: TcpStream, shared: Arc<Shared>, mut frozen: watch::Receiver<bool>) {
    shared.connections.fetch_add(1, Ordering::SeqCst);
    let ending = tokio::select! {
        // A client that goes away mid-session is no error here.
        ending = session(&mut stream, &shared) => ending.unwrap_or(Ending::Closed),
        _ = frozen.wait_for(|frozen| *frozen) => Ending::Stalled,
    };
    if let Ending::Stalled = ending {
        shared.held.lock().unwrap().push(stream);
    }
}

/// One SMTP session (RFC 5321 §4.1, without extensions beyond 8BITMIME
/// and SMTPUTF8, which only widen what DATA may carry).
async fn session(stream: &mut TcpStream, shared: &Shared) -> std::io::Result<Ending> {
    if Shared::take(&shared.silent_connections) {
        return Ok(Ending::Stalled);
    }
    let (read, mut write) = stream.split();
    let mut reader = BufReader::new(read);
    write
        .write_all(b"220 127.0.0.1 ESMTP medesk test server\r\n")
        .await?;
    let mut from: Option<String> = None;
    let mut recipients: Vec<String> = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(Ending::Closed);
        }
        let command = String::from_utf8_lossy(&line).trim_end().to_owned();
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-127.0.0.1 greets you\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            "HELO" => b"250 127.0.0.1 greets you\r\n",
            "MAIL" => match path_of(&command) {
                Some(path) => {
                    from = Some(path);
                    recipients.clear();
                    b"250 2.1.0 OK\r\n"
                }
                None => b"501 5.5.4 syntax: MAIL FROM:<address>\r\n",
            },
            "RCPT" => match (&from, path_of(&command)) {
                (None, _) => b"503 5.5.1 MAIL first\r\n",
                (_, None) => b"501 5.5.4 syntax: RCPT TO:<address>\r\n",
                (_, Some(path))
                    if shared.refusing.load(Ordering::SeqCst)
                        && path.to_ascii_lowercase().starts_with("reject") =>
                {
                    b"550 5.1.1 no such mailbox\r\n"
                }
                (_, Some(path)) => {
                    recipients.push(path);
                    b"250 2.1.5 OK\r\n"
                }
            },
            "DATA" => match &from {
                Some(sender) if !recipients.is_empty() => {
                    write
                        .write_all(b"354 end data with <CR><LF>.<CR><LF>\r\n")
                        .await?;
                    let Some(data) = read_data(&mut reader).await? else {
                        return Ok(Ending::Closed);
                    };
                    let envelope = Envelope {
                        from: sender.clone(),
                        recipients: std::mem::take(&mut recipients),
                        data,
                    };
                    if Shared::take(&shared.unconfirmed_messages) {
                        shared.unconfirmed.lock().unwrap().push(envelope);
                        return Ok(Ending::Stalled);
                    }
                    shared.inbox.lock().unwrap().push(envelope);
                    from = None;
                    b"250 2.0.0 OK queued\r\n"
                }
                Some(_) => b"554 5.5.1 no valid recipients\r\n",
                None => b"503 5.5.1 MAIL first\r\n",
            },
            "RSET" => {
                from = None;
                recipients.clear();
                b"250 2.0.0 OK\r\n"
            }
            "NOOP" => b"250 2.0.0 OK\r\n",
            "QUIT" => {
                write.write_all(b"221 2.0.0 bye\r\n").await?;
                return Ok(Ending::Closed);
            }
            _ => b"502 5.5.2 command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

/// Reads a DATA block up to the line holding a single `.`, undoing
/// dot-stuffing; None when the client went away first (nothing is kept).
async fn read_data(reader: &mut (impl AsyncBufRead + Unpin)) -> std::io::Result<Option<Vec<u8>>> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(None);
        }
        let content = line.strip_suffix(b"\n").unwrap_or(&line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if content == b"." {
            return Ok(Some(data));
        }
        data.extend_from_slice(content.strip_prefix(b".").unwrap_or(content));
        data.extend_from_slice(b"\r\n");
    }
}

/// A file attached to a mail.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub name: Option<String>,
    /// `type/subtype`, lower case.
    pub mime: String,
    pub content: String,
}

/// A received message, decoded.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub envelope_from: String,
    pub envelope_to: Vec<String>,
    pub from: Vec<String>,
    pub to: Vec<String>,
    pub subject: String,
    /// Without the angle brackets.
    pub message_id: String,
    /// The text/plain body part (line ends LF).
    pub text: Option<String>,
    /// The text/html body part (line ends LF).
    pub html: Option<String>,
    /// Whether a multipart/alternative holds both the text/plain and the
    /// text/html part.
    pub alternative: bool,
    pub attachments: Vec<Attachment>,
}

impl ReceivedMail {
    pub fn parse(envelope: &Envelope) -> Self {
        let message = MessageParser::default()
            .parse(&envelope.data)
            .expect("a parsable message");
        let addresses = |list: Option<&mail_parser::Address>| -> Vec<String> {
            list.map(|a| {
                a.iter()
                    .filter_map(|addr| addr.address())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
        };
        let mime = |part: &mail_parser::MessagePart| -> String {
            part.content_type()
                .map(|c| {
                    format!("{}/{}", c.ctype(), c.subtype().unwrap_or_default())
                        .to_ascii_lowercase()
                })
                .unwrap_or_else(|| "text/plain".to_owned())
        };
        let is_attachment = |part: &mail_parser::MessagePart| {
            part.content_disposition()
                .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"))
        };
        let mut text = None;
        let mut html = None;
        let mut attachments = Vec::new();
        let (mut text_id, mut html_id) = (None, None);
        for (id, part) in message.parts.iter().enumerate() {
            if matches!(part.body, PartType::Multipart(_)) {
                continue;
            }
            let kind = mime(part);
            // Line ends as the sender wrote them (LF), not as SMTP carries them.
            let content = part
                .text_contents()
                .unwrap_or_default()
                .replace("\r\n", "\n");
            if is_attachment(part) {
                attachments.push(Attachment {
                    name: part.attachment_name().map(str::to_owned),
                    mime: kind,
                    content,
                });
            } else if kind == "text/plain" && text.is_none() {
                text = Some(content);
                text_id = Some(id as u32);
            } else if kind == "text/html" && html.is_none() {
                html = Some(content);
                html_id = Some(id as u32);
            } else {
                attachments.push(Attachment {
                    name: part.attachment_name().map(str::to_owned),
                    mime: kind,
                    content,
                });
            }
        }
        let alternative = message.parts.iter().any(|part| {
            mime(part) == "multipart/alternative"
                && part.sub_parts().is_some_and(|children| {
                    text_id.is_some_and(|t| children.contains(&t))
                        && html_id.is_some_and(|h| children.contains(&h))
                })
        });
        ReceivedMail {
            envelope_from: envelope.from.clone(),
            envelope_to: envelope.recipients.clone(),
            from: addresses(message.from()),
            to: addresses(message.to()),
            subject: message.subject().unwrap_or_default().to_owned(),
            message_id: message.message_id().unwrap_or_default().to_owned(),
            text,
            html,
            alternative,
            attachments,
        }
    }

    /// The text/plain part (panicking when there is none).
    pub fn text(&self) -> &str {
        self.text.as_deref().expect("a text/plain part")
    }

    /// The text/html part (panicking when there is none).
    pub fn html(&self) -> &str {
        self.html.as_deref().expect("a text/html part")
    }

    /// Whether the envelope and the To header both name `address` (only).
    pub fn is_for(&self, address: &str) -> bool {
        self.envelope_to == [address] && self.to == [address]
    }

    /// Whether the envelope and the To header both name `address`, alone
    /// or beside others (the desk's mails to its supporters).
    pub fn names(&self, address: &str) -> bool {
        self.envelope_to.iter().any(|to| to == address) && self.to.iter().any(|to| to == address)
    }
}
