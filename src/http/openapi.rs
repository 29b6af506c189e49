//! The OpenAPI document, generated from the handlers' annotations, and the
//! offline API page (Swagger UI assets are compiled into the binary).

use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Required};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

use super::{
    accounts, actions, admin, assignments, cases, experts, import, open_hours, organizations,
    problem, schema, service, stats, terms, vocabulary,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "medesk",
        description = "Consultation case manager for healthcare ventures. Errors are application/problem+json (RFC 9457)."
    ),
    paths(
        service::health,
        vocabulary::vocabulary_terms,
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
        cases::edit_case,
        actions::claim,
        actions::triage,
        actions::request_info,
        actions::applicant_reply,
        actions::start_matching,
        actions::start_consultation,
        actions::close,
        actions::withdraw,
        actions::reopen,
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
        accounts::request_password_reset,
        accounts::find_people,
        terms::confidentiality,
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
        assignments::record_meeting,
        assignments::list_meetings,
        assignments::record_advice,
        assignments::write_plan,
        assignments::read_plan,
        stats::categories,
        stats::categories_csv,
        stats::trend,
        stats::pipeline,
        stats::experts,
        stats::open_hours,
        stats::open_hours_csv,
        stats::verify,
        import::import_cases,
        open_hours::list_slots,
        open_hours::change_slot,
        open_hours::get_rules,
        open_hours::change_rules,
        open_hours::list_holidays,
        open_hours::put_holiday,
        open_hours::delete_holiday,
        open_hours::book,
        open_hours::list_bookings,
        open_hours::get_booking,
        open_hours::cancel_booking,
        open_hours::record_attendance,
        open_hours::open_case,
    ),
    // Schemas that only parameters use (bodies bring their own along).
    components(schemas(
        problem::Problem,
        problem::FieldError,
        schema::AssignmentFilter,
        schema::CaseCursor,
        schema::IfMatchValue,
        schema::IsoDate,
        schema::MailState,
        schema::TrendInterval,
    )),
    modifiers(&BearerAuth, &IdempotencyKeys, &ProblemResponses, &ResourceLinks),
    tags(
        (name = "service", description = "Health and documentation"),
        (name = "auth", description = "Accounts and sign-in"),
        (name = "cases", description = "Consultation cases: intake, lifecycle, timeline, messages"),
        (name = "experts", description = "Expert registry, suggestions, assignments, meetings"),
        (name = "organizations", description = "Organisations, members and invitations"),
        (name = "admin", description = "Operator views"),
        (name = "statistics", description = "Aggregates for program managers: category table, trend, pipeline, experts, Open Hours"),
        (name = "import", description = "Import of historical cases from CSV"),
        (name = "open-hours", description = "Open Hours: weekday slots, bookings, attendance, cases from bookings; the rules, slot changes and holidays of admins"),
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

/// The error answers every operation shares, declared once as response
/// components and referred to by each operation they apply to; and every
/// error response a handler declares gets the problem document as its
/// `application/problem+json` body (what `problem.rs` sends).
struct ProblemResponses;

/// A shared error response: status, component name, description.
struct Common {
    status: u16,
    name: &'static str,
    description: &'static str,
}

const fn common(status: u16, name: &'static str, description: &'static str) -> Common {
    Common {
        status,
        name,
        description,
    }
}

const MALFORMED: Common = common(
    400,
    "MalformedRequest",
    "The body is not UTF-8 encoded or not well-formed JSON, or `If-Match` is not a version.",
);
const UNAUTHORIZED: Common = common(
    401,
    "Unauthorized",
    "No bearer access token, or an invalid or expired one, or one of a session a password \
     reset ended. `WWW-Authenticate` says which (RFC 6750): `Bearer` when none was sent, \
     `Bearer error=\"invalid_token\"` with an `error_description` otherwise; an expired token \
     is `type` `/problems/token-expired` (refresh it), the others `/problems/unauthorized`.",
);
const NOT_FOUND: Common = common(
    404,
    "NotFound",
    "No such resource, or not one the caller may see.",
);
const TOO_LARGE: Common = common(
    413,
    "PayloadTooLarge",
    "The body is larger than this operation takes; `detail` and `max_bytes` say the limit.",
);
const UNSUPPORTED: Common = common(
    415,
    "UnsupportedMediaType",
    "The body is not of the media type this operation takes, or names a charset other than UTF-8.",
);
const INVALID: Common = common(
    422,
    "ValidationFailed",
    "A field or parameter is invalid; `errors` names each one.",
);
const UNAVAILABLE: Common = common(
    503,
    "Unavailable",
    "The database is unavailable or busy; retry after `Retry-After` seconds.",
);

impl Common {
    fn key(&self) -> String {
        self.status.to_string()
    }
}

/// The problem document as a response body.
fn problem_content() -> Content {
    Content::new(Some(RefOr::Ref(Ref::from_schema_name(
        problem::Problem::name(),
    ))))
}

fn retry_after(description: &str) -> utoipa::openapi::header::Header {
    HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1)),
        )
        .description(Some(description))
        .build()
}

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .flatten()
}

