//! The program managers' statistics: the category table (one result for
//! the JSON and the CSV answer), the trend, the pipeline, expert
//! utilisation, and the operators' check of the rollups against a recount.
//!
//! Aggregates only: no result here carries case text, case numbers or
//! applicants' names. What is counted and how (effective product type and
//! categories, half-up percentages, medians, overdue triage) is
//! `domain::statistics` (docs/statistics.md); the rollups that keep the
//! table fast are `db::stats`.

use std::collections::BTreeMap;

use chrono::NaiveDate;

use super::{Desk, DeskError};
use crate::clock;
use crate::db::AnyConnection;
use crate::db::stats::{self as store, Cell, ExpertLoad, Span};
use crate::domain::calendar::BusinessCalendar;
use crate::domain::case::desk_date;
use crate::domain::role::{Caller, Role};
use crate::domain::statistics::{self, CategoryTable, Interval, TrendPoint};
use crate::domain::vocabulary::CaseStatus;

/// Who may read statistics: managers (aggregates are their whole view),
/// and the desk staff.
pub const READERS: &[Role] = &[Role::Manager, Role::Supporter, Role::Admin];
/// Who may check the rollups against a recount (a full scan).
pub const AUDITORS: &[Role] = &[Role::Admin];
/// Differing cells a rollup check reports at most.
pub const MAX_DIFFERENCES: usize = 100;

// ---------------------------------------------------------------- ranges

/// An inclusive range of received dates as asked: either end may be left
/// to its default (`to` today on the desk calendar, `from` the earliest
/// received date, or today when there is no case). Never `from` after `to`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DateRange {
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
}

impl DateRange {
    /// Refuses `from` after `to` (the message is about `from`).
    pub fn new(from: Option<NaiveDate>, to: Option<NaiveDate>) -> Result<Self, String> {
        match (from, to) {
            (Some(from), Some(to)) if from > to => {
                Err(format!("must not be after to ({from} > {to})"))
            }
            _ => Ok(DateRange { from, to }),
        }
    }

    pub fn from(&self) -> Option<NaiveDate> {
        self.from
    }

    pub fn to(&self) -> Option<NaiveDate> {
        self.to
    }

    /// Fills in the defaults. A `from` after the default `to` (today) is
    /// refused here, where today is known.
    fn resolve(
        self,
        conn: &mut AnyConnection,
        today: NaiveDate,
    ) -> Result<(NaiveDate, NaiveDate), DeskError> {
        let to = self.to.unwrap_or(today);
        let from = match self.from {
            Some(from) if from > to => {
                return Err(DeskError::field(
                    "from",
                    format!("must not be after to ({from} > {to}; to defaults to today)"),
                ));
            }
            Some(from) => from,
            None => store::earliest_day(conn)?.unwrap_or(today).min(to),
        };
        Ok((from, to))
    }
}

fn today() -> NaiveDate {
    desk_date(clock::now_micros())
}

// ---------------------------------------------------------------- category table

/// The category table of a range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryReport {
    /// The range as resolved (defaults filled in).
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub table: CategoryTable,
}

/// Cases per product type and category received in a range, with half-up
/// percentages (summed from the rollups: milliseconds for any range).
pub async fn category_table(
    desk: &Desk,
    caller: Caller,
    range: DateRange,
) -> Result<CategoryReport, DeskError> {
    caller.require(READERS)?;
    let today = today();
    desk.read(move |conn| {
        let (from, to) = range.resolve(conn, today)?;
        let counts = store::category_counts(conn, &statistics::plan_range(from, to))?;
        Ok(CategoryReport {
            from,
            to,
            table: counts.table(),
        })
    })
    .await
}

// ---------------------------------------------------------------- trend

/// Cases received per month or year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrendQuery {
    pub interval: Interval,
    /// At most `statistics::MAX_TREND_PERIODS` periods once resolved.
    pub range: DateRange,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trend {
    pub interval: Interval,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Every period of the range, oldest first, empty ones with zeros.
    pub points: Vec<TrendPoint>,
}

