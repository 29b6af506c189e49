//! Cases: filing, reading, listing, the triage queue, every lifecycle
//! change (claim, triage, information requests, close, withdraw, reopen),
//! the timeline and the messages.
//!
//! Which change is allowed is `domain::lifecycle`'s decision; this module
//! carries it out: the conditional update, the statistics moving with the
//! confirmed categories, the timeline event, the mail, the access log.

use std::sync::Arc;

use serde_json::{Value, json};

use super::reads::{SeenCases, reads_are_logged};
use super::{Desk, DeskError, check_version};
use crate::clock;
use crate::db::cases::{self as store, CaseCategories, CaseChanges, CaseFilter, CaseRow, NewEvent};
use crate::db::duplicates::{self as links, LinkedCase};
use crate::db::{AnyConnection, Shared, assignments, users};
use crate::domain::case::{self, CaseView, Intake, VisibilityRefusal, case_view};
use crate::domain::duplicate;
use crate::domain::lifecycle::{self, Action, ActionKind, Actor, CaseState, Refusal};
use crate::domain::notice;
use crate::domain::role::{Caller, Role};
use crate::domain::vocabulary::{
    CaseStatus, Category, MessageVisibility, Outcome, Priority, ProductType, Route,
};
use crate::mail::notify::Notifier;

/// Who files cases: applicants for themselves, desk staff on their behalf.
pub const FILERS: &[Role] = &[Role::Applicant, Role::Supporter, Role::Admin];
/// Who claims, triages and routes cases.
pub const DESK_STAFF: &[Role] = &[Role::Supporter, Role::Admin];

// ---------------------------------------------------------------- results

/// A case as its reader may see it: the row, its categories, the reader's
/// view, what the reader may do next and its duplicate links.
#[derive(Debug)]
pub struct CaseSnapshot {
    pub row: CaseRow,
    pub categories: CaseCategories,
    pub view: CaseView,
    pub allowed_actions: Vec<ActionKind>,
    /// The case this one was closed as a duplicate of, when the reader may
    /// read it (`domain::duplicate::link_visible`).
    pub duplicate_of: Option<CaseRef>,
    /// The cases closed as duplicates of this one that the reader may read,
    /// by id.
    pub duplicates: Vec<CaseRef>,
}

/// Another case, named by a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRef {
    pub id: i64,
    pub number: String,
}

impl CaseSnapshot {
    fn new(row: CaseRow, categories: CaseCategories, view: CaseView, caller: &Caller) -> Self {
        let allowed_actions =
            lifecycle::allowed_actions(&case_state(&row), &actor(caller, &row, view));
        CaseSnapshot {
            row,
            categories,
            view,
            allowed_actions,
            duplicate_of: None,
            duplicates: Vec::new(),
        }
    }
}

/// One page of cases, newest first.
#[derive(Debug)]
pub struct CasePage {
    pub items: Vec<CaseSnapshot>,
    /// Pass back as [`CaseQuery::before`] for the next page.
    pub next_cursor: Option<String>,
    /// The rows the page was made of, when the readers share them (a page
    /// of the desk's or of an organisation's list): the page is then the
    /// same for every read by the same caller until a case changes.
    pub shared_rows: Option<Arc<store::ListedPage>>,
}

/// The untriaged cases, oldest first, as of one second of the desk's clock.
#[derive(Debug, Clone)]
pub struct TriageQueue {
    /// Shared with the reader that read them where readers share: the same
    /// rows, the same `Arc`, for as long as no case changes.
    pub cases: Shared<[store::QueueRow]>,
    /// The whole second (of Unix time) the ages are counted to.
    pub as_of_second: i64,
}

impl TriageQueue {
    /// Whole seconds from the second `case` was received to the queue's
    /// second: never negative, and the same for every read within that
    /// second, so that an answer written once serves the whole second.
    pub fn age_seconds(&self, case: &store::QueueRow) -> i64 {
        (self.as_of_second - case.received_at.div_euclid(MICROS_PER_SECOND)).max(0)
    }
}

const MICROS_PER_SECOND: i64 = 1_000_000;

/// One event of the timeline, its detail redacted for the reader.
#[derive(Debug)]
pub struct TimelineEvent {
    pub event: store::EventRow,
    pub detail: Value,
}

/// A message just posted.
#[derive(Debug)]
pub struct PostedMessage {
    pub id: i64,
    pub at: i64,
    pub author: users::UserRow,
    pub visibility: MessageVisibility,
    pub body: String,
}

// ---------------------------------------------------------------- rules shared with the other use cases

/// The lifecycle state of a stored case.
pub(crate) fn case_state(row: &CaseRow) -> CaseState {
    CaseState {
        status: row.status,
        resume_to: row.resume_to,
    }
}

fn actor(caller: &Caller, row: &CaseRow, view: CaseView) -> Actor {
    Actor {
        role: caller.role,
        is_member: caller.organization_id == Some(row.organization_id),
        is_assigned_expert: caller.role == Role::Expert && view != CaseView::Hidden,
    }
}

/// What the caller may see of `row`; `assignment` is the caller's active
/// expert assignment on it (None for everyone else).
fn view_of(caller: &Caller, row: &CaseRow, assignment: Option<bool>) -> CaseView {
    case_view(
        caller.role,
        caller.organization_id == Some(row.organization_id),
        assignment,
    )
}

/// Loads a case the caller may see, or NotFound (which leaks nothing).
pub(crate) fn visible_case(
    conn: &mut AnyConnection,
    caller: &Caller,
    id: i64,
) -> Result<(CaseRow, CaseView), DeskError> {
    let row = store::find(conn, id)?.ok_or(DeskError::NotFound)?;
    let view = visibility(conn, caller, &row)?;
    Ok((row, view))
}

/// How the caller sees `row`; `NotFound` when not at all.
fn visibility(
    conn: &mut AnyConnection,
    caller: &Caller,
    row: &CaseRow,
) -> Result<CaseView, DeskError> {
    let assignment = if caller.role == Role::Expert {
        assignments::caller_assignment(conn, row.id, caller.id)?
    } else {
        None
    };
    shown(view_of(caller, row, assignment))
}

/// `view`, or `NotFound` (which leaks nothing) when the case is hidden.
fn shown(view: CaseView) -> Result<CaseView, DeskError> {
    match view {
        CaseView::Hidden => Err(DeskError::NotFound),
        view => Ok(view),
    }
}

/// Managers see aggregates only: every case use case refuses them outright.
pub(crate) fn refuse_managers(caller: &Caller) -> Result<(), DeskError> {
    if caller.role == Role::Manager {
        Err(DeskError::Forbidden("managers see statistics, not cases"))
    } else {
        Ok(())
    }
}

fn snapshot(
    conn: &mut AnyConnection,
    row: CaseRow,
    view: CaseView,
    caller: &Caller,
) -> Result<CaseSnapshot, DeskError> {
    let categories = store::categories_of(conn, &[row.id])?
        .remove(&row.id)
        .unwrap_or_default();
    let mut snapshots = [CaseSnapshot::new(row, categories, view, caller)];
    with_links(conn, caller, &mut snapshots)?;
    let [snapshot] = snapshots;
    Ok(snapshot)
}

