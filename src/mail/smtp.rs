//! SMTP delivery over a connection medesk keeps itself, each delivery
//! bounded as a whole.
//!
//! lettre's `AsyncSmtpTransport` bounds only the TCP connect on tokio (its
//! reads have no timeout), so a relay that stops answering with the
//! connection open would hold a delivery, and the outbox worker behind it,
//! for good. Cancelling its send from outside does not help: its pool takes
//! the cancelled connection back as healthy, and closes connections it drops
//! with a QUIT whose answer it awaits without a bound. So medesk keeps
//! lettre's connection (`AsyncSmtpConnection`: the commands, STARTTLS, AUTH,
//! dot-stuffing) and manages it here: a connection is reused while the
//! server answers, given up after a delivery that failed (lettre says QUIT
//! then) or timed out (closed without a word: a server that stopped
//! answering would not answer QUIT either), and the next attempt opens a
//! new one. The connections medesk opens itself have `TCP_NODELAY`, which
//! lettre's cannot have.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::Message;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::{SMTP_PORT, SUBMISSION_PORT, SUBMISSIONS_PORT};
use tokio::net::TcpStream;

use super::DeliveryError;

/// How the connection to the relay is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// `smtp://`: plain text (local relays).
    None,
    /// `smtp://…?tls=opportunistic`: STARTTLS when the server offers it.
    Opportunistic,
    /// `smtp://…?tls=required`: STARTTLS or no delivery.
    Required,
    /// `smtps://`: TLS from the first byte.
    Implicit,
}

/// Where and how to reach the relay: `MEDESK_SMTP_URL`, read as lettre's
/// `AsyncSmtpTransport::from_url` reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// The name medesk gives in EHLO: the URL's path, or this host's name.
    pub hello_name: ClientId,
    /// From `user:password@` (percent-decoded); never debug-printed.
    pub credentials: Option<Credentials>,
}

impl Relay {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let url = url::Url::parse(raw).map_err(|e| e.to_string())?;
        let host = match url.host() {
            Some(url::Host::Domain(name)) if !name.is_empty() => name.to_owned(),
            Some(url::Host::Ipv4(address)) => address.to_string(),
            Some(url::Host::Ipv6(address)) => address.to_string(),
            _ => return Err("no host".to_owned()),
        };
        let tls = url
            .query_pairs()
            .find(|(key, _)| key == "tls")
            .map(|(_, value)| value.into_owned());
        let (tls, default_port) = match (url.scheme(), tls.as_deref()) {
            ("smtp", None) => (TlsMode::None, SMTP_PORT),
            ("smtp", Some("opportunistic")) => (TlsMode::Opportunistic, SUBMISSION_PORT),
            ("smtp", Some("required")) => (TlsMode::Required, SUBMISSION_PORT),
            ("smtps", _) => (TlsMode::Implicit, SUBMISSIONS_PORT),
            (scheme, tls) => {
                return Err(format!(
                    "unknown scheme {scheme:?} or tls={tls:?}; use smtp://, smtp://…?tls=required|opportunistic or smtps://"
                ));
            }
        };
        let hello_name = match url.path().trim_matches('/') {
            "" => ClientId::default(),
            name => ClientId::Domain(name.to_owned()),
        };
        let decode = |part: &str| {
            percent_encoding::percent_decode_str(part)
                .decode_utf8()
                .map(|decoded| decoded.into_owned())
                .map_err(|e| format!("credentials: {e}"))
        };
        let credentials = match url.password() {
            Some(password) => Some(Credentials::new(decode(url.username())?, decode(password)?)),
            None => None,
        };
        Ok(Relay {
            host,
            port: url.port().unwrap_or(default_port),
            tls,
            hello_name,
            credentials,
        })
    }
}

/// The error of a delivery that did not finish within `bound`.
pub fn timed_out(bound: Duration) -> DeliveryError {
    DeliveryError::transient(format!(
        "SMTP delivery timed out after {} s (MEDESK_SMTP_TIMEOUT_SECONDS); its connection was closed",
        bound.as_secs_f64()
    ))
}

