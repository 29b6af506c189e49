//! The one error family of the use cases. Interfaces map it once: the JSON
//! API to problem+json (`http::problem`), the pages to an error page.

use crate::db::DbError;
use crate::domain::validation::Invalid;

#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// No such thing, or the caller may not know it exists (leaks nothing).
    #[error("not found")]
    NotFound,
    /// The caller may see it, but not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The command names values the desk refuses (every field at once).
    #[error("validation failed")]
    Invalid(Vec<Invalid>),
    /// Not possible in the current state; `context` carries the
    /// machine-readable part (e.g. the allowed actions).
    #[error("{detail}")]
    Conflict {
        detail: String,
        context: Option<serde_json::Map<String, serde_json::Value>>,
    },
    /// No seat is left in the Open Hours slot (409, type `slot_full`).
    #[error("no seat is left in this slot")]
    SlotFull,
    /// The caller acted on a version that is no longer current.
    #[error("the resource has changed since version {expected} was read")]
    StaleVersion { expected: i64 },
    /// Persistence failed (a fault of the infrastructure, or a bug).
    #[error(transparent)]
    Store(#[from] DbError),
    /// Anything else that is not the caller's fault.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl DeskError {
    pub fn conflict(detail: impl Into<String>) -> Self {
        DeskError::Conflict {
            detail: detail.into(),
            context: None,
        }
    }

    /// One refused field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        DeskError::Invalid(vec![Invalid::new(field, message)])
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        DeskError::Internal(error.into())
    }
}

impl From<Vec<Invalid>> for DeskError {
    fn from(problems: Vec<Invalid>) -> Self {
        DeskError::Invalid(problems)
    }
}

impl From<diesel::result::Error> for DeskError {
    fn from(error: diesel::result::Error) -> Self {
        DeskError::Store(error.into())
    }
}

/// Checks the version a caller read against the current one (`None`: the
/// caller did not say, any version will do).
pub fn check_version(expected: Option<i64>, current: i64) -> Result<(), DeskError> {
    match expected {
        Some(expected) if expected != current => Err(DeskError::StaleVersion { expected }),
        _ => Ok(()),
    }
}
