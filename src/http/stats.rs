//! Statistics for program managers: the category table (JSON and CSV), the
//! trend, the pipeline and expert utilisation. Aggregates only: no answer
//! here carries case text, case numbers or applicants' names.

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::extract::AuthUser;
use super::problem::ApiError;
use super::schema::{
    IsoDate, OpenPerStatus, PerCategoryCounts, PerCategoryPercents, PerProductType, TrendInterval,
};
use crate::desk::statistics::{
    self as desk, CategoryReport, DateRange, Duplicates, MedianSpan, OpenHoursReport,
    PipelineQuery, Rollup,
};
use crate::domain::open_hours_stats;
use crate::domain::statistics::{self, CsvHeaders, Interval, PerCategory, TableRow};
use crate::domain::validation::Problems;
use crate::domain::vocabulary::{Category, Lang, ProductType};

// ---------------------------------------------------------------- ranges

#[derive(Debug, Deserialize, IntoParams)]
pub struct RangeQuery {
    /// First received date, inclusive; when absent the earliest case's
    /// received date (today when there is none). Not after `to` (422).
    #[param(value_type = IsoDate, required = false)]
    pub from: Option<String>,
    /// Last received date, inclusive; today (desk calendar, JST) when absent.
    #[param(value_type = IsoDate, required = false)]
    pub to: Option<String>,
    /// `true` counts the cases closed as duplicates too; by default
    /// (`false`) they are left out. Withdrawn cases always count.
    #[param(value_type = bool, required = false)]
    pub include_duplicates: Option<String>,
}

/// `from` and `to` as a range (each date checked, then their order).
fn parse_range(from: Option<&str>, to: Option<&str>) -> Result<DateRange, ApiError> {
    let mut problems = Problems::default();
    let from = from.map(|f| problems.check("from", statistics::parse_date(f)));
    let to = to.map(|t| problems.check("to", statistics::parse_date(t)));
    // Absent is no date; refused (None) leaves the range unbuilt.
    let from = from.map_or(Some(None), |f| f.map(Some));
    let to = to.map_or(Some(None), |t| t.map(Some));
    let range = match (from, to) {
        (Some(from), Some(to)) => problems.check("from", DateRange::new(from, to)),
        _ => None,
    };
    Ok(problems.finish(|| range)?)
}

/// `include_duplicates`: `true` or `false` (absent: false), else a 422
/// naming it.
fn parse_duplicates(raw: Option<&str>) -> Result<Duplicates, ApiError> {
    let mut problems = Problems::default();
    let include = match raw {
        None | Some("false") => Some(false),
        Some("true") => Some(true),
        Some(_) => {
            problems.push("include_duplicates", "must be true or false");
            None
        }
    };
    Ok(problems.finish(|| include.map(Duplicates::included))?)
}

// ---------------------------------------------------------------- category table

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryRow {
    #[schema(value_type = ProductType)]
    pub product_type: String,
    /// Cases of this product type received in the range.
    #[schema(minimum = 0, example = 249)]
    pub cases: i64,
    /// Cases per category (a case may have several), every category present.
    #[schema(value_type = PerCategoryCounts)]
    pub counts: PerCategory,
    /// `counts / cases` in whole percent, rounded half up; 0 when no cases.
    #[schema(value_type = PerCategoryPercents)]
    pub percents: PerCategory,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryTotal {
    #[schema(minimum = 0, example = 1038)]
    pub cases: i64,
    #[schema(value_type = PerCategoryCounts)]
    pub counts: PerCategory,
    #[schema(value_type = PerCategoryPercents)]
    pub percents: PerCategory,
}

/// The published category table.
#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryTableResponse {
    #[schema(format = Date, example = "2018-02-05")]
    pub from: String,
    #[schema(format = Date, example = "2022-12-31")]
    pub to: String,
    /// Category codes in column order.
    #[schema(value_type = Vec<Category>)]
    pub categories: Vec<String>,
    /// One row per product type: drug, medical_device, regenerative, other.
    pub rows: Vec<CategoryRow>,
    pub total: CategoryTotal,
}

