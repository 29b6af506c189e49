//! The confidentiality terms experts accept (no sign-in needed).

use actix_web::http::header;
use actix_web::{HttpResponse, get};
use serde::Serialize;
use utoipa::ToSchema;

use crate::desk::terms::{self, Terms};

#[derive(Debug, Serialize, ToSchema)]
pub struct TermsText {
    /// Japanese (Markdown).
    pub ja: &'static str,
    /// English (Markdown).
    pub en: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TermsResponse {
    /// The version an acceptance records (`terms_version` of an assignment).
    #[schema(example = "2026-11")]
    pub version: &'static str,
    /// The day this version took effect.
    #[schema(value_type = String, format = Date, example = "2026-11-01")]
    pub effective_on: &'static str,
    pub text: TermsText,
}

impl From<Terms> for TermsResponse {
    fn from(terms: Terms) -> Self {
        Self {
            version: terms.version,
            effective_on: terms.effective_on,
            text: TermsText {
                ja: terms.ja,
                en: terms.en,
            },
        }
    }
}

/// The confidentiality terms in force, which an expert acknowledges by
/// accepting an assignment. Anyone may read them, signed in or not: the
/// proposal mail points here before the expert has signed in.
#[utoipa::path(
    tag = "experts",
    responses((status = 200, body = TermsResponse))
)]
#[get("/api/v1/terms/confidentiality")]
pub async fn confidentiality() -> HttpResponse {
    HttpResponse::Ok()
        // The same for everyone until the next release.
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .json(TermsResponse::from(terms::confidentiality_terms()))
}
