//! Statistics for program managers: the category table (JSON and CSV), the
//! trend, the pipeline and expert utilisation. Aggregates only: no answer
//! here carries case text, case numbers or applicants' names.

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::extract::AuthUser;
use super::problem::ApiError;
use super::schema::{
    IsoDate, OpenPerStatus, PerCategoryCounts, PerCategoryPercents, PerProductType, TrendInterval,
};
use crate::clock;
use crate::db::{AnyConnection, stats as store};
use crate::domain::calendar::BusinessCalendar;
use crate::domain::case::{Problems, desk_date};
use crate::domain::role::Role;
use crate::domain::statistics::{
    self, CategoryCounts, CategoryTable, CsvHeaders, Interval, PerCategory, TableRow,
};
use crate::domain::vocabulary::{CaseStatus, Category, Lang, ProductType};

/// Who may read statistics: managers (aggregates are their whole view),
/// and the desk staff.
const READERS: &[Role] = &[Role::Manager, Role::Supporter, Role::Admin];

fn internal(error: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("statistics: {error}"))
}

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
}

/// A range as asked: parsed, not yet defaulted.
#[derive(Debug, Clone, Copy)]
struct AskedRange {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

fn parse_range(from: Option<&str>, to: Option<&str>) -> Result<AskedRange, ApiError> {
    let mut problems = Problems::default();
    let from = from.and_then(|f| problems.check("from", statistics::parse_date(f)));
    let to = to.and_then(|t| problems.check("to", statistics::parse_date(t)));
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        problems.push("from", format!("must not be after to ({from} > {to})"));
    }
    problems.into_result()?;
    Ok(AskedRange { from, to })
}

/// Fills in the defaults: `to` today, `from` the earliest received date.
fn resolve_range(
    conn: &mut AnyConnection,
    asked: AskedRange,
    today: NaiveDate,
) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let to = asked.to.unwrap_or(today);
    let from = match asked.from {
        Some(from) if from > to => {
            return Err(ApiError::field(
                "from",
                format!("must not be after to ({from} > {to}; to defaults to today)"),
            ));
        }
        Some(from) => from,
        None => store::earliest_day(conn)?
            .and_then(|day| statistics::parse_date(&day).ok())
            .unwrap_or(today)
            .min(to),
    };
    Ok((from, to))
}