fn table_response(report: CategoryReport) -> CategoryTableResponse {
    let CategoryReport { from, to, table } = report;
    let row = |r: TableRow| CategoryRow {
        product_type: r.product_type.map_or("total", |p| p.as_str()).to_owned(),
        cases: r.cases,
        counts: r.counts,
        percents: r.percents,
    };
    CategoryTableResponse {
        from: from.to_string(),
        to: to.to_string(),
        categories: Category::ALL
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
        rows: table.rows.into_iter().map(row).collect(),
        total: CategoryTotal {
            cases: table.total.cases,
            counts: table.total.counts,
            percents: table.total.percents,
        },
    }
}

/// Cases per product type and category for an inclusive range of received
/// dates (multiple categories per case; percent of the product's cases).
#[utoipa::path(
    tag = "statistics",
    security(("bearer" = [])),
    params(RangeQuery),
    responses(
        (status = 200, body = CategoryTableResponse),
        (status = 403, description = "applicants and experts"),
        (status = 422, description = "a bad date or include_duplicates, or from after to"),
    )
)]
#[get("/api/v1/stats/categories")]
pub async fn categories(
    state: web::Data<AppState>,
    caller: AuthUser,
    query: web::Query<RangeQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(desk::READERS)?;
    let range = parse_range(query.from.as_deref(), query.to.as_deref())?;
    let duplicates = parse_duplicates(query.include_duplicates.as_deref())?;
    let report = desk::category_table_with(&state.desk, caller, range, duplicates).await?;
    Ok(HttpResponse::Ok().json(table_response(report)))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CsvQuery {
    /// As for the JSON table.
    #[param(value_type = IsoDate, required = false)]
    pub from: Option<String>,
    /// As for the JSON table.
    #[param(value_type = IsoDate, required = false)]
    pub to: Option<String>,
    /// `ja` or `en` for labelled headers and product names; absent: API
    /// codes (`regulatory`, `medical_device`).
    #[param(value_type = Lang, required = false)]
    pub lang: Option<String>,
    /// `true` counts the cases closed as duplicates too; by default
    /// (`false`) they are left out. Withdrawn cases always count.
    #[param(value_type = bool, required = false)]
    pub include_duplicates: Option<String>,
}

/// The category table as CSV for Excel: UTF-8 with BOM, CRLF, a count and a
/// percent column per category, the total row last.
#[utoipa::path(
    tag = "statistics",
    security(("bearer" = [])),
    params(CsvQuery),
    responses(
        (status = 200, description = "UTF-8 with a BOM, CRLF line ends, as an attachment", content_type = "text/csv; charset=utf-8", body = String,
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"medesk-categories-FROM_TO.csv\"`"))),
        (status = 403, description = "applicants and experts"),
        (status = 422, description = "a bad date, language or include_duplicates, or from after to"),
    )
)]
#[get("/api/v1/stats/categories.csv")]
pub async fn categories_csv(
    state: web::Data<AppState>,
    caller: AuthUser,
    query: web::Query<CsvQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(desk::READERS)?;
    let headers = csv_headers(query.lang.as_deref())?;
    let range = parse_range(query.from.as_deref(), query.to.as_deref())?;
    let duplicates = parse_duplicates(query.include_duplicates.as_deref())?;
    let CategoryReport { from, to, table } =
        desk::category_table_with(&state.desk, caller, range, duplicates).await?;
    let file_name = format!("medesk-categories-{from}_{to}.csv");
    Ok(csv_attachment(
        &file_name,
        statistics::category_csv(&table, headers),
    ))
}

/// The headings a CSV asks for with `lang`: codes, or labels in `ja` or
/// `en`. Checked first, alone (as the API always did).
fn csv_headers(lang: Option<&str>) -> Result<CsvHeaders, ApiError> {
    let mut problems = Problems::default();
    let headers = match lang {
        None => Some(CsvHeaders::Codes),
        Some(lang) => problems
            .check("lang", lang.parse::<Lang>().map_err(|_| "must be ja or en"))
            .map(CsvHeaders::Labels),
    };
    Ok(problems.finish(|| headers)?)
}

/// A CSV for Excel as a download named `file_name`.
fn csv_attachment(file_name: &str, body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file_name}\""),
        ))
        .body(body)
}

// ---------------------------------------------------------------- trend

