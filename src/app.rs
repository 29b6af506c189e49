//! Builds the server from a `Config`; returns the bound port so tests can
//! start it on port 0.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{DefaultHeaders, ErrorHandlers};
use actix_web::{App, HttpMessage, HttpServer, web};
use anyhow::{Context, anyhow};
use lettre::message::Mailbox;
use tracing_actix_web::{RequestId, TracingLogger};

use crate::auth::password::PasswordHasher;
use crate::auth::rate_limit::LoginLimiter;
use crate::auth::tokens::TokenKeys;
use crate::config::{AdminBootstrap, Config};
use crate::db::Database;
use crate::desk::{Desk, accounts};
use crate::domain::account::{EmailAddress, NewPassword};
use crate::http::fallback::RouteTable;
use crate::http::openapi::ApiDoc;
use crate::http::{self, AppState, problem};
use crate::mail::notify::Notifier;
use utoipa::OpenApi;

pub struct Application {
    port: u16,
    server: Server,
    /// Tells the background tasks to finish when the server stops.
    shutdown: tokio::sync::watch::Sender<bool>,
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, crate::clock::Clock::system()).await
    }

    /// As `build`, with the use cases and the mail worker going by `clock`
    /// (tests pass an adjustable one to let a quarter hour pass at once).
    pub async fn build_with_clock(
        config: Config,
        clock: crate::clock::Clock,
    ) -> anyhow::Result<Self> {
        crate::memory::configure_allocator();
        if config.uses_development_secret() {
            tracing::warn!(
                "MEDESK_JWT_SECRET is not set: using the development secret (refused in production)"
            );
        }
        let config = Arc::new(config);
        let db = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || {
                Database::connect(&config.database, config.database_pool_size)
                    .context("opening the database")
            })
            .await??
        };
        tracing::info!(database = db.backend().name(), "database ready");

        let listener = TcpListener::bind(config.bind)
            .with_context(|| format!("MEDESK_BIND: cannot listen on {}", config.bind))?;
        let port = listener.local_addr()?.port();
        let mail_signal = crate::mail::MailSignal::default();
        let (notifier, mail_from) =
            notifier(&config, listener.local_addr().map_or(config.bind, |a| a))?;
        let desk =
            Desk::new(db.clone(), notifier.clone(), mail_signal.clone()).with_clock(clock.clone());
        // MEDESK_HOLIDAYS seeds the holidays admins then keep.
        crate::desk::open_hours::seed_holidays(&desk, &config.holidays).await?;
        let hasher = PasswordHasher::new(config.password_hash_concurrency);
        if let Some(admin) = &config.admin
            && bootstrap_admin(&desk, &hasher, admin).await?
        {
            tracing::info!(email = %admin.email, "created the start-up admin");
        }
        let (shutdown, stopping) = tokio::sync::watch::channel(false);
        let mut background = Vec::new();
        let requests_in_flight = crate::busy::RequestsInFlight::default();
        background.push(crate::mail::spawn_worker(
            db.clone(),
            crate::mail::Worker {
                transport: crate::mail::Transport::from_config(&config)?,
                from: mail_from,
                notifier: notifier.clone(),
            },
            mail_signal.clone(),
            clock,
            requests_in_flight.clone(),
            stopping.clone(),
        )?);
        background.push(crate::memory::spawn_trimmer(stopping.clone()));
        background.push(crate::mail::reminders::spawn(
            desk.clone(),
            notifier,
            config.triage_reminder_days,
            config.reminder_interval,
            mail_signal,
            stopping.clone(),
        ));
        let state = web::Data::new(AppState {
            desk,
            hasher,
            tokens: TokenKeys::new(config.jwt_secret.expose().as_bytes()),
            login_limiter: LoginLimiter::new(config.login_limits),
            reset_limiter: LoginLimiter::for_resets(config.reset_limits),
            config: config.clone(),
            queue_bodies: Default::default(),
            list_bodies: http::rendered::RenderedBodies::with_capacity(http::LIST_BODIES_KEPT),
        });
        background.push(http::idempotency::spawn_purge(
            state.desk.database().clone(),
            stopping.clone(),
        ));
        background.push(crate::desk::statistics::spawn_fold(
            state.desk.clone(),
            stopping.clone(),
        ));
        background.push(spawn_limiter_cleanup(
            [state.login_limiter.clone(), state.reset_limiter.clone()],
            stopping.clone(),
        ));
        background.push(spawn_session_watch(state.desk.clone(), stopping));
        let route_table = web::Data::new(RouteTable::from_openapi(&ApiDoc::openapi()));

        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(
                    web::JsonConfig::default()
                        .limit(http::JSON_BODY_LIMIT)
                        .error_handler(|e, _| problem::json_error(e).into()),
                )
                .app_data(web::PayloadConfig::default().limit(http::JSON_BODY_LIMIT))
                .app_data(
                    web::QueryConfig::default()
                        .error_handler(|e, _| problem::query_error(e).into()),
                )
                .app_data(
                    web::PathConfig::default().error_handler(|e, _| problem::path_error(e).into()),
                )
                .configure(http::routes)
                .configure(crate::web::routes)
                .app_data(route_table.clone())
                .default_service(web::to(http::fallback::no_route))
                .wrap(ErrorHandlers::new().default_handler(problem::ensure_problem_body))
                .wrap(actix_web::middleware::from_fn(crate::web::security_headers))
                .wrap(actix_web::middleware::from_fn(
                    http::idempotency::middleware,
                ))
                .wrap(
                    DefaultHeaders::new()
                        .add(("X-Content-Type-Options", "nosniff"))
                        .add(("Cache-Control", "no-store")),
                )
                .wrap_fn(|request, service| {
                    use actix_web::dev::Service as _;
                    let request_id = request.extensions().get::<RequestId>().copied();
                    let response = service.call(request);
                    async move {
                        let mut response = response.await?;
                        if let Some(id) = request_id
                            && let Ok(value) = id.to_string().parse()
                        {
                            response.headers_mut().insert(
                                actix_web::http::header::HeaderName::from_static("x-request-id"),
                                value,
                            );
                        }
                        Ok(response)
                    }
                })
                .wrap(TracingLogger::default())
                .wrap_fn({
                    // Outermost: a request counts from its first byte
                    // parsed to its answer (`crate::busy`).
                    let requests_in_flight = requests_in_flight.clone();
                    move |request, service| {
                        use actix_web::dev::Service as _;
                        let in_flight = requests_in_flight.enter();
                        let response = service.call(request);
                        async move {
                            let response = response.await;
                            drop(in_flight);
                            response
                        }
                    }
                })
        })
        .listen(listener)?
        .shutdown_timeout(10);
        if let Some(workers) = config.workers {
            server = server.workers(workers);
        }
        let server = server.run();
        tracing::info!(port, "listening");
        Ok(Self {
            port,
            server,
            shutdown,
            background,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server from outside (tests; signals do the same).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM (or `handle().stop()`), then finishes
    /// in-flight requests and lets the background tasks finish their turn.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        let _ = self.shutdown.send(true);
        for task in self.background {
            let _ = tokio::time::timeout(Duration::from_secs(15), task).await;
        }
        result
    }
}