/// Which shared responses apply to `operation` at `path`, from its shape:
/// where the server's extractors and middleware can answer them.
fn shared_responses(path: &str, operation: &Operation) -> Vec<&'static Common> {
    let parameters = operation.parameters.as_deref().unwrap_or_default();
    let has = |location: ParameterIn| {
        parameters
            .iter()
            .any(|p| std::mem::discriminant(&p.parameter_in) == std::mem::discriminant(&location))
    };
    let if_match = parameters
        .iter()
        .any(|p| p.name.eq_ignore_ascii_case("if-match"));
    // An optional body is read leniently (`Option<Json<…>>`): a bad one is
    // ignored, never refused.
    let body = operation
        .request_body
        .as_ref()
        .filter(|b| matches!(b.required, Some(Required::True)));
    let json_body = body.is_some_and(|b: &RequestBody| b.content.contains_key("application/json"));
    let secured = operation
        .security
        .as_ref()
        .is_some_and(|requirements| !requirements.is_empty());
    let mut shared = Vec::new();
    if json_body || if_match {
        shared.push(&MALFORMED);
    }
    if secured {
        shared.push(&UNAUTHORIZED);
    }
    if has(ParameterIn::Path) {
        shared.push(&NOT_FOUND);
    }
    if body.is_some() {
        shared.extend([&TOO_LARGE, &UNSUPPORTED]);
    }
    if body.is_some() || has(ParameterIn::Query) {
        shared.push(&INVALID);
    }
    // Everything under /api touches the database; /health does not.
    if path.starts_with("/api/") {
        shared.push(&UNAVAILABLE);
    }
    shared
}

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for common in [
            &MALFORMED,
            &UNAUTHORIZED,
            &NOT_FOUND,
            &TOO_LARGE,
            &UNSUPPORTED,
            &INVALID,
            &UNAVAILABLE,
        ] {
            let mut response = ResponseBuilder::new()
                .description(common.description)
                .content(problem::PROBLEM_JSON, problem_content());
            if common.status == 503 {
                response = response.header(
                    "Retry-After",
                    retry_after("Seconds to wait before retrying."),
                );
            }
            if common.status == 401 {
                response = response.header(
                    "WWW-Authenticate",
                    HeaderBuilder::new()
                        .schema(ObjectBuilder::new().schema_type(Type::String))
                        .description(Some("The bearer challenge (RFC 6750, section 3)."))
                        .build(),
                );
            }
            components
                .responses
                .insert(common.name.to_owned(), RefOr::T(response.build()));
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            for operation in operations(item) {
                for parameter in operation.parameters.iter_mut().flatten() {
                    if let Some(schema) = parameter.schema.take() {
                        parameter.schema = Some(without_null(schema));
                    }
                }
                let shared = shared_responses(path, operation);
                let responses = &mut operation.responses.responses;
                for (status, response) in responses.iter_mut() {
                    let RefOr::T(response) = response else {
                        continue;
                    };
                    if status.starts_with('4') || status.starts_with('5') {
                        declare_problem(status, response, &shared);
                    }
                }
                for common in shared {
                    responses.entry(common.key()).or_insert_with(|| {
                        RefOr::Ref(Ref::new(format!("#/components/responses/{}", common.name)))
                    });
                }
            }
        }
    }
}