#[derive(Debug, Deserialize, IntoParams)]
pub struct TrendQuery {
    /// `month` when absent.
    #[param(value_type = TrendInterval, required = false)]
    pub interval: Option<String>,
    /// As for the category table; at most 1,200 periods in all (422).
    #[param(value_type = IsoDate, required = false)]
    pub from: Option<String>,
    /// As for the category table.
    #[param(value_type = IsoDate, required = false)]
    pub to: Option<String>,
    /// `true` counts the cases closed as duplicates too; by default
    /// (`false`) they are left out. Withdrawn cases always count.
    #[param(value_type = bool, required = false)]
    pub include_duplicates: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrendItem {
    /// `2018-02` (month) or `2018` (year).
    pub period: String,
    /// Cases received in the period per product type, every type present.
    #[schema(value_type = PerProductType)]
    pub cases: serde_json::Map<String, serde_json::Value>,
    #[schema(minimum = 0)]
    pub total: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrendResponse {
    #[schema(value_type = TrendInterval)]
    pub interval: Interval,
    #[schema(format = Date)]
    pub from: String,
    #[schema(format = Date)]
    pub to: String,
    /// Product type codes in row order.
    #[schema(value_type = Vec<ProductType>)]
    pub product_types: Vec<String>,
    /// Every period of the range, oldest first, empty ones with zeros.
    pub items: Vec<TrendItem>,
}

/// Cases received per month or year, by product type (counted like the
/// category table: the confirmed product type once triaged).
#[utoipa::path(
    tag = "statistics",
    security(("bearer" = [])),
    params(TrendQuery),
    responses(
        (status = 200, body = TrendResponse),
        (status = 403, description = "applicants and experts"),
        (status = 422, description = "a bad date, interval or include_duplicates, from after to, or too many periods"),
    )
)]
#[get("/api/v1/stats/trend")]
pub async fn trend(
    state: web::Data<AppState>,
    caller: AuthUser,
    query: web::Query<TrendQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(desk::READERS)?;
    // The interval is checked first, alone (as the API always did).
    let mut problems = Problems::default();
    let interval = match query.interval.as_deref() {
        None => Some(Interval::Month),
        Some(raw) => problems.check("interval", raw.parse::<Interval>()),
    };
    let interval = problems.finish(|| interval)?;
    let range = parse_range(query.from.as_deref(), query.to.as_deref())?;
    let duplicates = parse_duplicates(query.include_duplicates.as_deref())?;
    let query = desk::TrendQuery {
        interval,
        range,
        duplicates,
    };
    let trend = desk::trend(&state.desk, caller, query).await?;
    let items = trend
        .points
        .into_iter()
        .map(|point| TrendItem {
            total: point.total(),
            cases: ProductType::ALL
                .iter()
                .zip(point.cases)
                .map(|(p, n)| (p.as_str().to_owned(), n.into()))
                .collect(),
            period: point.period,
        })
        .collect();
    Ok(HttpResponse::Ok().json(TrendResponse {
        interval: trend.interval,
        from: trend.from.to_string(),
        to: trend.to.to_string(),
        product_types: ProductType::ALL
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect(),
        items,
    }))
}

// ---------------------------------------------------------------- pipeline