/// Delivers mails to one relay over a connection it reuses while the
/// relay answers; every delivery (connecting included) is bounded.
pub struct SmtpSender {
    relay: Relay,
    /// For TLS modes: the certificate checks, built once.
    tls: Option<TlsParameters>,
    bound: Duration,
    /// Connections whose last delivery ended well, the latest last; at most
    /// one per delivery that may run at once.
    idle: Mutex<Vec<IdleConnection>>,
}

/// How many deliveries may run at once, each on a connection of its own.
/// Over loopback one delivery is four round trips, latency rather than
/// work: one connection at a time left medesk, its database and the relay
/// mostly waiting (docs/performance.md).
pub const PARALLEL_DELIVERIES: usize = 4;

/// A kept connection is used without asking first (`NOOP`) when its last
/// delivery ended this recently: a relay closes an idle connection after
/// minutes (RFC 5321 asks for at least five), not seconds.
const TRUSTED_WHILE_IDLE: Duration = Duration::from_secs(2);

struct IdleConnection {
    connection: AsyncSmtpConnection,
    since: Instant,
}

impl SmtpSender {
    pub fn new(relay: Relay, bound: Duration) -> Result<Self, String> {
        let tls = match relay.tls {
            TlsMode::None => None,
            _ => Some(TlsParameters::new(relay.host.clone()).map_err(|e| e.to_string())?),
        };
        Ok(SmtpSender {
            relay,
            tls,
            bound,
            idle: Mutex::new(Vec::with_capacity(PARALLEL_DELIVERIES)),
        })
    }

    /// The most one delivery takes.
    pub fn bound(&self) -> Duration {
        self.bound
    }

    /// Delivers `message`, within the bound. The connection is kept for the
    /// next delivery unless lettre gave it up (it does on any failed
    /// command); after a timeout it is closed, dropped with the exchange, so
    /// a connection that stopped answering is never used again.
    pub async fn send(&self, message: &Message) -> Result<(), DeliveryError> {
        let reused = self.take_idle();
        let data = message.formatted();
        let exchange = self.exchange(reused, message.envelope(), &data);
        let (result, connection) = tokio::time::timeout(self.bound, exchange)
            .await
            .map_err(|_| timed_out(self.bound))?;
        if let Some(connection) = connection.filter(|c| !c.has_broken()) {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            // One more than may be used at once is dropped (closed).
            if idle.len() < PARALLEL_DELIVERIES {
                idle.push(IdleConnection {
                    connection,
                    since: Instant::now(),
                });
            }
        }
        result
    }

    /// Says QUIT on the kept connections (within the bound).
    pub async fn close(&self) {
        while let Some(mut idle) = self.take_idle() {
            let _ = tokio::time::timeout(self.bound, idle.connection.quit()).await;
        }
    }

