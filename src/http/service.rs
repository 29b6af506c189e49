//! Service endpoints.

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the process answers.
    #[schema(pattern = "^ok$", example = "ok")]
    pub status: &'static str,
    /// `sqlite` or `postgres`.
    #[schema(pattern = "^(sqlite|postgres)$", example = "sqlite")]
    pub database: &'static str,
}

/// Liveness and the backend in use. Cheap by design: it is the reference
/// ceiling in benchmarks.
#[utoipa::path(tag = "service", responses((status = 200, body = Health)))]
#[get("/health")]
pub async fn health(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        database: state.desk.backend().name(),
    })
}