/// A parameter's schema without `null`: an optional query parameter or
/// header is left out, never sent as null (`Option<T>` fields say null).
fn without_null(schema: RefOr<Schema>) -> RefOr<Schema> {
    let is_null = |item: &RefOr<Schema>| matches!(item, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null));
    match schema {
        RefOr::T(Schema::OneOf(one)) if one.items.iter().any(is_null) => {
            let mut rest: Vec<_> = one.items.into_iter().filter(|i| !is_null(i)).collect();
            if rest.len() == 1 {
                rest.remove(0)
            } else {
                RefOr::T(Schema::OneOf(utoipa::openapi::schema::OneOf {
                    items: rest,
                    ..Default::default()
                }))
            }
        }
        RefOr::T(Schema::Object(mut object)) => {
            if let SchemaType::Array(types) = &object.schema_type {
                let types: Vec<Type> = types
                    .iter()
                    .filter(|t| **t != Type::Null)
                    .cloned()
                    .collect();
                object.schema_type = match types.as_slice() {
                    [one] => SchemaType::Type(one.clone()),
                    _ => SchemaType::Array(types),
                };
            }
            RefOr::T(Schema::Object(object))
        }
        other => other,
    }
}

/// An error response a handler declares: its body is the problem document,
/// and its description defaults to the shared one.
fn declare_problem(status: &str, response: &mut Response, shared: &[&Common]) {
    response.content.clear();
    response
        .content
        .insert(problem::PROBLEM_JSON.to_owned(), problem_content());
    if response.description.is_empty() {
        response.description = shared
            .iter()
            .find(|c| c.key() == status)
            .map(|c| c.description.to_owned())
            .unwrap_or_else(|| default_description(status).to_owned());
    }
    if status == "429" || status == "503" {
        response.headers.insert(
            "Retry-After".to_owned(),
            retry_after("Seconds to wait before retrying."),
        );
    }
}

fn default_description(status: &str) -> &'static str {
    match status {
        "403" => "The caller's role may not do this.",
        "404" => "No such resource, or not one the caller may see.",
        "409" => "The resource's state does not allow this, or it exists already.",
        "412" => "`If-Match` names a version that is no longer current.",
        "422" => "A field or parameter is invalid; `errors` names each one.",
        "429" => "Too many attempts; retry after `Retry-After` seconds.",
        _ => "The request failed.",
    }
}

/// The `Idempotency-Key` header on the POSTs that honour it
/// (`idempotency::applies`), with the answers it adds: 409 while a twin
/// request runs, 422 for a malformed or reused key.
struct IdempotencyKeys;

impl Modify for IdempotencyKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        for (path, item) in openapi.paths.paths.iter_mut() {
            let Some(operation) = item.post.as_mut() else {
                continue;
            };
            let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
            if !secured || !super::idempotency::applies(&actix_web::http::Method::POST, path) {
                continue;
            }
            let key = ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "Sent again with the same request within 24 hours, the first answer is \
                     returned (marked `Idempotent-Replayed: true`) and nothing is done twice.",
                ))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1))
                        .max_length(Some(255))
                        .pattern(Some("^[!-~]+$")),
                ))
                .build();
            operation.parameters.get_or_insert_with(Vec::new).push(key);
            let responses = &mut operation.responses.responses;
            for (status, description) in [
                (
                    "409",
                    "The state does not allow this, or a request with this `Idempotency-Key` is still running.",
                ),
                (
                    "422",
                    "A field is invalid, or `Idempotency-Key` is malformed or was used for another request; `errors` names each one.",
                ),
            ] {
                responses.entry(status.to_owned()).or_insert_with(|| {
                    RefOr::T(ResponseBuilder::new().description(description).build())
                });
            }
        }
    }
}

