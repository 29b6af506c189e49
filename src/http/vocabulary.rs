//! The closed vocabularies, for people and clients who need the codes
//! before they type one: every code with its Japanese and English label, in
//! the order of PRODUCT.md. Static, so no sign-in and no database.

use actix_web::http::header;
use actix_web::{HttpResponse, get};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::vocabulary::{
    CaseStatus, Category, Lang, MessageVisibility, OrganizationKind, Outcome, Priority,
    ProductType, Route, Stage,
};

/// One code and its labels.
#[derive(Debug, Serialize, ToSchema)]
pub struct Term {
    /// What the API takes and answers.
    pub code: &'static str,
    /// The Japanese label.
    pub ja: &'static str,
    /// The English label.
    pub en: &'static str,
}

/// Every closed vocabulary of the API, each in the order of PRODUCT.md.
#[derive(Debug, Serialize, ToSchema)]
pub struct Vocabulary {
    pub product_types: Vec<Term>,
    pub categories: Vec<Term>,
    pub stages: Vec<Term>,
    pub languages: Vec<Term>,
    pub organization_kinds: Vec<Term>,
    pub case_statuses: Vec<Term>,
    pub outcomes: Vec<Term>,
    pub priorities: Vec<Term>,
    pub routes: Vec<Term>,
    pub message_visibilities: Vec<Term>,
}

/// The terms of one vocabulary enum.
macro_rules! terms {
    ($vocabulary:ty) => {
        <$vocabulary>::ALL
            .into_iter()
            .map(|value| Term {
                code: value.as_str(),
                ja: value.label(Lang::Ja),
                en: value.label(Lang::En),
            })
            .collect()
    };
}

fn vocabulary() -> Vocabulary {
    Vocabulary {
        product_types: terms!(ProductType),
        categories: terms!(Category),
        stages: terms!(Stage),
        languages: terms!(Lang),
        organization_kinds: terms!(OrganizationKind),
        case_statuses: terms!(CaseStatus),
        outcomes: terms!(Outcome),
        priorities: terms!(Priority),
        routes: terms!(Route),
        message_visibilities: terms!(MessageVisibility),
    }
}

/// Every code the API takes, with its Japanese and English label.
#[utoipa::path(
    tag = "service",
    responses((status = 200, body = Vocabulary))
)]
#[get("/api/v1/vocabulary")]
pub async fn vocabulary_terms() -> HttpResponse {
    HttpResponse::Ok()
        // The same for everyone until the next release.
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .json(vocabulary())
}