/// Which of `cases` (other ends of duplicate links) the caller may read
/// (`domain::duplicate::link_visible`): desk staff all, an applicant their
/// organisation's, an expert those they are actively assigned to.
fn readable_links(
    conn: &mut AnyConnection,
    caller: &Caller,
    cases: &[&LinkedCase],
) -> Result<std::collections::HashSet<i64>, DeskError> {
    let mut readable = std::collections::HashSet::new();
    for case in cases {
        if readable.contains(&case.id) {
            continue;
        }
        let assignment = if caller.role == Role::Expert {
            assignments::caller_assignment(conn, case.id, caller.id)?
        } else {
            None
        };
        let is_member = caller.organization_id == Some(case.organization_id);
        if duplicate::link_visible(caller.role, is_member, assignment) {
            readable.insert(case.id);
        }
    }
    Ok(readable)
}

/// Fills in the duplicate links of `snapshots` that the caller may see: one
/// query for the duplicates of every listed case, one for the originals of
/// those closed as duplicates.
fn with_links(
    conn: &mut AnyConnection,
    caller: &Caller,
    snapshots: &mut [CaseSnapshot],
) -> Result<(), DeskError> {
    let ids: Vec<i64> = snapshots.iter().map(|s| s.row.id).collect();
    let found = links::links_of(conn, &ids, &duplicate_ids(snapshots))?;
    show_links(conn, caller, snapshots, found)
}

/// The cases closed as duplicates among `snapshots`.
fn duplicate_ids(snapshots: &[CaseSnapshot]) -> Vec<i64> {
    store::closed_as_duplicates(snapshots.iter().map(|s| &s.row))
}

/// Sets the links `found` of `snapshots`, each shown only where the caller
/// may read its other end.
fn show_links(
    conn: &mut AnyConnection,
    caller: &Caller,
    snapshots: &mut [CaseSnapshot],
    mut found: links::Links,
) -> Result<(), DeskError> {
    let others: Vec<&LinkedCase> = found
        .originals
        .values()
        .chain(found.duplicates.values().flatten())
        .collect();
    let readable = readable_links(conn, caller, &others)?;
    let shown = |case: LinkedCase| {
        readable.contains(&case.id).then_some(CaseRef {
            id: case.id,
            number: case.number,
        })
    };
    for snapshot in snapshots {
        let id = snapshot.row.id;
        snapshot.duplicate_of = found.originals.remove(&id).and_then(shown);
        snapshot.duplicates = found
            .duplicates
            .remove(&id)
            .unwrap_or_default()
            .into_iter()
            .filter_map(shown)
            .collect();
    }
    Ok(())
}

// ---------------------------------------------------------------- intake

/// File a consultation request: an applicant for their organisation, or
/// desk staff on an applicant's behalf.
#[derive(Debug, Clone)]
pub struct FileCase {
    pub intake: Intake,
    /// The applicant staff file for (required for staff, ignored for
    /// applicants).
    pub applicant_id: Option<i64>,
}

/// Files a case: number, row, categories, acknowledgement mail, timeline
/// event and statistics, in one transaction.
pub async fn file_case(
    desk: &Desk,
    caller: Caller,
    command: FileCase,
) -> Result<CaseSnapshot, DeskError> {
    caller.require(FILERS)?;
    let FileCase {
        intake,
        applicant_id,
    } = command;
    let on_behalf = match caller.role {
        Role::Applicant => None,
        _ => Some(applicant_id.ok_or_else(|| {
            DeskError::field("applicant_id", "is required when staff file a case")
        })?),
    };

    let now = clock::now_micros();
    if on_behalf.is_none() && desk.db.gathers_intakes() {
        return file_own_case(desk, caller, intake, now).await;
    }
    let notifier = desk.notifier.clone();
    let snapshot = desk
        .write_and_mail_after(reserve_number(now), move |conn, reserved| {
            insert_case(
                conn,
                &notifier,
                NewIntake {
                    caller,
                    on_behalf,
                    intake: &intake,
                    reserved,
                    now,
                },
            )
        })
        .await?;
    tracing::info!(case_id = snapshot.row.id, number = %snapshot.row.number, "case submitted");
    Ok(snapshot)
}

/// An applicant's case on PostgreSQL, filed with the other intakes waiting
/// at that moment (`store::file_own`): the same rows as [`insert_case`]
/// writes, in one statement and one commit for all of them.
async fn file_own_case(
    desk: &Desk,
    caller: Caller,
    intake: Intake,
    now: i64,
) -> Result<CaseSnapshot, DeskError> {
    let organization_id = caller
        .organization_id
        .ok_or(DeskError::Forbidden("your account has no organisation"))?;
    let filing = store::OwnFiling {
        applicant_id: caller.id,
        organization_id,
        title: intake.title.clone(),
        description: intake.description.clone(),
        product_type: intake.product_type.as_str(),
        stage: intake.stage.as_str(),
        language: intake.language.as_str(),
        organization_kind: intake.organization_kind.map(|kind| kind.as_str()),
        categories: intake.categories.iter().map(|c| c.as_str()).collect(),
        received_at: now,
    };
    let row = store::file_own(&desk.db, filing)
        .await?
        .ok_or(DeskError::NotFound)?;
    desk.mail_signal.queued();
    tracing::info!(case_id = row.id, number = %row.number, "case submitted");
    Ok(filed_snapshot(&caller, row, intake.categories))
}

/// What the filer of a new case sees of it.
fn filed_snapshot(caller: &Caller, row: CaseRow, categories: Vec<Category>) -> CaseSnapshot {
    let view = view_of(caller, &row, None);
    let categories = CaseCategories {
        applicant: categories,
        confirmed: Vec::new(),
    };
    CaseSnapshot::new(row, categories, view, caller)
}

/// Reserves a case's number ahead of its transaction, on the intake's
/// connection (`Desk::write_and_mail_after`): PostgreSQL only, SQLite's
/// writer takes it inside the intake at no cost (see `reserve_sequence`).
pub(crate) fn reserve_number(
    now: i64,
) -> impl Fn(&mut AnyConnection) -> Result<Option<i64>, DeskError> + Send + 'static {
    let year = chrono::Datelike::year(&case::desk_date(now));
    move |conn| Ok(store::reserve_sequence(conn, year)?)
}

/// What [`insert_case`] files.
pub(crate) struct NewIntake<'a> {
    pub caller: Caller,
    /// The applicant staff file for (`None`: the caller, an applicant).
    pub on_behalf: Option<i64>,
    pub intake: &'a Intake,
    /// From [`reserve_number`].
    pub reserved: Option<i64>,
    pub now: i64,
}

