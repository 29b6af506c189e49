//! The OpenAPI document, generated from the handlers' annotations, and the
//! offline API page (Swagger UI assets are compiled into the binary).

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use super::{
    accounts, admin, assignments, cases, experts, import, organizations, problem, service, stats,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "medesk",
        description = "Consultation case manager for healthcare ventures. Errors are application/problem+json (RFC 9457)."
    ),
    paths(
        service::health,
        accounts::register,
        accounts::login,
        accounts::refresh,
        accounts::logout,
        accounts::me,
        accounts::create_user,
        cases::create_case,
        cases::list_cases,
        cases::get_case,
        cases::claim,
        cases::triage,
        cases::change_status,
        cases::events,
        cases::post_message,
        cases::list_messages,
        cases::triage_queue,
        admin::access_log,
        admin::list_outbox,
        admin::retry_outbox,
        organizations::get_organization,
        organizations::invite,
        accounts::set_password,
        experts::create_expert,
        experts::list_experts,
        experts::get_expert,
        experts::update_expert,
        experts::suggestions,
        assignments::assign,
        assignments::accept,
        assignments::decline,
        assignments::withdraw,
        assignments::complete,
        assignments::my_assignments,
        assignments::case_assignments,
        assignments::create_meeting,
        assignments::list_meetings,
        assignments::record_advice,
        assignments::write_plan,
        assignments::read_plan,
        stats::categories,
        stats::categories_csv,
        stats::trend,
        stats::pipeline,
        stats::experts,
        stats::verify,
        import::import_cases,
    ),
    components(schemas(problem::Problem, problem::FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "service", description = "Health and documentation"),
        (name = "auth", description = "Accounts and sign-in"),
        (name = "cases", description = "Consultation cases: intake, lifecycle, timeline, messages"),
        (name = "experts", description = "Expert registry, suggestions, assignments, meetings"),
        (name = "organizations", description = "Organisations, members and invitations"),
        (name = "admin", description = "Operator views"),
        (name = "statistics", description = "Aggregates for program managers: category table, trend, pipeline, experts"),
        (name = "import", description = "Import of historical cases from CSV"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// `/docs` (interactive page) and `/api/openapi.json` (the document).
pub fn swagger_ui() -> SwaggerUi {
    SwaggerUi::new("/docs/{_:.*}").url("/api/openapi.json", ApiDoc::openapi())
}

pub async fn docs_redirect() -> actix_web::HttpResponse {
    actix_web::HttpResponse::PermanentRedirect()
        .insert_header(("Location", "/docs/"))
        .finish()
}
