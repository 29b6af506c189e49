//! What answers when no route matched: 405 with `Allow` when the path exists
//! under another method, else 404. The route table is read from the OpenAPI
//! document, which is generated from the handlers, so the two cannot drift.

use actix_web::{HttpRequest, HttpResponse, web};

use super::problem::ApiError;

pub struct RouteTable {
    routes: Vec<(Vec<Segment>, Vec<&'static str>)>,
}

enum Segment {
    Literal(String),
    Parameter,
}

impl RouteTable {
    pub fn from_openapi(doc: &utoipa::openapi::OpenApi) -> Self {
        let routes = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let segments = path
                    .trim_matches('/')
                    .split('/')
                    .map(|s| {
                        if s.starts_with('{') {
                            Segment::Parameter
                        } else {
                            Segment::Literal(s.to_owned())
                        }
                    })
                    .collect();
                let methods = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ]
                .into_iter()
                .filter_map(|(method, present)| present.then_some(method))
                .collect();
                (segments, methods)
            })
            .collect();
        Self { routes }
    }

    /// The methods a path accepts, or None when no route has this path.
    pub fn allowed_methods(&self, path: &str) -> Option<Vec<&'static str>> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let mut allowed: Vec<&'static str> = self
            .routes
            .iter()
            .filter(|(segments, _)| {
                segments.len() == parts.len()
                    && segments
                        .iter()
                        .zip(&parts)
                        .all(|(segment, part)| match segment {
                            Segment::Literal(literal) => literal == part,
                            Segment::Parameter => !part.is_empty(),
                        })
            })
            .flat_map(|(_, methods)| methods.iter().copied())
            .collect();
        allowed.sort_unstable();
        allowed.dedup();
        (!allowed.is_empty()).then_some(allowed)
    }
}

pub async fn no_route(
    request: HttpRequest,
    table: web::Data<RouteTable>,
) -> Result<HttpResponse, ApiError> {
    if crate::web::wants_page(&request) && table.allowed_methods(request.path()).is_none() {
        return Ok(crate::web::not_found_page(&request));
    }
    match table.allowed_methods(request.path()) {
        Some(methods) => Err(ApiError::MethodNotAllowed(methods.join(", "))),
        None => Err(ApiError::NotFound),
    }
}