/// Files a case inside the caller's transaction: number, row, categories,
/// acknowledgement mail, timeline event and statistics.
pub(crate) fn insert_case(
    conn: &mut AnyConnection,
    notifier: &Notifier,
    new: NewIntake<'_>,
) -> Result<CaseSnapshot, DeskError> {
    let NewIntake {
        caller,
        on_behalf,
        intake,
        reserved,
        now,
    } = new;
    let received_on = case::desk_date(now);
    let year = chrono::Datelike::year(&received_on);
    let (applicant_id, organization_id) = match on_behalf {
        None => (
            caller.id,
            caller
                .organization_id
                .ok_or(DeskError::Forbidden("your account has no organisation"))?,
        ),
        Some(applicant_id) => users::find_by_id(conn, applicant_id)?
            .filter(|u| u.role == Role::Applicant.as_str())
            .and_then(|u| u.organization_id.map(|org| (u.id, org)))
            .ok_or_else(|| DeskError::field("applicant_id", "is not an applicant"))?,
    };
    let (registered_name, registered_kind) =
        users::filing_organization(conn, applicant_id, organization_id)?
            .ok_or(DeskError::NotFound)?;
    let sequence = match reserved {
        Some(sequence) => sequence,
        None => store::next_sequence(conn, year)?,
    };
    let number = case::case_number(received_on, sequence);
    let kind = match intake.organization_kind {
        Some(kind) => kind.as_str().to_owned(),
        None => registered_kind,
    };
    let codes: Vec<&str> = intake.categories.iter().map(|c| c.as_str()).collect();
    let detail = case::filing_detail(&number);
    let row = store::insert_filed(
        conn,
        &store::NewCase {
            number: &number,
            organization_id,
            applicant_id: Some(applicant_id),
            filed_by: Some(caller.id),
            title: &intake.title,
            description: &intake.description,
            product_type: intake.product_type.as_str(),
            stage: intake.stage.as_str(),
            language: intake.language.as_str(),
            // The case records the organisation as registered: typing
            // another organisation's name never moves the case there.
            organization_name: &registered_name,
            organization_kind: &kind,
            status: CaseStatus::Submitted.as_str(),
            effective_product_type: intake.product_type.as_str(),
            outcome: None,
            received_on: &received_on.to_string(),
            received_at: now,
            updated_at: now,
            closed_at: None,
        },
        &codes,
        store::FilingEvent {
            actor_id: caller.id,
            kind: "submitted",
            detail: &detail,
        },
    )?;
    notifier.case_submitted(conn, row.id, now)?;
    crate::db::stats::count_filed_case(
        conn,
        &row.received_on,
        row.effective_product_type.as_str(),
        &codes,
    )?;
    Ok(filed_snapshot(&caller, row, intake.categories.clone()))
}

// ---------------------------------------------------------------- corrections

/// Corrects a case the desk has not taken up yet (`submitted`): title,
/// description, product type, categories, stage. The statistics move with
/// the product type and categories; an `edited` event names the changed
/// fields. A correction that changes nothing writes nothing.
pub async fn edit_case(
    desk: &Desk,
    caller: Caller,
    id: i64,
    expected_version: Option<i64>,
    edit: case::CaseEdit,
) -> Result<CaseSnapshot, DeskError> {
    refuse_managers(&caller)?;
    caller.require(FILERS)?;
    desk.write(move |conn| {
        let (row, view) = visible_case(conn, &caller, id)?;
        match case::may_edit(caller.role, view, row.status) {
            Ok(()) => check_version(expected_version, row.version)?,
            Err(case::EditRefusal::NotPermitted) => {
                return Err(DeskError::Forbidden("your role may not edit a case"));
            }
            Err(case::EditRefusal::NotSubmitted(status)) => {
                check_version(expected_version, row.version)?;
                return Err(not_editable(&row, status, &caller, view));
            }
        }
        let categories = store::categories_of(conn, &[row.id])?
            .remove(&row.id)
            .unwrap_or_default();
        let current = case::FiledFields {
            title: row.title.clone(),
            description: row.description.clone(),
            product_type: row.product_type,
            categories: categories.applicant.clone(),
            stage: row.stage,
        };
        let (next, changed) = edit.apply(&current);
        if changed.is_empty() {
            return Ok(CaseSnapshot::new(row, categories, view, &caller));
        }
        let now = clock::now_micros();
        // Before triage nothing is confirmed: what was filed is what counts.
        let effective_type = row.confirmed_product_type.unwrap_or(next.product_type);
        let stage = next
            .stage
            .map_or(crate::db::import::UNRECORDED_STAGE, |s| s.as_str());
        let written = store::edit_if_version(
            conn,
            row.id,
            row.version,
            &store::FiledChanges {
                title: &next.title,
                description: &next.description,
                product_type: next.product_type.as_str(),
                effective_product_type: effective_type.as_str(),
                stage,
                updated_at: now,
                version: row.version + 1,
            },
        )?;
        if !written {
            return Err(DeskError::conflict(
                "the case was changed by someone else just now; reload it and try again",
            ));
        }
        let confirmed = !categories.confirmed.is_empty();
        if changed.contains(&"categories") {
            let codes: Vec<&str> = next.categories.iter().map(|c| c.as_str()).collect();
            store::replace_applicant_categories(conn, row.id, &codes, !confirmed)?;
        }
        let before_categories = categories.clone().effective();
        let after_categories = if confirmed {
            categories.confirmed.clone()
        } else {
            next.categories.clone()
        };
        let before: Vec<&str> = before_categories.iter().map(|c| c.as_str()).collect();
        let after: Vec<&str> = after_categories.iter().map(|c| c.as_str()).collect();
        // The statistics follow the case to the cells it now counts in.
        crate::db::stats::recount_case(
            conn,
            row.id,
            &row.received_on,
            (row.effective_product_type.as_str(), &before),
            (effective_type.as_str(), &after),
        )?;
        store::insert_event(
            conn,
            NewEvent {
                case_id: row.id,
                at: now,
                actor_id: Some(caller.id),
                kind: "edited",
                from_status: None,
                to_status: None,
                detail: Some(json!({ "fields": changed }).to_string()),
                desk_only: false,
            },
        )?;
        let (row, view) = visible_case(conn, &caller, id)?;
        if view.is_logged() {
            // The answer carries the case's text: that is a read too.
            store::log_access(conn, &[row.id], caller.id, "update", now)?;
        }
        snapshot(conn, row, view, &caller)
    })
    .await
}

/// The 409 of a correction after the desk took the case up: why, and what
/// the caller may do instead.
fn not_editable(row: &CaseRow, status: CaseStatus, caller: &Caller, view: CaseView) -> DeskError {
    let allowed = lifecycle::allowed_actions(&case_state(row), &actor(caller, row, view));
    conflict_listing(
        format!(
            "a case can be edited only while it is submitted; this one is {} (the desk has \
             taken it up and works from what was filed): write a message with the correction",
            status.as_str()
        ),
        status,
        &allowed,
    )
}

// ---------------------------------------------------------------- reading