/// Links from each operation that creates a resource (`POST …/NAME` answering
/// 201 with an `id`) to the operations on it (`/api/v1/NAME/{id}…`), so a
/// client, or a stateful tester, can follow a new case to its claim, triage,
/// messages …; `If-Match` gets the new resource's `ETag` where it has one.
struct ResourceLinks;

/// An operation on a created resource.
struct LinkTarget {
    operation_id: String,
    /// The path parameter the new resource's id goes to.
    parameter: String,
    takes_if_match: bool,
}

impl Modify for ResourceLinks {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let schemas = openapi
            .components
            .as_ref()
            .map(|c| c.schemas.clone())
            .unwrap_or_default();
        let has_id = |response: &Response| {
            let reference = response
                .content
                .get("application/json")
                .and_then(|content| content.schema.as_ref());
            let name = match reference {
                Some(RefOr::Ref(r)) => r.ref_location.rsplit('/').next().unwrap_or_default(),
                _ => return false,
            };
            matches!(schemas.get(name), Some(RefOr::T(Schema::Object(o))) if o.properties.contains_key("id"))
        };
        let mut creators: Vec<(String, String)> = Vec::new();
        for (path, item) in &openapi.paths.paths {
            let Some(post) = &item.post else { continue };
            let creates =
                matches!(post.responses.responses.get("201"), Some(RefOr::T(r)) if has_id(r));
            let collection = path.rsplit('/').next().unwrap_or_default();
            if creates && !collection.starts_with('{') {
                // A top-level collection's items live under it
                // (`/api/v1/open-hours/bookings/{id}`); one created under
                // another resource lives at the top level
                // (`/api/v1/cases/{id}/assignments` → `/api/v1/assignments/{id}`).
                let items = if path.contains('{') {
                    format!("/api/v1/{collection}/{{")
                } else {
                    format!("{path}/{{")
                };
                creators.push((path.clone(), items));
            }
        }
        let mut targets: Vec<(String, Vec<LinkTarget>)> = Vec::new();
        for (creator, prefix) in &creators {
            let mut found = Vec::new();
            for (path, item) in openapi.paths.paths.iter_mut() {
                let Some(rest) = path.strip_prefix(prefix.as_str()) else {
                    continue;
                };
                let parameter = rest.split('}').next().unwrap_or_default().to_owned();
                for operation in operations(item) {
                    let takes_if_match = operation
                        .parameters
                        .iter()
                        .flatten()
                        .any(|p| p.name.eq_ignore_ascii_case("if-match"));
                    if let Some(id) = &operation.operation_id {
                        found.push(LinkTarget {
                            operation_id: id.clone(),
                            parameter: parameter.clone(),
                            takes_if_match,
                        });
                    }
                }
            }
            targets.push((creator.clone(), found));
        }
        for (creator, found) in targets {
            let Some(RefOr::T(created)) = openapi
                .paths
                .paths
                .get_mut(&creator)
                .and_then(|item| item.post.as_mut())
                .and_then(|post| post.responses.responses.get_mut("201"))
            else {
                continue;
            };
            let etag = created.headers.contains_key("ETag");
            for LinkTarget {
                operation_id,
                parameter,
                takes_if_match,
            } in found
            {
                // utoipa 5.5 writes `Link::operation_id` as `operation_id`;
                // OpenAPI's field is `operationId`.
                let mut target = Extensions::default();
                target.insert("operationId".to_owned(), operation_id.clone().into());
                let mut link = LinkBuilder::new()
                    .extensions(Some(target))
                    .parameter(parameter, "$response.body#/id");
                if takes_if_match && etag {
                    link = link.parameter("header.If-Match", "$response.header.ETag");
                }
                created.links.insert(operation_id, RefOr::T(link.build()));
            }
        }
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
