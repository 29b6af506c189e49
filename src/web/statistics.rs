//! The statistics page for program managers and the desk: the category
//! table of a range of received dates, as the API gives it, and its CSV for
//! Excel with the labels in the viewer's language; under it the Open Hours
//! bookings of the same range of slot dates, with their CSV.

use std::collections::BTreeMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::{Deserialize, Serialize};

use super::form::errors_by_field;
use super::i18n;
use super::page::{desk_error, signed_in};
use super::render::Viewer;
use super::session;
use crate::desk::statistics::{
    self as desk, CategoryReport, DateRange, Duplicates, OpenHoursReport,
};
use crate::desk::{Caller, DeskError};
use crate::domain::open_hours_stats;
use crate::domain::statistics::{self, CsvHeaders};
use crate::domain::validation::{Invalid, Problems};
use crate::domain::vocabulary::Category;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(page).service(csv).service(open_hours_csv);
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

    /// The query string of the Open Hours range (for its CSV link).
    fn open_hours_query(from: &str, to: &str) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("from", from)
            .append_pair("to", to)
            .finish()
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

/// A line of the Open Hours table: a month and category, or the total.
#[derive(Serialize)]
struct OpenHoursRow {
    month: String,
    category: String,
    bookings: i64,
    attended: i64,
    cases: i64,
    total: bool,
}

fn open_hours_rows(report: &OpenHoursReport, viewer: &Viewer) -> Vec<OpenHoursRow> {
    let lang = i18n::lang(viewer.locale);
    let table = &report.table;
    let mut rows: Vec<OpenHoursRow> = table
        .months
        .iter()
        .map(|row| OpenHoursRow {
            month: row.month.clone(),
            category: row.bucket.label(lang).to_owned(),
            bookings: row.counts.bookings,
            attended: row.counts.attended,
            cases: row.counts.cases,
            total: false,
        })
        .collect();
    rows.push(OpenHoursRow {
        month: viewer.text("stats_total"),
        category: viewer.text("stats_oh_all_categories"),
        bookings: table.total.bookings,
        attended: table.total.attended,
        cases: table.total.cases,
        total: true,
    });
    rows
}

fn render(
    viewer: &Viewer,
    status: StatusCode,
    form: &RangeForm,
    reports: Option<(&CategoryReport, &OpenHoursReport)>,
    errors: BTreeMap<String, Vec<String>>,
) -> HttpResponse {
    let report = reports.map(|(report, _)| report);
    let open_hours = reports.map(|(_, report)| {
        let (from, to) = (report.from.to_string(), report.to.to_string());
        minijinja::context! {
            rows => open_hours_rows(report, viewer),
            empty => report.table.total.bookings == 0,
            csv_query => RangeForm::open_hours_query(&from, &to),
            from, to,
        }
    });
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
        minijinja::context! { form, categories, table, open_hours, errors },
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

/// The Open Hours bookings of the form's range of dates (slot dates here).
async fn open_hours_report(
    req: &HttpRequest,
    caller: Caller,
    form: &RangeForm,
) -> Result<OpenHoursReport, DeskError> {
    caller.require(desk::READERS)?;
    let range = form.range().map_err(DeskError::Invalid)?;
    desk::open_hours(&session::state(req).desk, caller, range).await
}

#[get("/statistics")]
async fn page(req: HttpRequest, viewer: Viewer, query: web::Query<RangeForm>) -> HttpResponse {
    let caller = match signed_in(&req, &viewer) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    let form = query.into_inner();
    let reports = match category_report(&req, caller, &form).await {
        Ok(report) => open_hours_report(&req, caller, &form)
            .await
            .map(|open_hours| (report, open_hours)),
        Err(error) => Err(error),
    };
    match reports {
        Ok((report, open_hours)) => render(
            &viewer,
            StatusCode::OK,
            &form,
            Some((&report, &open_hours)),
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

/// The Open Hours statistics as the API's CSV (UTF-8 with a BOM, CRLF),
/// headed in the viewer's language, as a download.
#[get("/statistics/open-hours.csv")]
async fn open_hours_csv(
    req: HttpRequest,
    viewer: Viewer,
    query: web::Query<RangeForm>,
) -> HttpResponse {
    let caller = match signed_in(&req, &viewer) {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    match open_hours_report(&req, caller, &query).await {
        Ok(OpenHoursReport { from, to, table }) => {
            let headers = CsvHeaders::Labels(i18n::lang(viewer.locale));
            HttpResponse::Ok()
                .content_type("text/csv; charset=utf-8")
                .insert_header((
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"medesk-open-hours-{from}_{to}.csv\""),
                ))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body(open_hours_stats::open_hours_csv(&table, headers))
        }
        Err(error) => desk_error(&viewer, error),
    }
}