/// Reads one case (logged for desk staff and experts).
///
/// The case comes first, by itself: on PostgreSQL it is gathered with the
/// other case reads waiting at that moment into one round trip
/// (`db::gathered`). Most reads need nothing more; an expert's assignment
/// and the other ends of duplicate links are read after it.
pub async fn read_case(desk: &Desk, caller: Caller, id: i64) -> Result<CaseSnapshot, DeskError> {
    refuse_managers(&caller)?;
    let full = store::read_full(&desk.db, id)
        .await?
        .ok_or(DeskError::NotFound)?;
    let linked = !full.duplicates.is_empty()
        || !store::closed_as_duplicates(std::iter::once(&full.row)).is_empty();
    if caller.role != Role::Expert && !linked {
        let view = shown(view_of(&caller, &full.row, None))?;
        let mut seen = SeenCases::default();
        if view.is_logged() {
            seen.record(&[full.row.id], "case");
        }
        desk.log_seen(&caller, seen).await?;
        return Ok(CaseSnapshot::new(full.row, full.categories, view, &caller));
    }
    desk.read_logged(&caller, move |conn, seen| {
        let view = visibility(conn, &caller, &full.row)?;
        if view.is_logged() {
            seen.record(&[full.row.id], "case");
        }
        let id = full.row.id;
        let mut snapshots = [CaseSnapshot::new(full.row, full.categories, view, &caller)];
        let found = links::Links {
            originals: links::originals_of(conn, &duplicate_ids(&snapshots))?,
            duplicates: std::collections::HashMap::from([(id, full.duplicates)]),
        };
        show_links(conn, &caller, &mut snapshots, found)?;
        let [snapshot] = snapshots;
        Ok(snapshot)
    })
    .await
}

/// Which cases to list.
#[derive(Debug, Clone)]
pub struct CaseQuery {
    pub status: Option<CaseStatus>,
    pub product_type: Option<ProductType>,
    pub category: Option<Category>,
    /// Text search in title and description (desk staff only).
    pub text: Option<String>,
    /// Cases this expert is actively assigned to (desk staff only).
    pub expert_id: Option<i64>,
    /// A `next_cursor` of the previous page.
    pub before: Option<String>,
    pub limit: i64,
}

impl CaseQuery {
    pub const DEFAULT_LIMIT: i64 = 20;
    pub const MAX_LIMIT: i64 = 100;
    pub const MAX_TEXT_CHARS: usize = 200;
}

fn parse_cursor(raw: &str) -> Option<(i64, i64)> {
    let (at, id) = raw.split_once('.')?;
    Some((at.parse().ok()?, id.parse().ok()?))
}

/// Lists the cases the caller may see, newest first (listings by desk
/// staff and experts are logged).
pub async fn list_cases(
    desk: &Desk,
    caller: Caller,
    query: CaseQuery,
) -> Result<CasePage, DeskError> {
    refuse_managers(&caller)?;
    let mut problems = crate::domain::validation::Problems::default();
    if query.text.is_some() && !caller.role.is_desk_staff() {
        problems.push("q", "text search is for desk staff");
    }
    if query.expert_id.is_some() && !caller.role.is_desk_staff() {
        problems.push("expert_id", "filtering by expert is for desk staff");
    }
    if !(1..=CaseQuery::MAX_LIMIT).contains(&query.limit) {
        problems.push(
            "limit",
            format!("must be from 1 to {}", CaseQuery::MAX_LIMIT),
        );
    }
    if query
        .text
        .as_deref()
        .is_some_and(|q| q.chars().count() > CaseQuery::MAX_TEXT_CHARS)
    {
        problems.push(
            "q",
            format!("must be at most {} characters", CaseQuery::MAX_TEXT_CHARS),
        );
    }
    let before = query.before.as_deref().and_then(|c| {
        let parsed = parse_cursor(c);
        if parsed.is_none() {
            problems.push("cursor", "is not a cursor this server issued");
        }
        parsed
    });
    problems.into_result()?;
    let limit = query.limit;
    let filter = CaseFilter {
        organization_id: (caller.role == Role::Applicant)
            .then(|| caller.organization_id.unwrap_or(-1)),
        only_ids: None,
        status: query.status.map(|s| s.as_str().to_owned()),
        product_type: query.product_type.map(|p| p.as_str().to_owned()),
        category: query.category.map(|c| c.as_str().to_owned()),
        text: query.text,
        before,
        limit,
    };
    let expert_filter = query.expert_id;
    desk.read_logged(&caller, move |conn, seen| {
        let mut filter = filter;
        // Experts see only the cases they are actively assigned to.
        let accepted: Option<std::collections::HashMap<i64, bool>> = if caller.role == Role::Expert
        {
            let mine = assignments::active_cases_of_user(conn, caller.id)?;
            filter.only_ids = Some(mine.iter().map(|(id, _)| *id).collect());
            Some(mine.into_iter().collect())
        } else {
            if let Some(expert_id) = expert_filter {
                filter.only_ids = Some(assignments::active_case_ids_of_expert(conn, expert_id)?);
            }
            None
        };
        let listed = store::list_page(conn, &filter)?;
        let page = &listed.rows;
        let ids: Vec<i64> = page.rows.iter().map(|r| r.id).collect();
        if reads_are_logged(&caller) {
            seen.record_listing(&ids, "list");
        }
        let next_cursor = (page.rows.len() as i64 == limit)
            .then(|| {
                page.rows
                    .last()
                    .map(|r| format!("{}.{}", r.received_at, r.id))
            })
            .flatten();
        let mut items: Vec<CaseSnapshot> = page
            .rows
            .iter()
            .map(|row| {
                let assignment = accepted.as_ref().and_then(|m| m.get(&row.id).copied());
                let view = view_of(&caller, row, assignment);
                let cats = page.categories.get(&row.id).cloned().unwrap_or_default();
                CaseSnapshot::new(row.clone(), cats, view, &caller)
            })
            .collect();
        show_links(conn, &caller, &mut items, page.links.clone())?;
        Ok(CasePage {
            items,
            next_cursor,
            shared_rows: listed.if_shared().cloned(),
        })
    })
    .await
}

/// The queue's page size when the caller does not say, and its bound.
pub const QUEUE_DEFAULT_LIMIT: i64 = 100;
pub const QUEUE_MAX_LIMIT: i64 = 500;

/// Untriaged cases (submitted, or claimed and not yet triaged), oldest
/// first; desk staff only.
pub async fn triage_queue(
    desk: &Desk,
    caller: Caller,
    limit: i64,
) -> Result<TriageQueue, DeskError> {
    triage_queue_filtered(desk, caller, QueueFilter::default(), limit).await
}

/// Which untriaged cases to show: of a product type, of a category, only
/// the unclaimed ones.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueFilter {
    pub product_type: Option<ProductType>,
    pub category: Option<Category>,
    pub unclaimed_only: bool,
}

