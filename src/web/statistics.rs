//! The statistics page for program managers and the desk: the category
//! table of a range of received dates, as the API gives it, and its CSV for
//! Excel with the labels in the viewer's language.

use std::collections::BTreeMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::{Deserialize, Serialize};

use super::form::errors_by_field;
use super::i18n;
use super::page::{desk_error, signed_in};
use super::render::Viewer;
use super::session;
use crate::desk::statistics::{self as desk, CategoryReport, DateRange, Duplicates};
use crate::desk::{Caller, DeskError};
use crate::domain::statistics::{self, CsvHeaders};
use crate::domain::validation::{Invalid, Problems};
use crate::domain::vocabulary::Category;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(page).service(csv);
}

/// The range form as typed: kept as strings so a bad date is shown back.
#[derive(Debug, Default, Deserialize, Serialize)]
struct RangeForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// A checkbox: present (any value) when ticked.
    include_duplicates: Option<String>,
}

impl RangeForm {
    fn duplicates(&self) -> Duplicates {
        Duplicates::included(self.include_duplicates.is_some())
    }

    /// The range, or every problem with its field.
    fn range(&self) -> Result<DateRange, Vec<Invalid>> {
        let mut problems = Problems::default();
        let mut date = |field: &str, raw: &str| match raw.trim() {
            "" => Some(None),
            raw => problems.check(field, statistics::parse_date(raw)).map(Some),
        };
        let (from, to) = (date("from", &self.from), date("to", &self.to));
        let range = match (from, to) {
            (Some(from), Some(to)) => problems.check("from", DateRange::new(from, to)),
            _ => None,
        };
        problems.finish(|| range)
    }

    /// The query string of this range (for the CSV link).
    fn query(&self, from: &str, to: &str) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("from", from).append_pair("to", to);
        if self.include_duplicates.is_some() {
            query.append_pair("include_duplicates", "on");
        }
        query.finish()
    }
}

#[derive(Serialize)]
struct Row {
    label: String,
    cases: i64,
    /// One per category, in the vocabulary's order: count and percent.
    cells: Vec<(i64, i64)>,
    total: bool,
}

fn rows(report: &CategoryReport, viewer: &Viewer) -> Vec<Row> {
    let lang = i18n::lang(viewer.locale);
    let table = &report.table;
    table
        .rows
        .iter()
        .chain(std::iter::once(&table.total))
        .map(|row| Row {
            label: row
                .product_type
                .map_or_else(|| viewer.text("stats_total"), |p| p.label(lang).to_owned()),
            cases: row.cases,
            cells: row
                .counts
                .iter()
                .zip(row.percents.iter())
                .map(|((_, count), (_, percent))| (count, percent))
                .collect(),
            total: row.product_type.is_none(),
        })
        .collect()
}

fn render(
    viewer: &Viewer,
    status: StatusCode,
    form: &RangeForm,
    report: Option<&CategoryReport>,
    errors: BTreeMap<String, Vec<String>>,
) -> HttpResponse {
    let lang = i18n::lang(viewer.locale);
    let categories: Vec<&str> = Category::ALL.iter().map(|c| c.label(lang)).collect();
    let table = report.map(|report| {
        let (from, to) = (report.from.to_string(), report.to.to_string());
        minijinja::context! {
            rows => rows(report, viewer),
            csv_query => form.query(&from, &to),
            from, to,
        }
    });
    viewer.render(
        status,
        "statistics.html",
        minijinja::context! { form, categories, table, errors },
    )
}

/// The table of the form's range; readers only (others learn nothing, not
/// even that their dates were wrong).
async fn category_report(
    req: &HttpRequest,
    caller: Caller,
    form: &RangeForm,
) -> Result<CategoryReport, DeskError> {
    caller.require(desk::READERS)?;
    let range = form.range().map_err(DeskError::Invalid)?;
    desk::category_table_with(&session::state(req).desk, caller, range, form.duplicates()).await
}

#[get("/statistics")]
async fn page(req: HttpRequest, viewer: Viewer, query: web::Query<RangeForm>) -> HttpResponse {
    let caller = match signed_in(&req, &viewer) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let form = query.into_inner();
    match category_report(&req, caller, &form).await {
        Ok(report) => render(
            &viewer,
            StatusCode::OK,
            &form,
            Some(&report),
            BTreeMap::new(),
        ),
        Err(DeskError::Invalid(problems)) => {
            let errors = errors_by_field(viewer.locale, &problems);
            render(
                &viewer,
                StatusCode::UNPROCESSABLE_ENTITY,
                &form,
                None,
                errors,
            )
        }
        Err(error) => desk_error(&viewer, error),
    }
}

/// The table as the API's CSV (UTF-8 with a BOM, CRLF), headed in the
/// viewer's language, as a download.
#[get("/statistics/categories.csv")]
async fn csv(req: HttpRequest, viewer: Viewer, query: web::Query<RangeForm>) -> HttpResponse {
    let caller = match signed_in(&req, &viewer) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    match category_report(&req, caller, &query).await {
        Ok(CategoryReport { from, to, table }) => {
            let headers = CsvHeaders::Labels(i18n::lang(viewer.locale));
            HttpResponse::Ok()
                .content_type("text/csv; charset=utf-8")
                .insert_header((
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"medesk-categories-{from}_{to}.csv\""),
                ))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body(statistics::category_csv(&table, headers))
        }
        Err(error) => desk_error(&viewer, error),
    }
}