#[derive(Debug, Serialize, ToSchema)]
pub struct Median {
    /// Cases the median is taken over.
    #[schema(minimum = 0)]
    pub cases: i64,
    /// Median duration in seconds; null when no case qualifies.
    #[schema(required)]
    pub median_seconds: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OverdueTriage {
    /// Untriaged cases (submitted, or claimed but not triaged) whose triage
    /// was due `business_days` business days after receipt and is past due.
    #[schema(minimum = 0)]
    pub cases: i64,
    #[schema(minimum = 0)]
    pub business_days: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PipelineResponse {
    /// Today on the desk calendar (JST): overdue is counted as of this day.
    #[schema(format = Date)]
    pub as_of: String,
    /// The received-date range of the medians.
    #[schema(format = Date)]
    pub from: String,
    #[schema(format = Date)]
    pub to: String,
    /// Open cases now, per status (every open status present).
    #[schema(value_type = OpenPerStatus)]
    pub open: serde_json::Map<String, serde_json::Value>,
    #[schema(minimum = 0)]
    pub open_total: i64,
    /// Received → triaged, over triaged cases received in the range.
    pub time_to_triage: Median,
    /// Received → closed, over cases received in the range that were closed
    /// in medesk (imported records have no close time).
    pub time_to_close: Median,
    pub overdue_triage: OverdueTriage,
}

/// Open cases by state, median time to triage and to close, overdue triage.
#[utoipa::path(
    tag = "statistics",
    security(("bearer" = [])),
    params(RangeQuery),
    responses(
        (status = 200, body = PipelineResponse),
        (status = 403, description = "applicants and experts"),
        (status = 422, description = "a bad date or include_duplicates, or from after to"),
    )
)]
#[get("/api/v1/stats/pipeline")]
pub async fn pipeline(
    state: web::Data<AppState>,
    caller: AuthUser,
    query: web::Query<RangeQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(desk::READERS)?;
    let range = parse_range(query.from.as_deref(), query.to.as_deref())?;
    let duplicates = parse_duplicates(query.include_duplicates.as_deref())?;
    let query = PipelineQuery {
        range,
        duplicates,
        triage_due_days: state.config.triage_reminder_days,
        calendar: state.desk.calendar().await?,
    };
    let pipeline = desk::pipeline(&state.desk, caller, query).await?;
    let median = |span: MedianSpan| Median {
        cases: span.cases,
        median_seconds: span.median_seconds,
    };
    Ok(HttpResponse::Ok().json(PipelineResponse {
        as_of: pipeline.as_of.to_string(),
        from: pipeline.from.to_string(),
        to: pipeline.to.to_string(),
        open_total: pipeline.open_total(),
        open: pipeline
            .open
            .iter()
            .map(|(status, n)| (status.as_str().to_owned(), (*n).into()))
            .collect(),
        time_to_triage: median(pipeline.time_to_triage),
        time_to_close: median(pipeline.time_to_close),
        overdue_triage: OverdueTriage {
            cases: pipeline.overdue_triage,
            business_days: pipeline.triage_due_days,
        },
    }))
}

// ---------------------------------------------------------------- experts

#[derive(Debug, Serialize, ToSchema)]
pub struct ExpertUtilisation {
    pub expert_id: i64,
    pub name: String,
    /// Active assignments the expert takes at most.
    #[schema(minimum = 1, maximum = 50)]
    pub capacity: i32,
    /// Every assignment ever proposed.
    #[schema(minimum = 0)]
    pub assignments: i64,
    /// Accepted at some point (later completed or withdrawn included).
    #[schema(minimum = 0)]
    pub accepted: i64,
    #[schema(minimum = 0)]
    pub declined: i64,
    /// `accepted / (accepted + declined)` in whole percent, rounded half up;
    /// null before the expert answered any proposal.
    #[schema(required, minimum = 0, maximum = 100)]
    pub acceptance_rate: Option<i64>,
    /// Proposed or accepted now.
    #[schema(minimum = 0)]
    pub active_load: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExpertUtilisationList {
    pub items: Vec<ExpertUtilisation>,
}

/// Per expert: assignments, acceptance rate and current load.
#[utoipa::path(
    tag = "statistics",
    security(("bearer" = [])),
    responses(
        (status = 200, body = ExpertUtilisationList),
        (status = 403, description = "applicants and experts"),
    )
)]
#[get("/api/v1/stats/experts")]
pub async fn experts(
    state: web::Data<AppState>,
    caller: AuthUser,
) -> Result<HttpResponse, ApiError> {
    caller.require(desk::READERS)?;
    let items = desk::expert_utilisation(&state.desk, caller)
        .await?
        .into_iter()
        .map(|expert| ExpertUtilisation {
            expert_id: expert.load.expert_id,
            name: expert.load.name,
            capacity: expert.load.capacity,
            assignments: expert.load.assignments,
            accepted: expert.load.accepted,
            declined: expert.load.declined,
            acceptance_rate: expert.acceptance_rate,
            active_load: expert.load.active,
        })
        .collect();
    Ok(HttpResponse::Ok().json(ExpertUtilisationList { items }))
}