/// [`triage_queue`], narrowed by `filter` (in the query: no case is read
/// to be left out).
pub async fn triage_queue_filtered(
    desk: &Desk,
    caller: Caller,
    filter: QueueFilter,
    limit: i64,
) -> Result<TriageQueue, DeskError> {
    let filter = store::QueueFilter {
        product_type: filter.product_type.map(|p| p.as_str().to_owned()),
        category: filter.category.map(|c| c.as_str().to_owned()),
        unclaimed_only: filter.unclaimed_only,
    };
    caller.require(DESK_STAFF)?;
    if !(1..=QUEUE_MAX_LIMIT).contains(&limit) {
        return Err(DeskError::field(
            "limit",
            format!("must be from 1 to {QUEUE_MAX_LIMIT}"),
        ));
    }
    let as_of_second = clock::now_micros().div_euclid(MICROS_PER_SECOND);
    desk.read_logged(&caller, move |conn, seen| {
        let cases = store::triage_queue(conn, &filter, limit)?;
        let ids: Vec<i64> = cases.rows.iter().map(|r| r.id).collect();
        seen.record_listing(&ids, "triage_queue");
        Ok(TriageQueue {
            cases,
            as_of_second,
        })
    })
    .await
}

/// The case's timeline, oldest first, as the caller may read it.
pub async fn timeline(
    desk: &Desk,
    caller: Caller,
    id: i64,
) -> Result<Vec<TimelineEvent>, DeskError> {
    refuse_managers(&caller)?;
    desk.read_logged(&caller, move |conn, seen| {
        let (row, view) = visible_case(conn, &caller, id)?;
        if view.is_logged() {
            seen.record(&[row.id], "events");
        }
        let rows = store::events(conn, row.id, view.sees_internal())?;
        let events: Vec<TimelineEvent> = rows
            .into_iter()
            .map(|mut event| {
                let mut detail = event
                    .detail
                    .take()
                    .and_then(|d| serde_json::from_str(&d).ok())
                    .unwrap_or_else(|| json!({}));
                case::redact_event_detail(caller.role, &event.kind, &mut detail);
                TimelineEvent { event, detail }
            })
            .collect();
        // Events naming another case (a duplicate link) show it only to
        // who may read it.
        let mut linked: Vec<i64> = events
            .iter()
            .filter_map(|e| duplicate::linked_case(&e.event.kind, &e.detail))
            .collect();
        if linked.is_empty() {
            return Ok(events);
        }
        linked.sort_unstable();
        linked.dedup();
        let others = links::cases_named(conn, &linked)?;
        let readable = readable_links(conn, &caller, &others.iter().collect::<Vec<_>>())?;
        Ok(events
            .into_iter()
            .filter_map(|mut e| {
                let visible = duplicate::linked_case(&e.event.kind, &e.detail)
                    .is_none_or(|other| readable.contains(&other));
                duplicate::redact_event(&e.event.kind, &mut e.detail, visible).then_some(e)
            })
            .collect())
    })
    .await
}

// ---------------------------------------------------------------- messages

/// A message on a case.
#[derive(Debug, Clone)]
pub struct PostMessage {
    pub body: String,
    /// What the author asked for (see `case::message_visibility`).
    pub visibility: Option<MessageVisibility>,
}

/// Posts a message; an applicant's message answers an information request
/// and sends the case back to where it was.
pub async fn post_message(
    desk: &Desk,
    caller: Caller,
    id: i64,
    expected_version: Option<i64>,
    command: PostMessage,
) -> Result<PostedMessage, DeskError> {
    refuse_managers(&caller)?;
    let notifier = desk.notifier.clone();
    let clock = desk.clock.clone();
    desk.write_and_mail(move |conn| {
        let (row, view) = visible_case(conn, &caller, id)?;
        check_version(expected_version, row.version)?;
        let visibility =
            case::message_visibility(view, command.visibility).map_err(
                |refusal| match refusal {
                    VisibilityRefusal::Missing => {
                        DeskError::field("visibility", case::VISIBILITY_REQUIRED)
                    }
                    VisibilityRefusal::Forbidden(why) => DeskError::Forbidden(why),
                },
            )?;
        let now = clock.now_micros();
        let message_id = store::insert_message(
            conn,
            row.id,
            caller.id,
            visibility.as_str(),
            &command.body,
            now,
        )?;
        store::insert_event(
            conn,
            NewEvent {
                case_id: row.id,
                at: now,
                actor_id: Some(caller.id),
                kind: "message",
                from_status: None,
                to_status: None,
                detail: Some(
                    json!({"message_id": message_id, "visibility": visibility.as_str()})
                        .to_string(),
                ),
                desk_only: visibility == MessageVisibility::Internal,
            },
        )?;
        let replies = view == CaseView::Applicant && row.status == CaseStatus::AwaitingInfo;
        if replies {
            apply(
                conn,
                &notifier,
                &caller,
                &row,
                view,
                Action::ApplicantReply,
                Extra::default(),
                now,
            )?;
        } else {
            store::touch(conn, row.id, now)?;
        }
        let mut told = vec![caller.id];
        if replies {
            told.extend(store::last_info_requester(conn, row.id)?);
        }
        notifier.message_posted(conn, &row, notice::audience(visibility, view), &told, now)?;
        let author = users::find_by_id(conn, caller.id)?.ok_or(DeskError::NotFound)?;
        Ok(PostedMessage {
            id: message_id,
            at: now,
            author,
            visibility,
            body: command.body,
        })
    })
    .await
}

/// The messages of a case the caller may read, oldest first.
pub async fn messages(
    desk: &Desk,
    caller: Caller,
    id: i64,
) -> Result<Vec<store::MessageRow>, DeskError> {
    refuse_managers(&caller)?;
    desk.read_logged(&caller, move |conn, seen| {
        let (row, view) = visible_case(conn, &caller, id)?;
        if view == CaseView::ExpertSummary {
            return Err(DeskError::Forbidden(
                "accept the assignment to read the case's messages",
            ));
        }
        if view.is_logged() {
            seen.record(&[row.id], "messages");
        }
        let only = (!view.sees_internal()).then_some(MessageVisibility::Applicant.as_str());
        Ok(store::messages(conn, row.id, only)?)
    })
    .await
}

// ---------------------------------------------------------------- lifecycle

/// What an action writes beside the status change.
#[derive(Debug, Default)]
pub(crate) struct Extra {
    pub(crate) priority: Option<Priority>,
    pub(crate) confirmed: Option<(ProductType, Vec<Category>)>,
    pub(crate) route: Option<Route>,
    pub(crate) refer_to: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) note: Option<String>,
    /// The original of a case closed as a duplicate (required with that
    /// outcome, refused with any other).
    pub(crate) duplicate_of: Option<i64>,
}

/// A lifecycle refusal as the caller sees it: not their role's to do
/// (Forbidden), or not possible now (Conflict, listing what is).
pub(crate) fn refusal(refusal: Refusal) -> DeskError {
    match refusal {
        Refusal::NotPermitted { .. } => {
            DeskError::Forbidden("your role may not do this to this case")
        }
        Refusal::InvalidTransition { from, allowed } => {
            let names: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
            let detail = format!(
                "not possible while the case is {}; allowed: {}",
                from.as_str(),
                if names.is_empty() {
                    "nothing".to_owned()
                } else {
                    names.join(", ")
                }
            );
            conflict_listing(detail, from, &allowed)
        }
    }
}

