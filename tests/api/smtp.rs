//! A real SMTP server for the mail tests: a small tokio server on 127.0.0.1
//! speaking as much RFC 5321 as lettre's client uses (EHLO with 8BITMIME and
//! SMTPUTF8, MAIL, RCPT, DATA with dot-stuffing, RSET, NOOP, QUIT), keeping
//! every accepted message. Recipients whose local part starts with
//! `reject` are refused with 550, as a mailbox that does not exist, until
//! `set_refusing(false)`.
//!
//! `ReceivedMail::parse` decodes a message with `mail-parser` into what the
//! tests check: headers, the text/plain and text/html alternatives and the
//! attachments.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mail_parser::{MessageParser, MimeHeaders, PartType};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
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

type Inbox = Arc<Mutex<Vec<Envelope>>>;

pub struct SmtpServer {
    port: u16,
    inbox: Inbox,
    /// Whether `reject…` recipients are refused.
    refusing: Arc<AtomicBool>,
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
        let mut server = SmtpServer {
            port,
            inbox: Inbox::default(),
            refusing: Arc::new(AtomicBool::new(true)),
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
        let inbox = self.inbox.clone();
        let refusing = self.refusing.clone();
        self.accepting = Some(tokio::spawn(async move {
            let mut sessions = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        if let Ok((stream, _)) = accepted {
                            let (inbox, refusing) = (inbox.clone(), refusing.clone());
                            sessions.spawn(async move {
                                // A client that goes away mid-session is no error here.
                                let _ = session(stream, inbox, refusing).await;
                            });
                        }
                    }
                    Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
                }
            }
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
        self.refusing.store(refusing, Ordering::SeqCst);
    }

    /// Every message accepted so far, oldest first.
    pub fn messages(&self) -> Vec<Envelope> {
        self.inbox.lock().unwrap().clone()
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

/// One SMTP session (RFC 5321 §4.1, without extensions beyond 8BITMIME
/// and SMTPUTF8, which only widen what DATA may carry).
async fn session(
    stream: TcpStream,
    inbox: Inbox,
    refusing: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
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
            return Ok(());
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
                    if refusing.load(Ordering::SeqCst)
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
                        return Ok(());
                    };
                    inbox.lock().unwrap().push(Envelope {
                        from: sender.clone(),
                        recipients: std::mem::take(&mut recipients),
                        data,
                    });
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
                return Ok(());
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
}