/// Builds the mails' links and sender from the configuration; `bound` is
/// the address the server listens on (links lead there unless
/// `MEDESK_PUBLIC_URL` says otherwise).
fn notifier(config: &Config, bound: SocketAddr) -> anyhow::Result<(Notifier, Mailbox)> {
    let mail_from: Mailbox = config
        .mail_from
        .parse()
        .with_context(|| format!("MEDESK_MAIL_FROM: not a mail address: {}", config.mail_from))?;
    let notifier = Notifier {
        base_url: config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}")),
        from_address: mail_from.email.to_string(),
    };
    Ok((notifier, mail_from))
}

/// The desk for a command run beside the server (`medesk user add`): the
/// same use cases on the same database; mail they queue is sent by the
/// server's mail worker.
pub fn offline_desk(config: &Config, db: Database) -> anyhow::Result<Desk> {
    let (notifier, _) = notifier(config, config.bind)?;
    Ok(Desk::new(db, notifier, crate::mail::MailSignal::default()))
}

/// Creates the `MEDESK_ADMIN_EMAIL` admin unless that account exists; true
/// when it was created.
async fn bootstrap_admin(
    desk: &Desk,
    hasher: &PasswordHasher,
    admin: &AdminBootstrap,
) -> anyhow::Result<bool> {
    let email = EmailAddress::parse(&admin.email).map_err(|e| anyhow!("MEDESK_ADMIN_EMAIL {e}"))?;
    let password =
        NewPassword::parse(&admin.password).map_err(|e| anyhow!("MEDESK_ADMIN_PASSWORD {e}"))?;
    accounts::ensure_admin(desk, hasher, email, password)
        .await
        .context("creating the start-up admin")
}

fn spawn_limiter_cleanup(
    limiters: [LoginLimiter; 2],
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = tick.tick() => limiters.iter().for_each(LoginLimiter::forget_idle),
                _ = shutdown.changed() => return,
            }
        }
    })
}

/// How often an instance asks the database whose sessions ended (a reset on
/// another instance); the instance that handles a reset knows at once.
const SESSION_WATCH_INTERVAL: Duration = Duration::from_secs(5);

/// Keeps the desk's list of ended sessions current (`auth::sessions`).
fn spawn_session_watch(
    desk: Desk,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SESSION_WATCH_INTERVAL);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(error) = accounts::learn_ended_sessions(&desk).await {
                        tracing::warn!(error = %error, "reading ended sessions");
                    }
                }
                _ = shutdown.changed() => return,
            }
        }
    })
}