// ---------------------------------------------------------------- open hours

#[derive(Debug, Deserialize, IntoParams)]
pub struct OpenHoursQuery {
    /// First slot date (JST), inclusive; when absent the first live
    /// booking's slot date (today when there is none). Not after `to` (422).
    #[param(value_type = IsoDate, required = false)]
    pub from: Option<String>,
    /// Last slot date (JST), inclusive; when absent the last live booking's
    /// slot date, or today when that is later.
    #[param(value_type = IsoDate, required = false)]
    pub to: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct OpenHoursCsvQuery {
    /// As for the JSON answer.
    #[param(value_type = IsoDate, required = false)]
    pub from: Option<String>,
    /// As for the JSON answer.
    #[param(value_type = IsoDate, required = false)]
    pub to: Option<String>,
    /// `ja` or `en` for labelled headers and category names; absent: API
    /// codes (`regulatory`, `none`).
    #[param(value_type = Lang, required = false)]
    pub lang: Option<String>,
}

/// Live bookings of one month and category, or of one category over the
/// range.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenHoursCounts {
    /// Live (not cancelled) bookings.
    #[schema(minimum = 0)]
    pub bookings: i64,
    /// Marked attended by the desk.
    #[schema(minimum = 0)]
    pub attended: i64,
    /// Marked no-show by the desk.
    #[schema(minimum = 0)]
    pub no_show: i64,
    /// Not marked yet.
    #[schema(minimum = 0)]
    pub unmarked: i64,
    /// Linked to a case (turned into one by the desk, or booked for one).
    #[schema(minimum = 0)]
    pub cases: i64,
}

impl From<open_hours_stats::OpenHoursCounts> for OpenHoursCounts {
    fn from(c: open_hours_stats::OpenHoursCounts) -> Self {
        OpenHoursCounts {
            bookings: c.bookings,
            attended: c.attended,
            no_show: c.no_show,
            unmarked: c.unmarked,
            cases: c.cases,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OpenHoursMonth {
    /// `YYYY-MM` of the slot's start in JST.
    #[schema(example = "2026-12")]
    pub month: String,
    /// A category code, or `none` for bookings that name no category.
    #[schema(example = "regulatory")]
    pub category: String,
    #[serde(flatten)]
    pub counts: OpenHoursCounts,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OpenHoursCategoryTotal {
    /// A category code, or `none`.
    pub category: String,
    #[serde(flatten)]
    pub counts: OpenHoursCounts,
}

/// Open Hours bookings by month and category.
#[derive(Debug, Serialize, ToSchema)]
pub struct OpenHoursStatsResponse {
    #[schema(format = Date, example = "2026-12-01")]
    pub from: String,
    #[schema(format = Date, example = "2027-03-31")]
    pub to: String,
    /// Months ascending, then categories in PRODUCT.md's order and `none`
    /// last; only the cells with a booking. A booking naming two
    /// categories counts in both.
    pub months: Vec<OpenHoursMonth>,
    /// Per category over the range, every category and `none` present.
    pub totals: Vec<OpenHoursCategoryTotal>,
    /// Every booking of the range once, whatever its categories.
    pub total: OpenHoursCounts,
}

/// Open Hours bookings, attendance and conversion to cases per month (of
/// the slot, JST) and category; cancelled bookings are not counted.
#[utoipa::path(
    tag = "statistics",
    security(("bearer" = [])),
    params(OpenHoursQuery),
    responses(
        (status = 200, body = OpenHoursStatsResponse),
        (status = 403, description = "applicants and experts"),
        (status = 422, description = "a bad date, or from after to"),
    )
)]
#[get("/api/v1/stats/open-hours")]
pub async fn open_hours(
    state: web::Data<AppState>,
    caller: AuthUser,
    query: web::Query<OpenHoursQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(desk::READERS)?;
    let range = parse_range(query.from.as_deref(), query.to.as_deref())?;
    let OpenHoursReport { from, to, table } = desk::open_hours(&state.desk, caller, range).await?;
    Ok(HttpResponse::Ok().json(OpenHoursStatsResponse {
        from: from.to_string(),
        to: to.to_string(),
        months: table
            .months
            .into_iter()
            .map(|row| OpenHoursMonth {
                month: row.month,
                category: row.bucket.as_str().to_owned(),
                counts: row.counts.into(),
            })
            .collect(),
        totals: table
            .totals
            .into_iter()
            .map(|(bucket, counts)| OpenHoursCategoryTotal {
                category: bucket.as_str().to_owned(),
                counts: counts.into(),
            })
            .collect(),
        total: table.total.into(),
    }))
}

/// The Open Hours statistics as CSV for Excel: UTF-8 with BOM, CRLF, one
/// line per month and category, then a `total` line per category and the
/// total of every booking (`total,all`).
#[utoipa::path(
    tag = "statistics",
    security(("bearer" = [])),
    params(OpenHoursCsvQuery),
    responses(
        (status = 200, description = "UTF-8 with a BOM, CRLF line ends, as an attachment", content_type = "text/csv; charset=utf-8", body = String,
            headers(("Content-Disposition" = String, description = "`attachment; filename=\"medesk-open-hours-FROM_TO.csv\"`"))),
        (status = 403, description = "applicants and experts"),
        (status = 422, description = "a bad date or language, or from after to"),
    )
)]
#[get("/api/v1/stats/open-hours.csv")]
pub async fn open_hours_csv(
    state: web::Data<AppState>,
    caller: AuthUser,
    query: web::Query<OpenHoursCsvQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(desk::READERS)?;
    let headers = csv_headers(query.lang.as_deref())?;
    let range = parse_range(query.from.as_deref(), query.to.as_deref())?;
    let OpenHoursReport { from, to, table } = desk::open_hours(&state.desk, caller, range).await?;
    let file_name = format!("medesk-open-hours-{from}_{to}.csv");
    Ok(csv_attachment(
        &file_name,
        open_hours_stats::open_hours_csv(&table, headers),
    ))
}