fn today() -> NaiveDate {
    desk_date(clock::now_micros())
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

fn table_response(from: NaiveDate, to: NaiveDate, table: CategoryTable) -> CategoryTableResponse {
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

/// The range and its table, from the daily rollups.
async fn category_table(
    state: &AppState,
    asked: AskedRange,
) -> Result<(NaiveDate, NaiveDate, CategoryTable), ApiError> {
    let today = today();
    state
        .db
        .read(move |conn| {
            let (from, to) = resolve_range(conn, asked, today)?;
            let rows = store::category_counts(conn, &statistics::plan_range(from, to))?;
            let counts =
                CategoryCounts::from_rows(rows.cases, rows.categories).map_err(internal)?;
            Ok::<_, ApiError>((from, to, counts.table()))
        })
        .await
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
        (status = 422, description = "a bad date, or from after to"),
    )
)]
#[get("/api/v1/stats/categories")]
pub async fn categories(
    state: web::Data<AppState>,
    caller: AuthUser,
    query: web::Query<RangeQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let asked = parse_range(query.from.as_deref(), query.to.as_deref())?;
    let (from, to, table) = category_table(&state, asked).await?;
    Ok(HttpResponse::Ok().json(table_response(from, to, table)))
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
        (status = 422, description = "a bad date or language, or from after to"),
    )
)]
#[get("/api/v1/stats/categories.csv")]
pub async fn categories_csv(
    state: web::Data<AppState>,
    caller: AuthUser,
    query: web::Query<CsvQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let headers = match query.lang.as_deref() {
        None => CsvHeaders::Codes,
        Some(lang) => CsvHeaders::Labels(
            lang.parse::<Lang>()
                .map_err(|_| ApiError::field("lang", "must be ja or en"))?,
        ),
    };
    let asked = parse_range(query.from.as_deref(), query.to.as_deref())?;
    let (from, to, table) = category_table(&state, asked).await?;
    let file_name = format!("medesk-categories-{from}_{to}.csv");
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{file_name}\""),
        ))
        .body(statistics::category_csv(&table, headers)))
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
        (status = 422, description = "a bad date or interval, from after to, or too many periods"),
    )
)]
#[get("/api/v1/stats/trend")]
pub async fn trend(
    state: web::Data<AppState>,
    caller: AuthUser,
    query: web::Query<TrendQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let interval = match query.interval.as_deref() {
        None => Interval::Month,
        Some(raw) => raw.parse().map_err(|e| ApiError::field("interval", e))?,
    };
    let asked = parse_range(query.from.as_deref(), query.to.as_deref())?;
    let today = today();
    let (from, to, rows) = state
        .db
        .read(move |conn| {
            let (from, to) = resolve_range(conn, asked, today)?;
            let rows = store::cases_by_period(conn, &statistics::plan_range(from, to))?;
            Ok::<_, ApiError>((from, to, rows))
        })
        .await?;
    let periods = interval
        .periods(from, to)
        .map_err(|e| ApiError::field("from", e))?;
    let mut parsed = Vec::with_capacity(rows.len());
    for (period, product_type, cases) in rows {
        // A whole month lies in one bucket: its first day stands for it.
        let day = statistics::period_start(&period).map_err(internal)?;
        let product_type: ProductType = product_type.parse().map_err(internal)?;
        parsed.push((day, product_type, cases));
    }
    let items = statistics::trend(&periods, interval, parsed)
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
        interval,
        from: from.to_string(),
        to: to.to_string(),
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
        (status = 422, description = "a bad date, or from after to"),
    )
)]
#[get("/api/v1/stats/pipeline")]
pub async fn pipeline(
    state: web::Data<AppState>,
    caller: AuthUser,
    query: web::Query<RangeQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let asked = parse_range(query.from.as_deref(), query.to.as_deref())?;
    let today = today();
    let due_days = state.config.triage_reminder_days;
    let calendar = BusinessCalendar::new(state.config.holidays.clone());
    let cutoff = statistics::overdue_cutoff(&calendar, today, due_days).to_string();
    let response = state
        .db
        .read(move |conn| {
            let (from, to) = resolve_range(conn, asked, today)?;
            let (from_s, to_s) = (from.to_string(), to.to_string());
            let by_status = store::open_by_status(conn)?;
            let median = |(cases, micros): (i64, Option<i64>)| Median {
                cases,
                median_seconds: micros.map(|m| m.div_euclid(1_000_000)),
            };
            let time_to_triage = median(store::median_span(
                conn,
                store::Span::ToTriage,
                &from_s,
                &to_s,
            )?);
            let time_to_close = median(store::median_span(
                conn,
                store::Span::ToClose,
                &from_s,
                &to_s,
            )?);
            let overdue = store::overdue_triage(conn, &cutoff)?;
            let open: serde_json::Map<String, serde_json::Value> = CaseStatus::ALL
                .iter()
                .filter(|s| **s != CaseStatus::Closed)
                .map(|s| {
                    let n = by_status
                        .iter()
                        .find(|(status, _)| status == s.as_str())
                        .map_or(0, |(_, n)| *n);
                    (s.as_str().to_owned(), n.into())
                })
                .collect();
            Ok::<_, ApiError>(PipelineResponse {
                as_of: today.to_string(),
                from: from_s,
                to: to_s,
                open_total: by_status.iter().map(|(_, n)| n).sum(),
                open,
                time_to_triage,
                time_to_close,
                overdue_triage: OverdueTriage {
                    cases: overdue,
                    business_days: due_days,
                },
            })
        })
        .await?;
    Ok(HttpResponse::Ok().json(response))
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
    caller.require(READERS)?;
    let loads = state.db.read(store::expert_loads).await?;
    let items = loads
        .into_iter()
        .map(|load| {
            let answered = load.accepted + load.declined;
            ExpertUtilisation {
                expert_id: load.expert_id,
                name: load.name,
                capacity: load.capacity,
                assignments: load.assignments,
                accepted: load.accepted,
                declined: load.declined,
                acceptance_rate: (answered > 0)
                    .then(|| statistics::percent_half_up(load.accepted, answered)),
                active_load: load.active,
            }
        })
        .collect();
    Ok(HttpResponse::Ok().json(ExpertUtilisationList { items }))
}

// ---------------------------------------------------------------- verification

#[derive(Debug, Serialize, ToSchema)]
pub struct RollupDifference {
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
    caller.require(&[Role::Admin])?;
    let (rollups, recount) = state
        .db
        .read(|conn| Ok::<_, ApiError>((store::rollup_cells(conn)?, store::recount_cells(conn)?)))
        .await?;
    let mut keys: Vec<&store::Cell> = rollups.keys().chain(recount.keys()).collect();
    keys.sort();
    keys.dedup();
    let differences: Vec<RollupDifference> = keys
        .iter()
        .filter_map(|key| {
            let (rollup, recount) = (
                rollups.get(*key).copied().unwrap_or(0),
                recount.get(*key).copied().unwrap_or(0),
            );
            (rollup != recount).then(|| RollupDifference {
                period: key.0.clone(),
                product_type: key.1.clone(),
                category: key.2.clone(),
                rollup,
                recount,
            })
        })
        .collect();
    if !differences.is_empty() {
        tracing::error!(
            cells = differences.len(),
            "statistics rollups differ from a recount"
        );
    }
    Ok(HttpResponse::Ok().json(RollupCheck {
        consistent: differences.is_empty(),
        cells: keys.len(),
        differences: differences.into_iter().take(100).collect(),
    }))
}
