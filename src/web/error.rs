//! What a page shows when a request fails: an error page in the viewer's
//! language, with the status the JSON API would answer (never JSON).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use super::render::Viewer;
use crate::db::Fault;
use crate::desk::DeskError;
use crate::domain::account::Locale;

/// Seconds a client is asked to wait when the database is unavailable.
const RETRY_AFTER_SECONDS: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("not found")]
    NotFound { locale: Locale },
    #[error("forbidden")]
    Forbidden { locale: Locale },
    #[error("cross-site or stale form")]
    Csrf { locale: Locale },
    #[error("conflict: {detail}")]
    Conflict { locale: Locale, detail: String },
    #[error("invalid: {detail}")]
    Invalid { locale: Locale, detail: String },
    #[error("unavailable")]
    Unavailable { locale: Locale, storage_full: bool },
    #[error("internal error")]
    Internal { locale: Locale },
}

impl PageError {
    /// Maps a use case's refusal; the faults are logged here, once.
    pub fn from_desk(error: DeskError, locale: Locale) -> Self {
        match error {
            DeskError::NotFound => PageError::NotFound { locale },
            DeskError::Forbidden(_) => PageError::Forbidden { locale },
            DeskError::Invalid(problems) => PageError::Invalid {
                locale,
                detail: problems
                    .iter()
                    .map(|p| {
                        let problem = super::i18n::problem(locale, p.code, &p.message);
                        format!("{}: {problem}", p.field)
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            },
            DeskError::Conflict { detail, .. } => PageError::Conflict { locale, detail },
            DeskError::SlotFull => PageError::Conflict {
                locale,
                detail: super::i18n::text(locale, "open_hours_slot_full"),
            },
            DeskError::StaleVersion { .. } => PageError::Conflict {
                locale,
                detail: super::i18n::text(locale, "notice_stale"),
            },
            DeskError::Store(error) => match error.fault() {
                Some(fault) => {
                    tracing::warn!(error = %error, "page: database unavailable");
                    PageError::Unavailable {
                        locale,
                        storage_full: fault == Fault::StorageFull,
                    }
                }
                None => {
                    tracing::error!(error = %error, "page: database error");
                    PageError::Internal { locale }
                }
            },
            DeskError::Internal(error) => {
                tracing::error!(error = %format!("{error:#}"), "page: internal error");
                PageError::Internal { locale }
            }
        }
    }

    fn locale(&self) -> Locale {
        match self {
            PageError::NotFound { locale }
            | PageError::Forbidden { locale }
            | PageError::Csrf { locale }
            | PageError::Conflict { locale, .. }
            | PageError::Invalid { locale, .. }
            | PageError::Unavailable { locale, .. }
            | PageError::Internal { locale } => *locale,
        }
    }

    /// The page for this error, shown to `viewer`.
    pub fn page(&self, viewer: &Viewer) -> HttpResponse {
        let text = |key: &str| viewer.text(key);
        let (title, detail) = match self {
            PageError::NotFound { .. } => (text("error_404_title"), text("error_404_detail")),
            PageError::Forbidden { .. } => (text("error_403_title"), text("error_403_detail")),
            PageError::Csrf { .. } => (text("error_403_title"), text("error_403_csrf")),
            PageError::Conflict { detail, .. } => (text("error_409_title"), detail.clone()),
            PageError::Invalid { detail, .. } => (text("error_422_title"), detail.clone()),
            PageError::Unavailable { .. } => (text("error_503_title"), text("error_503_detail")),
            PageError::Internal { .. } => (text("error_500_title"), text("error_500_detail")),
        };
        let status = self.status_code();
        let mut response = viewer.render(
            status,
            "error.html",
            minijinja::context! { status => status.as_u16(), title, detail },
        );
        if matches!(self, PageError::Unavailable { .. }) {
            response.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                RETRY_AFTER_SECONDS.into(),
            );
        }
        response
    }
}

/// Used when the viewer itself could not be built (the session lookup
/// failed): the page is shown as to a visitor.
impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::NotFound { .. } => StatusCode::NOT_FOUND,
            PageError::Forbidden { .. } | PageError::Csrf { .. } => StatusCode::FORBIDDEN,
            PageError::Conflict { .. } => StatusCode::CONFLICT,
            PageError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            PageError::Unavailable {
                storage_full: true, ..
            } => StatusCode::INSUFFICIENT_STORAGE,
            PageError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            PageError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.page(&Viewer::visitor(self.locale()))
    }
}