/// A 409 with the case's status and the actions the caller may take instead
/// (each one a path under `…/actions/`).
fn conflict_listing(detail: String, status: CaseStatus, allowed: &[ActionKind]) -> DeskError {
    let allowed: Vec<&str> = allowed.iter().map(|a| a.as_str()).collect();
    let mut context = serde_json::Map::new();
    context.insert("case_status".into(), json!(status.as_str()));
    context.insert("allowed_actions".into(), json!(allowed));
    DeskError::Conflict {
        detail,
        context: Some(context),
    }
}

fn event_kind(action: &Action) -> &'static str {
    match action {
        Action::Claim => "claimed",
        Action::Triage { .. } => "triaged",
        Action::RequestInfo => "info_requested",
        Action::ApplicantReply => "applicant_replied",
        Action::StartMatching => "matching_started",
        Action::ExpertAccepted => "expert_accepted",
        Action::ExpertDeclined => "expert_declined",
        Action::StartConsultation => "consultation_started",
        Action::Close { .. } => "closed",
        Action::Withdraw => "withdrawn",
        Action::Reopen => "reopened",
    }
}

/// Decides and applies one lifecycle action inside the caller's
/// transaction: the conditional update, the statistics, the event, the
/// mail, and the end of active assignments when the case closes.
#[allow(clippy::too_many_arguments)]
pub(crate) fn apply(
    conn: &mut AnyConnection,
    notifier: &Notifier,
    caller: &Caller,
    row: &CaseRow,
    view: CaseView,
    action: Action,
    extra: Extra,
    now: i64,
) -> Result<(), DeskError> {
    let from = case_state(row);
    let transition =
        lifecycle::decide(&from, &action, &actor(caller, row, view)).map_err(refusal)?;
    let to = transition.to.as_str();
    let original = match duplicate::check_request(row.id, transition.outcome, extra.duplicate_of)
        .map_err(|message| DeskError::field(duplicate::FIELD, message))?
    {
        Some(original_id) => Some(original_to_link(conn, caller, row, original_id)?),
        None => None,
    };
    let (confirmed_type, confirmed_categories) = match &extra.confirmed {
        Some((product_type, categories)) => (
            Some(product_type.as_str()),
            Some(categories.iter().map(|c| c.as_str()).collect::<Vec<_>>()),
        ),
        None => (None, None),
    };
    let changes = CaseChanges {
        status: Some(to),
        resume_to: Some(transition.resume_to.map(|s| s.as_str())),
        outcome: Some(transition.outcome.map(|o| o.as_str())),
        priority: extra.priority.map(|p| p.as_str()),
        confirmed_product_type: confirmed_type,
        route: extra.route.map(|r| r.as_str()),
        refer_to: extra.refer_to.as_deref().map(Some),
        claimed_by: matches!(action, Action::Claim).then_some(caller.id),
        triaged_at: matches!(action, Action::Triage { .. }).then_some(now),
        closed_at: Some((transition.to == CaseStatus::Closed).then_some(now)),
    };
    if !store::update_if_version(conn, row.id, row.version, &changes, now)? {
        // Someone else changed the case between our read and our write.
        return Err(DeskError::conflict(
            "the case was changed by someone else just now; reload it and try again",
        ));
    }
    if let (Some(product_type), Some(categories)) = (confirmed_type, &confirmed_categories) {
        // The statistics follow the case from the cells it counted in to
        // the confirmed ones, in this same transaction.
        let before = store::categories_of(conn, &[row.id])?
            .remove(&row.id)
            .map(CaseCategories::effective)
            .unwrap_or_default();
        let before: Vec<&str> = before.iter().map(|c| c.as_str()).collect();
        crate::db::stats::recount_case(
            conn,
            row.id,
            &row.received_on,
            (row.effective_product_type.as_str(), &before),
            (product_type, categories),
        )?;
        store::confirm_categories(conn, row.id, categories)?;
    }
    let mut detail = serde_json::Map::new();
    if let Some(outcome) = transition.outcome {
        detail.insert("outcome".into(), json!(outcome.as_str()));
    }
    if let Some(reason) = &extra.reason {
        detail.insert("reason".into(), json!(reason));
    }
    if let Some(priority) = extra.priority {
        detail.insert("priority".into(), json!(priority.as_str()));
    }
    if let Some(route) = extra.route {
        detail.insert("route".into(), json!(route.as_str()));
    }
    if let Some(refer_to) = &extra.refer_to {
        detail.insert("refer_to".into(), json!(refer_to));
    }
    // Closing as a duplicate links the two cases; reopening a duplicate
    // clears its link (both timelines keep the history).
    // `Some(version)`: the original's version its checks read, which it
    // must still have (see below).
    let link_change = match original {
        Some((original, version)) => {
            links::link(conn, row.id, original.id, now)?;
            Some((original, duplicate::LINKED_EVENT, Some(version)))
        }
        None if row.outcome == Some(Outcome::Duplicate) && matches!(action, Action::Reopen) => {
            links::unlink(conn, row.id)?.map(|original| (original, duplicate::UNLINKED_EVENT, None))
        }
        None => None,
    };
    if let Some((original, _, _)) = &link_change {
        detail.insert(
            "duplicate_of".into(),
            json!({"id": original.id, "number": original.number}),
        );
    }
    // The duplicates' rollups count every case closed as a duplicate: +1
    // when closed so, −1 when reopened (the only way out of closed).
    let duplicate_delta = match (transition.outcome, row.outcome) {
        (Some(Outcome::Duplicate), _) => 1,
        (None, Some(Outcome::Duplicate)) => -1,
        _ => 0,
    };
    if duplicate_delta != 0 {
        let counted = store::categories_of(conn, &[row.id])?
            .remove(&row.id)
            .map(CaseCategories::effective)
            .unwrap_or_default();
        let counted: Vec<&str> = counted.iter().map(|c| c.as_str()).collect();
        crate::db::stats::count_duplicate(
            conn,
            &row.received_on,
            row.effective_product_type.as_str(),
            &counted,
            duplicate_delta,
        )?;
    }
    if let (Some(product_type), Some(categories)) = (confirmed_type, &confirmed_categories) {
        detail.insert("product_type".into(), json!(product_type));
        detail.insert("categories".into(), json!(categories));
    }
    store::insert_event(
        conn,
        NewEvent {
            case_id: row.id,
            at: now,
            actor_id: Some(caller.id),
            kind: event_kind(&action),
            from_status: Some(from.status.as_str()),
            to_status: Some(to),
            detail: (!detail.is_empty()).then(|| Value::Object(detail).to_string()),
            desk_only: false,
        },
    )?;
    if let Some((original, kind, checked_version)) = link_change {
        // The original changed (its `duplicates`): a new version. A link is
        // made only to the original as checked: had another transaction
        // changed it meanwhile (closed it as a duplicate of a third case,
        // say), links would no longer be one step deep.
        match checked_version {
            Some(version) => {
                if !links::touch_original(conn, original.id, version, now)? {
                    return Err(DeskError::conflict(
                        "the case named in duplicate_of was changed by someone else just now; \
                         reload it and try again",
                    ));
                }
            }
            None => store::touch(conn, original.id, now)?,
        }
        // The original's timeline tells of its duplicate.
        store::insert_event(
            conn,
            NewEvent {
                case_id: original.id,
                at: now,
                actor_id: Some(caller.id),
                kind,
                from_status: None,
                to_status: None,
                detail: Some(
                    json!({"duplicate": {"id": row.id, "number": row.number}}).to_string(),
                ),
                desk_only: false,
            },
        )?;
    }
    match action {
        Action::RequestInfo => {
            notifier.info_requested(conn, row, extra.reason.as_deref(), now)?;
        }
        Action::ApplicantReply => notifier.applicant_replied(conn, row, now)?,
        _ => {}
    }
    if let (CaseStatus::Closed, Some(outcome)) = (transition.to, transition.outcome) {
        let refer_to = extra.refer_to.as_deref().or(row.refer_to.as_deref());
        notifier.case_closed(conn, row, outcome, refer_to, now)?;
        assignments::end_active_on_case(conn, row.id, now)?;
    }
    if let Some(note) = extra.note {
        // Internal triage notes stay on the desk side of the timeline.
        store::insert_event(
            conn,
            NewEvent {
                case_id: row.id,
                at: now,
                actor_id: Some(caller.id),
                kind: "note",
                from_status: None,
                to_status: None,
                detail: Some(json!({ "note": note }).to_string()),
                desk_only: true,
            },
        )?;
    }
    Ok(())
}