// ---------------------------------------------------------------- verification

/// Which rollups a cell belongs to: `all` (every case received) or
/// `duplicates` (the cases closed as duplicates, which the statistics
/// subtract unless they include duplicates).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RollupSet {
    All,
    Duplicates,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RollupDifference {
    pub rollups: RollupSet,
    /// A day `YYYY-MM-DD` or a month `YYYY-MM`.
    pub period: String,
    pub product_type: String,
    /// Null for the per-product case count.
    #[schema(required)]
    pub category: Option<String>,
    pub rollup: i64,
    pub recount: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RollupCheck {
    /// True when every daily and monthly rollup cell equals a recount from
    /// the cases.
    pub consistent: bool,
    /// Non-zero cells compared.
    #[schema(minimum = 0)]
    pub cells: usize,
    /// The first 100 differing cells.
    pub differences: Vec<RollupDifference>,
    /// Cases filed but not yet added to the rollups by the statistics fold
    /// (PostgreSQL folds them a few times a second; always 0 on SQLite).
    /// Every statistic counts them already; the check counts them with the
    /// rollups.
    #[schema(minimum = 0)]
    pub pending: i64,
}

/// Compares every daily and monthly rollup cell with a recount from the
/// cases (a full scan: an operator's check, not for dashboards).
#[utoipa::path(
    tag = "statistics",
    security(("bearer" = [])),
    responses(
        (status = 200, body = RollupCheck),
        (status = 403, description = "admins only"),
    )
)]
#[get("/api/v1/stats/verify")]
pub async fn verify(
    state: web::Data<AppState>,
    caller: AuthUser,
) -> Result<HttpResponse, ApiError> {
    caller.require(desk::AUDITORS)?;
    let check = desk::verify_rollups(&state.desk, caller).await?;
    Ok(HttpResponse::Ok().json(RollupCheck {
        consistent: check.consistent(),
        cells: check.cells,
        pending: check.pending,
        differences: check
            .differences
            .into_iter()
            .map(|d| {
                let (period, product_type, category) = d.cell;
                RollupDifference {
                    rollups: match d.set {
                        Rollup::All => RollupSet::All,
                        Rollup::Duplicates => RollupSet::Duplicates,
                    },
                    period,
                    product_type,
                    category,
                    rollup: d.rollup,
                    recount: d.recount,
                }
            })
            .collect(),
    }))
}
