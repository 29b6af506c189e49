//! A submitted HTML form (`application/x-www-form-urlencoded`), with the
//! repeated fields that checkboxes send.

use std::collections::BTreeMap;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;

use super::error::PageError;
use super::i18n;

/// Form bodies above this are refused (a case description is at most
/// 20,000 characters, i.e. at most 80 KiB in UTF-8, then percent-encoded).
const FORM_LIMIT: usize = 512 * 1024;

#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The first value of `name`, None when absent or blank.
    pub fn filled(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }

    /// Every field with its values, as a refused form is shown again.
    pub fn fields(&self) -> BTreeMap<String, Vec<String>> {
        let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (key, value) in &self.0 {
            fields.entry(key.clone()).or_default().push(value.clone());
        }
        fields
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .collect()
    }
}

impl FromRequest for Form {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let locale = i18n::visitor_locale(req);
        let bytes = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let bytes = bytes.await.map_err(|_| PageError::Invalid {
                locale,
                detail: i18n::text(locale, "error_400_detail"),
            })?;
            if bytes.len() > FORM_LIMIT {
                return Err(PageError::Invalid {
                    locale,
                    detail: i18n::text(locale, "error_400_detail"),
                });
            }
            Ok(Form(
                url::form_urlencoded::parse(&bytes)
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect(),
            ))
        })
    }
}

/// Validation problems by field, in the viewer's language, as the form
/// templates show them.
pub fn errors_by_field(
    locale: crate::domain::account::Locale,
    problems: &[crate::domain::validation::Invalid],
) -> BTreeMap<String, Vec<String>> {
    let mut by_field: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for problem in problems {
        by_field
            .entry(problem.field.clone())
            .or_default()
            .push(field_problem(locale, problem));
    }
    by_field
}

/// The fields the pages offer as choices (radios, boxes, selects): nothing
/// chosen is "choose one" rather than "fill this in".
const CHOICE_FIELDS: &[&str] = &["product_type", "stage", "language", "locale", "visibility"];

fn field_problem(
    locale: crate::domain::account::Locale,
    problem: &crate::domain::validation::Invalid,
) -> String {
    use crate::domain::validation::Code;
    if problem.code == Some(Code::Required) && CHOICE_FIELDS.contains(&problem.field.as_str()) {
        return i18n::text(locale, "problem_not_chosen");
    }
    i18n::problem(locale, problem.code, &problem.message)
}