/// Cases received per period by product type (counted like the category
/// table: the confirmed product type once triaged).
pub async fn trend(desk: &Desk, caller: Caller, query: TrendQuery) -> Result<Trend, DeskError> {
    caller.require(READERS)?;
    let today = today();
    let range = query.range;
    let (from, to, rows) = desk
        .read(move |conn| {
            let (from, to) = range.resolve(conn, today)?;
            let rows = store::cases_by_period(conn, &statistics::plan_range(from, to))?;
            Ok((from, to, rows))
        })
        .await?;
    let periods = query
        .interval
        .periods(from, to)
        .map_err(|e| DeskError::field("from", e))?;
    Ok(Trend {
        interval: query.interval,
        from,
        to,
        points: statistics::trend(&periods, query.interval, rows),
    })
}

// ---------------------------------------------------------------- pipeline

/// The pipeline as of today: the medians over cases received in `range`.
#[derive(Debug, Clone)]
pub struct PipelineQuery {
    pub range: DateRange,
    /// Business days after receipt by which a case is due for triage (the
    /// supporters' reminder's setting).
    pub triage_due_days: u32,
    /// The desk's business days (weekends and holidays are not).
    pub calendar: BusinessCalendar,
}

/// A median duration from receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MedianSpan {
    /// Cases the median is taken over.
    pub cases: i64,
    /// None when no case qualifies.
    pub median_seconds: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    /// Today on the desk calendar: overdue is counted as of this day.
    pub as_of: NaiveDate,
    /// The received-date range of the medians.
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Open cases now, per open status (every status but closed, in
    /// `CaseStatus::ALL` order, zeros included).
    pub open: Vec<(CaseStatus, i64)>,
    /// Received → triaged, over triaged cases received in the range.
    pub time_to_triage: MedianSpan,
    /// Received → closed, over cases received in the range that were closed
    /// in medesk (imported records have no close time).
    pub time_to_close: MedianSpan,
    /// Untriaged cases past their triage due day.
    pub overdue_triage: i64,
    /// The due days `overdue_triage` was counted with.
    pub triage_due_days: u32,
}

impl Pipeline {
    pub fn open_total(&self) -> i64 {
        self.open.iter().map(|(_, n)| n).sum()
    }
}

/// Open cases by state, median time to triage and to close, overdue triage.
pub async fn pipeline(
    desk: &Desk,
    caller: Caller,
    query: PipelineQuery,
) -> Result<Pipeline, DeskError> {
    caller.require(READERS)?;
    let today = today();
    let PipelineQuery {
        range,
        triage_due_days,
        calendar,
    } = query;
    let cutoff = statistics::overdue_cutoff(&calendar, today, triage_due_days).to_string();
    desk.read(move |conn| {
        let (from, to) = range.resolve(conn, today)?;
        let (from_s, to_s) = (from.to_string(), to.to_string());
        let by_status = store::open_by_status(conn)?;
        let mut median = |span| -> Result<MedianSpan, DeskError> {
            let (cases, micros) = store::median_span(conn, span, &from_s, &to_s)?;
            Ok(MedianSpan {
                cases,
                median_seconds: micros.map(|m| m.div_euclid(1_000_000)),
            })
        };
        let time_to_triage = median(Span::ToTriage)?;
        let time_to_close = median(Span::ToClose)?;
        let overdue_triage = store::overdue_triage(conn, &cutoff)?;
        let open = CaseStatus::ALL
            .into_iter()
            .filter(|s| *s != CaseStatus::Closed)
            .map(|s| {
                let n = by_status
                    .iter()
                    .find(|(status, _)| *status == s)
                    .map_or(0, |(_, n)| *n);
                (s, n)
            })
            .collect();
        Ok(Pipeline {
            as_of: today,
            from,
            to,
            open,
            time_to_triage,
            time_to_close,
            overdue_triage,
            triage_due_days,
        })
    })
    .await
}

// ---------------------------------------------------------------- experts

/// One expert's assignments and how they answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpertUtilisation {
    pub load: ExpertLoad,
    /// `accepted / (accepted + declined)` in whole percent, rounded half
    /// up; None before the expert answered any proposal.
    pub acceptance_rate: Option<i64>,
}