    fn take_idle(&self) -> Option<IdleConnection> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    /// One delivery on `reused` if it still answers, else on a new
    /// connection; returns the connection with the outcome.
    async fn exchange(
        &self,
        reused: Option<IdleConnection>,
        envelope: &lettre::address::Envelope,
        data: &[u8],
    ) -> (Result<(), DeliveryError>, Option<AsyncSmtpConnection>) {
        let answering = match reused {
            Some(idle) if idle.since.elapsed() < TRUSTED_WHILE_IDLE => Some(idle.connection),
            Some(mut idle) => idle
                .connection
                .test_connected()
                .await
                .then_some(idle.connection),
            None => None,
        };
        let mut connection = match answering {
            Some(connection) => connection,
            None => match self.connect().await {
                Ok(connection) => connection,
                Err(error) => return (Err(error), None),
            },
        };
        let result = connection.send(envelope, data).await.map(drop);
        (result.map_err(DeliveryError::from), Some(connection))
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, DeliveryError> {
        let Relay {
            host,
            port,
            hello_name,
            ..
        } = &self.relay;
        let mut connection = match (self.relay.tls, &self.tls) {
            // lettre opens this socket itself, without TCP_NODELAY.
            (TlsMode::Implicit, Some(tls)) => {
                AsyncSmtpConnection::connect_tokio1(
                    (host.as_str(), *port),
                    None,
                    hello_name,
                    Some(tls.clone()),
                    None,
                )
                .await?
            }
            _ => {
                let unreachable = |e: std::io::Error| {
                    DeliveryError::transient(format!("connecting to {host}:{port}: {e}"))
                };
                let stream = TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(unreachable)?;
                // Each command, and the end of the data, is a small write
                // that waits for its answer: with Nagle's algorithm the end
                // of the data would wait for the server's delayed ACK.
                stream.set_nodelay(true).map_err(unreachable)?;
                AsyncSmtpConnection::connect_with_transport(Box::new(stream), hello_name).await?
            }
        };
        match (self.relay.tls, &self.tls) {
            (TlsMode::Required, Some(tls)) => connection.starttls(tls.clone(), hello_name).await?,
            (TlsMode::Opportunistic, Some(tls)) if connection.can_starttls() => {
                connection.starttls(tls.clone(), hello_name).await?
            }
            _ => {}
        }
        if let Some(credentials) = &self.relay.credentials {
            connection.auth(DEFAULT_MECHANISMS, credentials).await?;
        }
        Ok(connection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_urls_name_host_and_port_and_default_to_port_25() {
        let relay = Relay::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(relay.host, "127.0.0.1");
        assert_eq!(relay.port, 2525);
        assert_eq!(relay.tls, TlsMode::None);
        assert_eq!(relay.credentials, None);
        assert_eq!(relay.hello_name, ClientId::default());
        assert_eq!(Relay::parse("smtp://relay.example").unwrap().port, 25);
    }

    #[test]
    fn tls_modes_and_their_default_ports_follow_lettre() {
        for (url, tls, port) in [
            ("smtp://mx.example?tls=required", TlsMode::Required, 587),
            (
                "smtp://mx.example?tls=opportunistic",
                TlsMode::Opportunistic,
                587,
            ),
            ("smtps://mx.example", TlsMode::Implicit, 465),
            ("smtps://mx.example:2465", TlsMode::Implicit, 2465),
        ] {
            let relay = Relay::parse(url).unwrap();
            assert_eq!((relay.tls, relay.port), (tls, port), "{url}");
        }
    }

    #[test]
    fn credentials_are_percent_decoded_and_the_path_names_the_client() {
        let relay =
            Relay::parse("smtps://desk%40example.org:p%40ss%2Fword@mx.example/desk.example")
                .unwrap();
        assert_eq!(
            relay.credentials,
            Some(Credentials::new(
                "desk@example.org".into(),
                "p@ss/word".into()
            ))
        );
        assert_eq!(relay.hello_name, ClientId::Domain("desk.example".into()));
        assert!(!format!("{relay:?}").contains("word"));
        // A user without a password logs in as no one, as with lettre.
        assert_eq!(
            Relay::parse("smtp://desk@mx.example").unwrap().credentials,
            None
        );
    }

    #[test]
    fn an_ipv6_host_is_named_without_brackets() {
        let relay = Relay::parse("smtp://[::1]:2525").unwrap();
        assert_eq!((relay.host.as_str(), relay.port), ("::1", 2525));
    }

    #[test]
    fn unknown_schemes_tls_modes_and_missing_hosts_are_refused() {
        for url in [
            "http://mx.example",
            "smtp://mx.example?tls=maybe",
            "smtp:///path",
            "not a url",
        ] {
            assert!(Relay::parse(url).is_err(), "{url}");
        }
    }

    #[test]
    fn a_timeout_is_transient_and_names_its_setting() {
        let error = timed_out(Duration::from_secs(2));
        assert!(!error.permanent);
        assert!(
            error.message.contains("timed out after 2 s"),
            "{}",
            error.message
        );
        assert!(error.message.contains("MEDESK_SMTP_TIMEOUT_SECONDS"));
    }
}