/// The case `original_id` names as the original of `row`, once checked
/// (`domain::duplicate::check_original`): a case the caller can see, not
/// itself a duplicate, while `row` is the original of none. Only desk staff
/// close with an outcome (the lifecycle decided before this runs). Returns
/// it with the version the checks read.
fn original_to_link(
    conn: &mut AnyConnection,
    caller: &Caller,
    row: &CaseRow,
    original_id: i64,
) -> Result<(LinkedCase, i64), DeskError> {
    let unknown = || {
        DeskError::field(
            duplicate::FIELD,
            format!("names no case you can see (id {original_id})"),
        )
    };
    let original = store::find(conn, original_id)?.ok_or_else(unknown)?;
    let candidate = LinkedCase {
        id: original.id,
        number: original.number.clone(),
        organization_id: original.organization_id,
    };
    if !readable_links(conn, caller, &[&candidate])?.contains(&original.id) {
        return Err(unknown());
    }
    let first = match original.outcome {
        Some(Outcome::Duplicate) => links::original_of(conn, original.id)?,
        _ => None,
    };
    let its_duplicates: Vec<String> = links::links_of(conn, &[row.id], &[])?
        .duplicates
        .remove(&row.id)
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.number)
        .collect();
    duplicate::check_original(
        &row.number,
        &its_duplicates,
        &duplicate::Original {
            number: &original.number,
            outcome: original.outcome,
            duplicate_of: first.as_ref().map(|f| f.number.as_str()),
        },
    )
    .map_err(|message| DeskError::field(duplicate::FIELD, message))?;
    Ok((candidate, original.version))
}

/// Loads the case, checks visibility and the expected version, lets `plan`
/// choose the action, applies it and returns the updated case — one
/// transaction.
async fn act(
    desk: &Desk,
    caller: Caller,
    id: i64,
    expected_version: Option<i64>,
    plan: impl FnOnce(&CaseRow, &Actor) -> Result<(Action, Extra), DeskError> + Send + 'static,
) -> Result<CaseSnapshot, DeskError> {
    refuse_managers(&caller)?;
    let notifier = desk.notifier.clone();
    desk.write_and_mail(move |conn| {
        let (row, view) = visible_case(conn, &caller, id)?;
        check_version(expected_version, row.version)?;
        let (action, extra) = plan(&row, &actor(&caller, &row, view))?;
        let now = clock::now_micros();
        apply(conn, &notifier, &caller, &row, view, action, extra, now)?;
        let (row, view) = visible_case(conn, &caller, id)?;
        if view.is_logged() {
            // The answer carries the case's text: that is a read too.
            store::log_access(conn, &[row.id], caller.id, "update", now)?;
        }
        snapshot(conn, row, view, &caller)
    })
    .await
}

/// Takes a new case for triage: `submitted → triage`.
pub async fn claim(
    desk: &Desk,
    caller: Caller,
    id: i64,
    expected_version: Option<i64>,
) -> Result<CaseSnapshot, DeskError> {
    caller.require(DESK_STAFF)?;
    act(desk, caller, id, expected_version, |_, _| {
        Ok((Action::Claim, Extra::default()))
    })
    .await
}

/// Triage: priority, the confirmed product type and categories, the route.
#[derive(Debug, Clone)]
pub struct Triage {
    pub priority: Priority,
    pub product_type: ProductType,
    pub categories: Vec<Category>,
    pub route: Route,
    /// The organisation referred to: required with route `refer`, refused
    /// with any other.
    pub refer_to: Option<String>,
    /// An internal note (desk side only).
    pub note: Option<String>,
}

/// A triage as typed in a form or sent as JSON: the API and the pages check
/// it alike.
#[derive(Debug, Clone, Copy, Default)]
pub struct TriageFields<'a> {
    pub priority: Option<&'a str>,
    pub product_type: Option<&'a str>,
    /// None when the field is absent.
    pub categories: Option<&'a [String]>,
    pub route: Option<&'a str>,
    /// Blank is no note.
    pub note: Option<&'a str>,
    pub refer_to: Option<&'a str>,
}

impl TriageFields<'_> {
    /// The command, or every field's problem.
    pub fn parse(self) -> Result<Triage, Vec<crate::domain::validation::Invalid>> {
        use crate::domain::account::{ORGANIZATION_MAX_CHARS, parse_display_name};
        let mut problems = crate::domain::validation::Problems::default();
        let priority = problems
            .required("priority", self.priority)
            .and_then(|p| problems.check("priority", p.parse::<Priority>()));
        let product_type = problems
            .required("product_type", self.product_type)
            .and_then(|p| problems.check("product_type", p.parse::<ProductType>()));
        let categories = match self.categories {
            None => {
                problems.push("categories", "must name at least one category");
                None
            }
            Some(raw) => problems.check("categories", case::parse_categories(raw)),
        };
        let route = problems
            .required("route", self.route)
            .and_then(|r| problems.check("route", r.parse::<Route>()));
        let note = match self.note.filter(|t| !t.trim().is_empty()) {
            None => Some(None),
            Some(text) => problems
                .check("note", case::parse_text(text, case::NOTE_MAX_CHARS))
                .map(Some),
        };
        let refer_to = self.refer_to.map(|name| {
            problems.check("refer_to", parse_display_name(name, ORGANIZATION_MAX_CHARS))
        });
        problems.finish(|| {
            Some(Triage {
                priority: priority?,
                product_type: product_type?,
                categories: categories?,
                route: route?,
                refer_to: refer_to.map_or(Some(None), |r| r.map(Some))?,
                note: note?,
            })
        })
    }
}