/// Per registered expert, by id: assignments, acceptance rate, current load.
pub async fn expert_utilisation(
    desk: &Desk,
    caller: Caller,
) -> Result<Vec<ExpertUtilisation>, DeskError> {
    caller.require(READERS)?;
    let loads = desk.read(|conn| Ok(store::expert_loads(conn)?)).await?;
    Ok(loads
        .into_iter()
        .map(|load| {
            let answered = load.accepted + load.declined;
            ExpertUtilisation {
                acceptance_rate: (answered > 0)
                    .then(|| statistics::percent_half_up(load.accepted, answered)),
                load,
            }
        })
        .collect())
}

// ---------------------------------------------------------------- verification

/// A rollup cell that differs from the recount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupDifference {
    /// `(period, product_type, category)`: a day `YYYY-MM-DD` or a month
    /// `YYYY-MM`; no category for the per-product case count.
    pub cell: Cell,
    pub rollup: i64,
    pub recount: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupCheck {
    /// Non-zero cells compared (in the rollups, the recount or both).
    pub cells: usize,
    /// Cells that differ.
    pub differing: usize,
    /// The first [`MAX_DIFFERENCES`] differing cells, in cell order.
    pub differences: Vec<RollupDifference>,
}

impl RollupCheck {
    pub fn consistent(&self) -> bool {
        self.differing == 0
    }
}

/// Compares every daily and monthly rollup cell with a recount from the
/// cases (a full scan: an operator's check, not for dashboards).
pub async fn verify_rollups(desk: &Desk, caller: Caller) -> Result<RollupCheck, DeskError> {
    caller.require(AUDITORS)?;
    let (rollups, recount) = desk
        .read(|conn| Ok((store::rollup_cells(conn)?, store::recount_cells(conn)?)))
        .await?;
    let check = compare(&rollups, &recount);
    if !check.consistent() {
        tracing::error!(
            cells = check.differing,
            "statistics rollups differ from a recount"
        );
    }
    Ok(check)
}

fn compare(rollups: &BTreeMap<Cell, i64>, recount: &BTreeMap<Cell, i64>) -> RollupCheck {
    let mut keys: Vec<&Cell> = rollups.keys().chain(recount.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut differing = 0;
    let mut differences = Vec::new();
    for key in &keys {
        let rollup = rollups.get(*key).copied().unwrap_or(0);
        let recount = recount.get(*key).copied().unwrap_or(0);
        if rollup != recount {
            differing += 1;
            if differences.len() < MAX_DIFFERENCES {
                differences.push(RollupDifference {
                    cell: (*key).clone(),
                    rollup,
                    recount,
                });
            }
        }
    }
    RollupCheck {
        cells: keys.len(),
        differing,
        differences,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_range_never_starts_after_it_ends() {
        let range = DateRange::new(Some(date("2020-01-02")), Some(date("2020-01-02"))).unwrap();
        assert_eq!(range.from(), Some(date("2020-01-02")));
        assert_eq!(
            DateRange::new(Some(date("2020-01-03")), Some(date("2020-01-02"))),
            Err("must not be after to (2020-01-03 > 2020-01-02)".to_owned())
        );
        assert!(DateRange::new(Some(date("2999-01-01")), None).is_ok());
    }

    #[test]
    fn the_check_counts_every_differing_cell_and_shows_the_first_hundred() {
        let cell = |day: u32, category: Option<&str>| {
            (
                format!("2020-01-{day:02}"),
                "drug".to_owned(),
                category.map(str::to_owned),
            )
        };
        let mut rollups = BTreeMap::new();
        let mut recount = BTreeMap::new();
        rollups.insert(cell(1, None), 2);
        recount.insert(cell(1, None), 2);
        rollups.insert(cell(2, Some("ip")), 1);
        recount.insert(cell(3, Some("ip")), 1);
        let check = compare(&rollups, &recount);
        assert_eq!((check.cells, check.differing), (3, 2));
        assert!(!check.consistent());
        assert_eq!(
            check.differences[0],
            RollupDifference {
                cell: cell(2, Some("ip")),
                rollup: 1,
                recount: 0
            }
        );

        let many: BTreeMap<Cell, i64> = (1..=28)
            .flat_map(|day| ["a", "b", "c", "d", "e"].map(|c| (cell(day, Some(c)), 1)))
            .collect();
        let check = compare(&many, &BTreeMap::new());
        assert_eq!((check.cells, check.differing), (140, 140));
        assert_eq!(check.differences.len(), MAX_DIFFERENCES);
        assert!(compare(&many, &many).consistent());
    }
}
