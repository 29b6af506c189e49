//! The `medesk` binary: `serve`, `migrate`, `user add`.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use medesk::app::{self, Application};
use medesk::auth::password::PasswordHasher;
use medesk::config::{Config, DatabaseUrl};
use medesk::db::Database;
use medesk::desk::DeskError;
use medesk::desk::accounts::{self, AccountForm, Creator, NewAccount};
use medesk::domain::account::Locale;
use medesk::domain::role::Role;
use medesk::domain::validation::Problems;

#[derive(Parser)]
#[command(
    name = "medesk",
    version,
    about = "Consultation case manager for healthcare ventures"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (applies pending migrations first).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user of any role. The password is read from standard input
    /// (or prompted for without echo), never from the command line.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long, default_value = "ja", value_parser = parse_locale)]
        locale: Locale,
        /// Organisation name (applicants only).
        #[arg(long)]
        organization: Option<String>,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
        .map_err(|e: medesk::domain::role::UnknownRole| e.to_string())
}

fn parse_locale(s: &str) -> Result<Locale, String> {
    s.parse().map_err(|e: &str| e.to_owned())
}

/// Rust's allocations go to mimalloc: glibc's malloc and free were a sixth
/// of the SQLite writer's instructions per intake (docs/performance.md,
/// issue 19's eleventh round). SQLite and libpq still use glibc's
/// (`src/memory.rs`). Built without transparent huge pages (`no_thp`):
/// with them its regions grew the peak RSS by some 40 MiB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    medesk::telemetry::init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("medesk: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    // Only `serve` and `migrate` create a database; any other command on a
    // SQLite file that is not there was run in the wrong folder.
    if !matches!(cli.command, Command::Serve | Command::Migrate)
        && let Err(error) = existing_database(&config.database)
    {
        eprintln!("medesk: {error:#}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Serve => serve(config),
        Command::Migrate => Database::connect(&config.database, 1)
            .map(|db| println!("migrations applied ({})", db.backend().name()))
            .map_err(anyhow::Error::from),
        Command::User {
            command:
                UserCommand::Add {
                    email,
                    name,
                    role,
                    locale,
                    organization,
                },
        } => add_user(
            &config,
            &email,
            &name,
            role,
            locale,
            organization.as_deref(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("medesk: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Refuses a SQLite database file that does not exist (SQLite would create
/// an empty one), naming the absolute path it looked for.
fn existing_database(database: &DatabaseUrl) -> anyhow::Result<()> {
    let DatabaseUrl::Sqlite(path) = database else {
        return Ok(());
    };
    let path = std::path::Path::new(path);
    if path.exists() {
        return Ok(());
    }
    let shown = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    anyhow::bail!(
        "no database at {}; this command does not create one. Run it where the server runs, \
         or point DATABASE_URL at the server's database (sqlite://PATH or postgres://…); \
         `medesk migrate` or `medesk serve` create a new one",
        shown.display()
    )
}

fn serve(config: Config) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(config).await?;
        app.run_until_stopped().await?;
        tracing::info!("stopped");
        Ok(())
    })
}

fn add_user(
    config: &Config,
    email: &str,
    name: &str,
    role: Role,
    locale: Locale,
    organization: Option<&str>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        organization.is_none() || role == Role::Applicant,
        "--organization is only for applicants"
    );
    let password = read_password()?;
    let mut problems = Problems::default();
    let details = AccountForm {
        email: Some(email),
        password: Some(&password),
        name: Some(name),
        locale: Some(locale.as_str()),
    }
    .parse(&mut problems);
    let membership = problems.check("organization", accounts::membership_for(role, organization));
    let command = problems
        .finish(|| {
            Some(NewAccount {
                details: details?,
                role,
                membership: membership?,
            })
        })
        .map_err(|problems| refused(DeskError::Invalid(problems)))?;
    let db = Database::connect(&config.database, 1)?;
    let desk = app::offline_desk(config, db)?;
    let account = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let hasher = PasswordHasher::new(1);
            accounts::create_account(&desk, Creator::Operator, &hasher, command).await
        })
        .map_err(refused)?;
    println!(
        "created {} {} (id {})",
        account.role, account.email, account.id
    );
    Ok(())
}

/// A refusal as the operator reads it: every refused field with its reason.
fn refused(error: DeskError) -> anyhow::Error {
    match error {
        DeskError::Invalid(problems) => anyhow::anyhow!(
            "{}",
            problems
                .iter()
                .map(|p| format!("{} {}", p.field, p.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        other => other.into(),
    }
}

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let second = rpassword::prompt_password("Repeat password: ")?;
        anyhow::ensure!(first == second, "the passwords differ");
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}