/// Records triage and routes the case.
pub async fn triage(
    desk: &Desk,
    caller: Caller,
    id: i64,
    expected_version: Option<i64>,
    command: Triage,
) -> Result<CaseSnapshot, DeskError> {
    caller.require(DESK_STAFF)?;
    match (command.route, &command.refer_to) {
        (Route::Refer, None) => {
            return Err(DeskError::field(
                "refer_to",
                "is required when route is refer",
            ));
        }
        (Route::Refer, Some(_)) | (_, None) => {}
        (_, Some(_)) => return Err(DeskError::field("refer_to", "is only for route refer")),
    }
    let route = command.route;
    let extra = Extra {
        priority: Some(command.priority),
        confirmed: Some((command.product_type, command.categories)),
        route: Some(route),
        refer_to: command.refer_to,
        reason: None,
        note: command.note,
        duplicate_of: None,
    };
    act(desk, caller, id, expected_version, move |_, _| {
        Ok((Action::Triage { route }, extra))
    })
    .await
}

/// Move a case to another status (ask for information, resume, close,
/// withdraw, reopen …): the lifecycle says which action that means.
#[derive(Debug, Clone)]
pub struct StatusChange {
    pub to: CaseStatus,
    pub outcome: Option<Outcome>,
    /// Why (kept in the timeline).
    pub reason: Option<String>,
    /// With the outcome `duplicate` (and only with it): the id of the case
    /// this one duplicates (`domain::duplicate`).
    pub duplicate_of: Option<i64>,
}

/// Moves a case along its lifecycle.
pub async fn change_status(
    desk: &Desk,
    caller: Caller,
    id: i64,
    expected_version: Option<i64>,
    command: StatusChange,
) -> Result<CaseSnapshot, DeskError> {
    if command.to == CaseStatus::Closed
        && command.outcome.is_none()
        && caller.role != Role::Applicant
    {
        return Err(DeskError::field(
            "outcome",
            "is required when closing a case",
        ));
    }
    // What needs no stored data is refused before the transaction.
    duplicate::check_request(id, command.outcome, command.duplicate_of)
        .map_err(|message| DeskError::field(duplicate::FIELD, message))?;
    let role = caller.role;
    act(desk, caller, id, expected_version, move |row, actor| {
        let state = case_state(row);
        let action = case::action_for_status(&state, command.to, command.outcome, role)
            .ok_or_else(|| {
                // No action leads there: what this caller may do instead.
                refusal(Refusal::InvalidTransition {
                    from: state.status,
                    allowed: lifecycle::allowed_actions(&state, actor),
                })
            })?;
        Ok((
            action,
            Extra {
                reason: command.reason,
                duplicate_of: command.duplicate_of,
                ..Extra::default()
            },
        ))
    })
    .await
}

// ---------------------------------------------------------------- actions by name

/// A case action as `allowed_actions` names it (`POST
/// /api/v1/cases/{id}/actions/{action}`), with what it carries. Each is
/// carried out by the use case of the endpoint that does the same thing:
/// [`claim`], [`triage`], [`change_status`] for closing, and the shared
/// lifecycle step for the rest (which `change_status` also ends in, once it
/// has worked out which action a requested status means).
#[derive(Debug, Clone)]
pub enum CaseAction {
    Claim,
    Triage(Triage),
    /// The question goes to the applicant in the mail and the timeline, as
    /// the `reason` of a `status: awaiting_info` request does.
    RequestInfo {
        question: String,
    },
    ApplicantReply {
        reason: Option<String>,
    },
    StartMatching {
        reason: Option<String>,
    },
    StartConsultation {
        reason: Option<String>,
    },
    /// The same command as closing through `change_status` (its `to` is
    /// taken to be `closed`).
    Close(StatusChange),
    Withdraw {
        reason: Option<String>,
    },
    Reopen {
        reason: Option<String>,
    },
}

impl CaseAction {
    pub fn kind(&self) -> ActionKind {
        match self {
            Self::Claim => ActionKind::Claim,
            Self::Triage(_) => ActionKind::Triage,
            Self::RequestInfo { .. } => ActionKind::RequestInfo,
            Self::ApplicantReply { .. } => ActionKind::ApplicantReply,
            Self::StartMatching { .. } => ActionKind::StartMatching,
            Self::StartConsultation { .. } => ActionKind::StartConsultation,
            Self::Close(_) => ActionKind::Close,
            Self::Withdraw { .. } => ActionKind::Withdraw,
            Self::Reopen { .. } => ActionKind::Reopen,
        }
    }
}

/// Refuses a caller whose role never takes `kind` on a case (403, whatever
/// the case): interfaces call it before reading the action's body.
pub fn may_take(caller: &Caller, kind: ActionKind) -> Result<(), DeskError> {
    if lifecycle::role_may(caller.role, kind) && kind.is_case_action() {
        Ok(())
    } else {
        Err(DeskError::Forbidden(
            "your role may not take this action on a case",
        ))
    }
}

/// Takes the named action on the case.
pub async fn take_action(
    desk: &Desk,
    caller: Caller,
    id: i64,
    expected_version: Option<i64>,
    action: CaseAction,
) -> Result<CaseSnapshot, DeskError> {
    may_take(&caller, action.kind())?;
    let (action, reason) = match action {
        CaseAction::Claim => return claim(desk, caller, id, expected_version).await,
        CaseAction::Triage(command) => {
            return triage(desk, caller, id, expected_version, command).await;
        }
        // `withdrawn` is the withdraw action's outcome: closing with it is
        // the lifecycle's refusal (409 pointing to `withdraw`), not a
        // withdrawal in disguise as it is through `change_status`.
        CaseAction::Close(StatusChange {
            outcome: Some(Outcome::Withdrawn),
            reason,
            ..
        }) => (
            Action::Close {
                outcome: Outcome::Withdrawn,
            },
            reason,
        ),
        CaseAction::Close(command) => {
            let command = StatusChange {
                to: CaseStatus::Closed,
                ..command
            };
            return change_status(desk, caller, id, expected_version, command).await;
        }
        CaseAction::RequestInfo { question } => (Action::RequestInfo, Some(question)),
        CaseAction::ApplicantReply { reason } => (Action::ApplicantReply, reason),
        CaseAction::StartMatching { reason } => (Action::StartMatching, reason),
        CaseAction::StartConsultation { reason } => (Action::StartConsultation, reason),
        CaseAction::Withdraw { reason } => (Action::Withdraw, reason),
        CaseAction::Reopen { reason } => (Action::Reopen, reason),
    };
    act(desk, caller, id, expected_version, move |_, _| {
        Ok((
            action,
            Extra {
                reason,
                ..Extra::default()
            },
        ))
    })
    .await
}
