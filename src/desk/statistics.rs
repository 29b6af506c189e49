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

use chrono::{NaiveDate, TimeZone};

use super::{Desk, DeskError};
use crate::clock;
use crate::db::AnyConnection;
use crate::db::open_hours as open_hours_store;
pub use crate::db::stats::Rollup;
use crate::db::stats::{self as store, Cell, ExpertLoad, Span};
use crate::domain::calendar::BusinessCalendar;
use crate::domain::case::{desk_date, desk_offset};
use crate::domain::open_hours_stats::{self, BookingFacts, OpenHoursTable};
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

// ---------------------------------------------------------------- duplicates

/// Whether cases closed as duplicates count. By default they do not: a
/// duplicate is the same request received twice, and the statistics count
/// requests. Withdrawn cases always count (the published table counted
/// every case received).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Duplicates {
    #[default]
    Excluded,
    Included,
}

impl Duplicates {
    pub fn included(include: bool) -> Self {
        if include {
            Duplicates::Included
        } else {
            Duplicates::Excluded
        }
    }
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
/// Duplicates are left out ([`category_table_with`] may include them).
pub async fn category_table(
    desk: &Desk,
    caller: Caller,
    range: DateRange,
) -> Result<CategoryReport, DeskError> {
    category_table_with(desk, caller, range, Duplicates::Excluded).await
}

/// [`category_table`], with or without the cases closed as duplicates.
///
/// The rollups count every case received; without duplicates, the
/// duplicates' rollups (the same cells, counted for the cases closed as
/// duplicates) are subtracted cell by cell.
pub async fn category_table_with(
    desk: &Desk,
    caller: Caller,
    range: DateRange,
    duplicates: Duplicates,
) -> Result<CategoryReport, DeskError> {
    caller.require(READERS)?;
    let today = today();
    desk.read(move |conn| {
        store::consistent_read(conn, |conn| {
            let (from, to) = range.resolve(conn, today)?;
            let plan = statistics::plan_range(from, to);
            let mut counts = store::category_counts(conn, &plan)?;
            if duplicates == Duplicates::Excluded {
                counts.subtract(&store::category_counts_of(conn, Rollup::Duplicates, &plan)?);
            }
            Ok(CategoryReport {
                from,
                to,
                table: counts.table(),
            })
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
    pub duplicates: Duplicates,
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
    let duplicates = query.duplicates;
    let (from, to, rows) = desk
        .read(move |conn| {
            store::consistent_read(conn, |conn| {
                let (from, to) = range.resolve(conn, today)?;
                let plan = statistics::plan_range(from, to);
                let mut rows = store::cases_by_period(conn, &plan)?;
                if duplicates == Duplicates::Excluded {
                    // Subtracted in the buckets they fall in.
                    let counted = store::cases_by_period_of(conn, Rollup::Duplicates, &plan)?;
                    rows.extend(counted.into_iter().map(|(day, p, n)| (day, p, -n)));
                }
                Ok((from, to, rows))
            })
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
    /// Whether the medians take cases closed as duplicates (open cases and
    /// overdue triage never hold any: a duplicate is closed).
    pub duplicates: Duplicates,
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
        duplicates,
    } = query;
    let with_duplicates = duplicates == Duplicates::Included;
    let cutoff = statistics::overdue_cutoff(&calendar, today, triage_due_days).to_string();
    desk.read(move |conn| {
        let (from, to) = range.resolve(conn, today)?;
        let (from_s, to_s) = (from.to_string(), to.to_string());
        let by_status = store::open_by_status(conn)?;
        let mut median = |span| -> Result<MedianSpan, DeskError> {
            let (cases, micros) = store::median_span(conn, span, &from_s, &to_s, with_duplicates)?;
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

// ---------------------------------------------------------------- open hours

/// Open Hours bookings of a range of slot dates, by month and category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenHoursReport {
    /// The range as resolved (defaults filled in).
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub table: OpenHoursTable,
}

/// The first moment of a desk date (JST), in microseconds.
fn desk_day_start(date: NaiveDate) -> i64 {
    desk_offset()
        .from_local_datetime(&date.and_hms_opt(0, 0, 0).expect("midnight"))
        .single()
        .expect("a fixed offset has no gaps")
        .timestamp_micros()
}

/// Live (not cancelled) Open Hours bookings whose slot falls in the range
/// (desk dates, inclusive), by the slot's month in JST and by each category
/// they name: attended, no-show, not marked, and linked to a case.
///
/// Defaults: `from` the first live booking's slot date, `to` the last
/// one's, or today when that is later (both today when there is none).
pub async fn open_hours(
    desk: &Desk,
    caller: Caller,
    range: DateRange,
) -> Result<OpenHoursReport, DeskError> {
    caller.require(READERS)?;
    let today = today();
    desk.read(move |conn| {
        let (first, last) = open_hours_store::live_booking_span(conn)?;
        let to = range
            .to()
            .unwrap_or_else(|| last.map(desk_date).unwrap_or(today).max(today));
        let from = match range.from() {
            Some(from) if from > to => {
                return Err(DeskError::field(
                    "from",
                    format!(
                        "must not be after to ({from} > {to}; to defaults to the last booking or today)"
                    ),
                ));
            }
            Some(from) => from,
            None => first.map(desk_date).unwrap_or(today).min(to),
        };
        let until = to
            .succ_opt()
            .map_or(i64::MAX, desk_day_start);
        let rows = open_hours_store::bookings_for_statistics(conn, desk_day_start(from), until)?;
        let table = open_hours_stats::open_hours_table(rows.into_iter().map(
            |(starts_at, categories, attended, case_id)| BookingFacts {
                starts_at,
                categories,
                attended,
                has_case: case_id.is_some(),
            },
        ))
        .map_err(|e| DeskError::internal(anyhow::anyhow!("stored Open Hours booking: {e}")))?;
        Ok(OpenHoursReport { from, to, table })
    })
    .await
}

// ---------------------------------------------------------------- the fold

/// How often PostgreSQL's cases still to count are folded into the rollups
/// (`db::stats::fold_pending`). The statistics count pending cases on
/// their own, so this bounds only how many each read adds.
pub const FOLD_INTERVAL: std::time::Duration = std::time::Duration::from_millis(250);

/// On PostgreSQL, folds the filed cases into the statistics rollups every
/// [`FOLD_INTERVAL`] until `stopping`; on SQLite it returns at once. A
/// failed fold (database down, a lock it would wait for) changes nothing
/// and the next one takes the same cases.
pub fn spawn_fold(
    desk: Desk,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if desk.backend() != crate::db::Backend::Postgres {
            return;
        }
        let mut tick = tokio::time::interval(FOLD_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopping.changed() => return,
            }
            loop {
                match desk.database().write(store::fold_pending).await {
                    Ok(folded) => {
                        if failing {
                            tracing::info!("statistics fold: working again");
                            failing = false;
                        }
                        if folded < store::FOLD_BATCH {
                            break;
                        }
                    }
                    Err(error) => {
                        // Once per failing streak: an outage would log every tick.
                        if !failing {
                            tracing::warn!(%error, "statistics fold failed; retrying");
                            failing = true;
                        }
                        break;
                    }
                }
            }
        }
    })
}

// ---------------------------------------------------------------- verification

/// A rollup cell that differs from the recount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupDifference {
    /// Which rollups: every case's, or the duplicates'.
    pub set: Rollup,
    /// `(period, product_type, category)`: a day `YYYY-MM-DD` or a month
    /// `YYYY-MM`; no category for the per-product case count.
    pub cell: Cell,
    pub rollup: i64,
    pub recount: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RollupCheck {
    /// Non-zero cells compared (in the rollups, the recount or both).
    pub cells: usize,
    /// Cells that differ.
    pub differing: usize,
    /// The first [`MAX_DIFFERENCES`] differing cells, in cell order.
    pub differences: Vec<RollupDifference>,
    /// Cases the statistics fold has yet to add to the rollups (PostgreSQL;
    /// always 0 on SQLite). They are counted with the rollups above.
    pub pending: i64,
}

impl RollupCheck {
    pub fn consistent(&self) -> bool {
        self.differing == 0
    }
}

/// Compares every daily and monthly rollup cell with a recount from the
/// cases (a full scan: an operator's check, not for dashboards): the
/// rollups of every case, then the duplicates' against the cases closed as
/// duplicates.
pub async fn verify_rollups(desk: &Desk, caller: Caller) -> Result<RollupCheck, DeskError> {
    caller.require(AUDITORS)?;
    let checks = desk
        .read(|conn| {
            store::consistent_read(conn, |conn| {
                let mut checks = Vec::new();
                for rollup in [Rollup::All, Rollup::Duplicates] {
                    let rollups = store::rollup_cells_of(conn, rollup)?;
                    let recount = store::recount_cells_of(conn, rollup)?;
                    checks.push(compare(rollup, &rollups, &recount));
                }
                Ok::<_, DeskError>((checks, store::pending_count(conn)?))
            })
        })
        .await?;
    let (checks, pending) = checks;
    let mut check = RollupCheck {
        pending,
        ..RollupCheck::default()
    };
    for part in checks {
        check.cells += part.cells;
        check.differing += part.differing;
        check.differences.extend(part.differences);
    }
    check.differences.truncate(MAX_DIFFERENCES);
    if !check.consistent() {
        tracing::error!(
            cells = check.differing,
            "statistics rollups differ from a recount"
        );
    }
    Ok(check)
}

fn compare(
    rollup_set: Rollup,
    rollups: &BTreeMap<Cell, i64>,
    recount: &BTreeMap<Cell, i64>,
) -> RollupCheck {
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
                    set: rollup_set,
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
        pending: 0,
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
        let check = compare(Rollup::All, &rollups, &recount);
        assert_eq!((check.cells, check.differing), (3, 2));
        assert!(!check.consistent());
        assert_eq!(
            check.differences[0],
            RollupDifference {
                set: Rollup::All,
                cell: cell(2, Some("ip")),
                rollup: 1,
                recount: 0
            }
        );

        let many: BTreeMap<Cell, i64> = (1..=28)
            .flat_map(|day| ["a", "b", "c", "d", "e"].map(|c| (cell(day, Some(c)), 1)))
            .collect();
        let check = compare(Rollup::All, &many, &BTreeMap::new());
        assert_eq!((check.cells, check.differing), (140, 140));
        assert_eq!(check.differences.len(), MAX_DIFFERENCES);
        assert!(compare(Rollup::All, &many, &many).consistent());
    }
}
