//! Expert assignments: propose, accept, decline, withdraw, complete, and who sees which.
//!
//! Which change of an assignment is allowed, for whom, and what it does to
//! the case is `domain::assignment`'s decision (`decide`, `case_effect`);
//! whether an expert may be proposed at all is `domain::matching`'s (the
//! same rules as the suggestions); which assignments a caller sees, and how
//! much of each, is `domain::case::assignment_disclosure`. This module
//! carries them out: the conditional update, the timeline event, the case's
//! move through `cases::apply`, and the mail to the expert or the desk.

use anyhow::anyhow;
use serde_json::json;

use super::cases::{DESK_STAFF, Extra, apply, visible_case};
use super::experts::{expert_profile, match_case};
use super::{Desk, DeskError};
use crate::clock;
use crate::db::DbError;
use crate::db::assignments::{self as store, AssignmentChange, AssignmentRow};
use crate::db::cases::{self as case_store, CaseRow, NewEvent};
use crate::db::experts::{self, ExpertRow};
use crate::db::{AnyConnection, DbResult};
use crate::domain::assignment::{
    self, AssignmentAction, AssignmentActor, AssignmentRefusal, AssignmentStatus, CaseEffect,
};
use crate::domain::case::{AssignmentDisclosure, CaseView, assignment_disclosure};
use crate::domain::lifecycle::Action;
use crate::domain::role::{Caller, Role};
use crate::domain::vocabulary::{AssignmentRole, CaseStatus};

/// Who answers a proposal (accept, decline) and lists their own assignments.
pub const EXPERTS: &[Role] = &[Role::Expert];
/// Who propose and withdraw experts: the desk.
pub const PROPOSERS: &[Role] = DESK_STAFF;
/// Who complete an assignment and read a case's assignments: the desk and
/// the experts.
pub const DESK_AND_EXPERTS: &[Role] = &[Role::Supporter, Role::Admin, Role::Expert];

/// The confidentiality terms an expert acknowledges by accepting (their
/// text: `desk::terms`).
pub use crate::domain::terms::CONFIDENTIALITY_TERMS_VERSION;

// ---------------------------------------------------------------- stored values

/// The row's status; an unknown stored value is an error naming the row.
pub(crate) fn stored_status(row: &AssignmentRow) -> Result<AssignmentStatus, DeskError> {
    row.status.parse().map_err(|_| {
        DeskError::internal(anyhow!(
            "assignment {}: unknown status {:?} in the database",
            row.id,
            row.status
        ))
    })
}

/// The assignment's expert (the row refers to one; a missing one is a
/// broken database, not the caller's fault).
fn expert_of(conn: &mut AnyConnection, row: &AssignmentRow) -> Result<ExpertRow, DeskError> {
    experts::find_row(conn, row.expert_id)?.ok_or_else(|| {
        DeskError::internal(anyhow!(
            "assignment {}: expert {} is not in the database",
            row.id,
            row.expert_id
        ))
    })
}

// ---------------------------------------------------------------- timeline

fn insert_event(
    conn: &mut AnyConnection,
    case_id: i64,
    actor: i64,
    kind: &str,
    detail: serde_json::Value,
    now: i64,
    desk_only: bool,
) -> DbResult<()> {
    case_store::insert_event(
        conn,
        NewEvent {
            case_id,
            at: now,
            actor_id: Some(actor),
            kind,
            from_status: None,
            to_status: None,
            detail: Some(detail.to_string()),
            desk_only,
        },
    )
}

/// An event everyone who sees the case's timeline sees.
pub(crate) fn event(
    conn: &mut AnyConnection,
    case_id: i64,
    actor: i64,
    kind: &str,
    detail: serde_json::Value,
    now: i64,
) -> DbResult<()> {
    insert_event(conn, case_id, actor, kind, detail, now, false)
}

/// An event only the desk (and accepted experts) see.
pub(crate) fn desk_event(
    conn: &mut AnyConnection,
    case_id: i64,
    actor: i64,
    kind: &str,
    detail: serde_json::Value,
    now: i64,
) -> DbResult<()> {
    insert_event(conn, case_id, actor, kind, detail, now, true)
}

// ---------------------------------------------------------------- moves

/// The caller's own assignment and its expert, or NotFound (another
/// expert's is not theirs to see).
fn own_assignment(
    conn: &mut AnyConnection,
    caller: &Caller,
    id: i64,
) -> Result<(AssignmentRow, ExpertRow), DeskError> {
    let row = store::find(conn, id)?.ok_or(DeskError::NotFound)?;
    let expert = experts::find_by_user(conn, caller.id)?.ok_or(DeskError::NotFound)?;
    if row.expert_id != expert.id {
        return Err(DeskError::NotFound);
    }
    Ok((row, expert))
}

fn not_in(status: &str, what: &str) -> DeskError {
    DeskError::conflict(format!("the assignment is {status}; it cannot be {what}"))
}

/// Whether `caller` may do `action` to `row` (whose expert is `expert`)
/// now: the status it would leave and the one it would reach, or
/// Forbidden / Conflict.
fn decide_move(
    caller: &Caller,
    row: &AssignmentRow,
    expert: &ExpertRow,
    action: AssignmentAction,
) -> Result<(AssignmentStatus, AssignmentStatus), DeskError> {
    let from = stored_status(row)?;
    let actor = AssignmentActor {
        role: caller.role,
        is_own: expert.user_id == caller.id,
    };
    match assignment::decide(from, action, actor) {
        Ok(to) => Ok((from, to)),
        Err(AssignmentRefusal::NotPermitted) => Err(DeskError::Forbidden(
            "your role may not do this to this assignment",
        )),
        Err(AssignmentRefusal::WrongState { from }) => {
            Err(not_in(from.as_str(), action.target().as_str()))
        }
    }
}

/// Moves `row` by `action` as [`decide_move`] allows, conditional on the
/// status read (a concurrent change loses with a conflict). Returns the
/// status it left.
fn move_assignment(
    conn: &mut AnyConnection,
    caller: &Caller,
    row: &AssignmentRow,
    expert: &ExpertRow,
    action: AssignmentAction,
    change: &AssignmentChange<'_>,
) -> Result<AssignmentStatus, DeskError> {
    let (from, to) = decide_move(caller, row, expert, action)?;
    if !store::transition(conn, row.id, &[from.as_str()], to.as_str(), change)? {
        let now = store::find(conn, row.id)?.ok_or(DeskError::NotFound)?;
        return Err(not_in(&now.status, to.as_str()));
    }
    Ok(from)
}

/// What the case does after an expert's assignment left `from` by `action`
/// (`domain::assignment::case_effect`, with the accepted experts left now).
fn case_effect_of(
    conn: &mut AnyConnection,
    case: &CaseRow,
    action: AssignmentAction,
    from: AssignmentStatus,
) -> Result<CaseEffect, DeskError> {
    let status = case.status;
    let accepted_left = store::accepted_count(conn, case.id)?;
    let accepted_left = usize::try_from(accepted_left).map_err(|_| {
        DeskError::internal(anyhow!("case {}: accepted count {accepted_left}", case.id))
    })?;
    Ok(assignment::case_effect(action, from, status, accepted_left))
}

/// The assignment as it is now (after a change in this transaction).
fn reread(conn: &mut AnyConnection, id: i64) -> Result<AssignmentRow, DeskError> {
    store::find(conn, id)?.ok_or(DeskError::NotFound)
}

// ---------------------------------------------------------------- propose

/// Propose an expert for a case.
#[derive(Debug, Clone)]
pub struct Assign {
    /// A registered expert (any other id is refused as the `expert_id` field).
    pub expert_id: i64,
    pub role: AssignmentRole,
}

/// Proposes an expert: the case must be matching or in consultation, and
/// the expert one the suggestions would not exclude (conflict of interest,
/// paused, at capacity, declined before, already assigned); one lead per
/// case. Mails the expert; the proposal stays on the desk side of the
/// timeline until they accept.
pub async fn assign(
    desk: &Desk,
    caller: Caller,
    case_id: i64,
    command: Assign,
) -> Result<AssignmentRow, DeskError> {
    caller.require(PROPOSERS)?;
    let Assign { expert_id, role } = command;
    let notifier = desk.notifier.clone();
    desk.write_and_mail(move |conn| {
        let (case, _) = visible_case(conn, &caller, case_id)?;
        let status = case.status;
        if !matches!(status, CaseStatus::Matching | CaseStatus::InConsultation) {
            return Err(DeskError::conflict(format!(
                "experts are assigned while a case is matching or in consultation; it is {}",
                status.as_str()
            )));
        }
        let now = clock::now_micros();
        // Touching the expert first takes its row lock on PostgreSQL, so
        // two concurrent assignments of one expert cannot both pass the
        // capacity check (SQLite's single writer gives the same).
        if experts::touch_last_assigned(conn, expert_id, now)? == 0 {
            return Err(DeskError::field("expert_id", "is not a registered expert"));
        }
        let record = experts::find(conn, expert_id)?
            .ok_or_else(|| DeskError::field("expert_id", "is not a registered expert"))?;
        // The same rules as the suggestions decide whether this expert may be assigned.
        let verdict = match_case(conn, &case, &[expert_profile(&record)?], 1)?;
        if let Some(excluded) = verdict.excluded.first() {
            let mut context = serde_json::Map::new();
            context.insert("reason".into(), json!(excluded.reason.code()));
            return Err(DeskError::Conflict {
                detail: excluded.detail.clone(),
                context: Some(context),
            });
        }
        let row = store::insert(conn, case.id, expert_id, role.as_str(), caller.id, now)
            .map_err(|e| match e {
                DbError::UniqueViolation(_) => {
                    DeskError::conflict("this case already has a lead expert")
                }
                other => other.into(),
            })?;
        notifier.expert_assigned(conn, &case, record.row.user_id, role.as_str(), now)?;
        // Proposals stay on the desk side until an expert accepts.
        desk_event(
            conn,
            case.id,
            caller.id,
            "expert_assigned",
            json!({"assignment_id": row.id, "expert_id": expert_id, "expert": record.row.name, "role": role.as_str()}),
            now,
        )?;
        case_store::touch(conn, case.id, now)?;
        Ok(row)
    })
    .await
}

// ---------------------------------------------------------------- answer

/// The refusal of an acceptance that names other terms than the current
/// ones: which version is current and where to read it.
fn other_terms() -> DeskError {
    use super::terms::{CONFIDENTIALITY_TERMS_API, CONFIDENTIALITY_TERMS_PAGE};
    let mut context = serde_json::Map::new();
    context.insert(
        "terms_version".to_owned(),
        CONFIDENTIALITY_TERMS_VERSION.into(),
    );
    context.insert("terms".to_owned(), CONFIDENTIALITY_TERMS_API.into());
    DeskError::Conflict {
        detail: format!(
            "the current confidentiality terms are version {CONFIDENTIALITY_TERMS_VERSION}; \
             read them at {CONFIDENTIALITY_TERMS_PAGE} (or {CONFIDENTIALITY_TERMS_API}) and \
             accept with that version"
        ),
        context: Some(context),
    }
}

/// Accept a proposal.
#[derive(Debug, Clone, Default)]
pub struct Accept {
    /// The confidentiality terms version the expert read; when given it must
    /// be [`CONFIDENTIALITY_TERMS_VERSION`].
    pub terms_version: Option<String>,
}

/// The proposed expert accepts, acknowledging the confidentiality terms;
/// the first acceptance starts the consultation. Mails the assigning
/// supporter.
pub async fn accept(
    desk: &Desk,
    caller: Caller,
    id: i64,
    command: Accept,
) -> Result<AssignmentRow, DeskError> {
    caller.require(EXPERTS)?;
    if let Some(version) = command.terms_version.as_deref()
        && version != CONFIDENTIALITY_TERMS_VERSION
    {
        return Err(other_terms());
    }
    let notifier = desk.notifier.clone();
    desk.write_and_mail(move |conn| {
        let (row, expert) = own_assignment(conn, &caller, id)?;
        let now = clock::now_micros();
        let change = AssignmentChange {
            responded_at: Some(now),
            terms_version: Some(CONFIDENTIALITY_TERMS_VERSION),
            acknowledged_at: Some(now),
            ..Default::default()
        };
        let from = move_assignment(
            conn,
            &caller,
            &row,
            &expert,
            AssignmentAction::Accept,
            &change,
        )?;
        let (case, view) = visible_case(conn, &caller, row.case_id)?;
        if case_effect_of(conn, &case, AssignmentAction::Accept, from)?
            == CaseEffect::StartConsultation
        {
            apply(
                conn,
                &notifier,
                &caller,
                &case,
                view,
                Action::ExpertAccepted,
                Extra::default(),
                now,
            )?;
        } else {
            event(
                conn,
                case.id,
                caller.id,
                "expert_accepted",
                json!({"assignment_id": id}),
                now,
            )?;
        }
        notifier.assignment_answered(
            conn,
            &case,
            row.assigned_by,
            &expert.name,
            true,
            None,
            now,
        )?;
        reread(conn, id)
    })
    .await
}

/// Decline a proposal.
#[derive(Debug, Clone)]
pub struct Decline {
    /// Why (kept on the assignment and, desk side, in the timeline).
    pub reason: String,
}

/// The proposed expert declines with a reason; a case left without an
/// accepted expert returns to matching (and the expert is excluded from it
/// from now on). Mails the assigning supporter.
pub async fn decline(
    desk: &Desk,
    caller: Caller,
    id: i64,
    command: Decline,
) -> Result<AssignmentRow, DeskError> {
    caller.require(EXPERTS)?;
    let Decline { reason } = command;
    let notifier = desk.notifier.clone();
    desk.write_and_mail(move |conn| {
        let (row, expert) = own_assignment(conn, &caller, id)?;
        decide_move(&caller, &row, &expert, AssignmentAction::Decline)?;
        // Read the case while still assigned; afterwards it is hidden.
        let (case, view) = visible_case(conn, &caller, row.case_id)?;
        let now = clock::now_micros();
        let change = AssignmentChange {
            responded_at: Some(now),
            ended_at: Some(now),
            decline_reason: Some(&reason),
            ..Default::default()
        };
        let from = move_assignment(
            conn,
            &caller,
            &row,
            &expert,
            AssignmentAction::Decline,
            &change,
        )?;
        // The reason may concern another client of the expert: it stays
        // on the desk side of the timeline.
        desk_event(
            conn,
            case.id,
            caller.id,
            "expert_declined",
            json!({"assignment_id": id, "reason": reason}),
            now,
        )?;
        if case_effect_of(conn, &case, AssignmentAction::Decline, from)?
            == CaseEffect::BackToMatching
        {
            apply(
                conn,
                &notifier,
                &caller,
                &case,
                view,
                Action::ExpertDeclined,
                Extra::default(),
                now,
            )?;
        } else {
            case_store::touch(conn, case.id, now)?;
        }
        notifier.assignment_answered(
            conn,
            &case,
            row.assigned_by,
            &expert.name,
            false,
            Some(&reason),
            now,
        )?;
        reread(conn, id)
    })
    .await
}

// ---------------------------------------------------------------- end

/// Ends an assignment (`withdrawn` by the desk, `completed` by desk or
/// expert); a case left without an accepted expert by a withdrawal returns
/// to matching.
async fn end_assignment(
    desk: &Desk,
    caller: Caller,
    id: i64,
    action: AssignmentAction,
) -> Result<AssignmentRow, DeskError> {
    let notifier = desk.notifier.clone();
    desk.write_and_mail(move |conn| {
        let (row, expert) = if caller.role.is_desk_staff() {
            let row = store::find(conn, id)?.ok_or(DeskError::NotFound)?;
            let expert = expert_of(conn, &row)?;
            (row, expert)
        } else {
            own_assignment(conn, &caller, id)?
        };
        let now = clock::now_micros();
        let change = AssignmentChange {
            ended_at: Some(now),
            ..Default::default()
        };
        let from = move_assignment(conn, &caller, &row, &expert, action, &change)?;
        let kind = match action {
            AssignmentAction::Withdraw => "assignment_withdrawn",
            _ => "assignment_completed",
        };
        event(
            conn,
            row.case_id,
            caller.id,
            kind,
            json!({"assignment_id": id}),
            now,
        )?;
        let case = case_store::find(conn, row.case_id)?.ok_or(DeskError::NotFound)?;
        if case_effect_of(conn, &case, action, from)? == CaseEffect::BackToMatching {
            // Only desk staff withdraw, and they see the whole case.
            apply(
                conn,
                &notifier,
                &caller,
                &case,
                CaseView::Desk,
                Action::ExpertDeclined,
                Extra::default(),
                now,
            )?;
        } else {
            case_store::touch(conn, row.case_id, now)?;
        }
        reread(conn, id)
    })
    .await
}

/// The desk withdraws an expert from a case; the expert's access ends.
pub async fn withdraw(desk: &Desk, caller: Caller, id: i64) -> Result<AssignmentRow, DeskError> {
    caller.require(PROPOSERS)?;
    end_assignment(desk, caller, id, AssignmentAction::Withdraw).await
}

/// The desk or the expert marks an accepted assignment completed; the
/// expert's access ends, the case stays where it is.
pub async fn complete(desk: &Desk, caller: Caller, id: i64) -> Result<AssignmentRow, DeskError> {
    caller.require(DESK_AND_EXPERTS)?;
    end_assignment(desk, caller, id, AssignmentAction::Complete).await
}

// ---------------------------------------------------------------- reading

/// Which of an expert's own assignments to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignmentFilter {
    /// Proposed and accepted.
    Active,
    /// Every one.
    All,
}

/// One of the calling expert's assignments, with its case's number and title.
#[derive(Debug)]
pub struct MyAssignment {
    pub assignment: AssignmentRow,
    pub case_number: String,
    pub case_title: String,
}

/// The calling expert's assignments, newest first (none for an expert
/// account not in the registry).
pub async fn my_assignments(
    desk: &Desk,
    caller: Caller,
    filter: AssignmentFilter,
) -> Result<Vec<MyAssignment>, DeskError> {
    caller.require(EXPERTS)?;
    desk.read(move |conn| {
        let Some(expert) = experts::find_by_user(conn, caller.id)? else {
            return Ok(Vec::new());
        };
        Ok(
            store::for_expert(conn, expert.id, filter == AssignmentFilter::Active)?
                .into_iter()
                .map(|(assignment, case_number, case_title)| MyAssignment {
                    assignment,
                    case_number,
                    case_title,
                })
                .collect(),
        )
    })
    .await
}

/// An assignment on a case as the caller may see it, with the expert's name.
#[derive(Debug)]
pub struct CaseAssignment {
    /// For a colleague of an accepted expert, without their answers to the
    /// desk (decline reason, terms, acknowledgement): see
    /// `domain::case::assignment_disclosure`.
    pub assignment: AssignmentRow,
    pub expert_name: String,
}

/// Another expert on the case, as an accepted expert sees them: who, in
/// which role and state; nothing they answered the desk.
fn as_colleague(row: AssignmentRow) -> AssignmentRow {
    AssignmentRow {
        decline_reason: None,
        terms_version: None,
        acknowledged_at: None,
        ..row
    }
}

/// The assignments on a case, oldest first. Desk staff see all of them; an
/// expert who accepted sees their own and the experts working beside them;
/// a proposed expert sees only their own.
pub async fn case_assignments(
    desk: &Desk,
    caller: Caller,
    case_id: i64,
) -> Result<Vec<CaseAssignment>, DeskError> {
    caller.require(DESK_AND_EXPERTS)?;
    desk.read(move |conn| {
        let (case, view) = visible_case(conn, &caller, case_id)?;
        let mut shown = Vec::new();
        for (row, expert_name, user_id) in store::for_case(conn, case.id)? {
            let status = stored_status(&row)?;
            let own = user_id == caller.id;
            let assignment = match assignment_disclosure(caller.role, view, own, status) {
                AssignmentDisclosure::Full => row,
                AssignmentDisclosure::Colleague => as_colleague(row),
                AssignmentDisclosure::Hidden => continue,
            };
            shown.push(CaseAssignment {
                assignment,
                expert_name,
            });
        }
        Ok(shown)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: &str) -> AssignmentRow {
        AssignmentRow {
            id: 7,
            case_id: 3,
            expert_id: 12,
            role: "member".into(),
            status: status.into(),
            assigned_by: 1,
            created_at: 0,
            responded_at: Some(1),
            ended_at: None,
            decline_reason: Some("a client of mine".into()),
            terms_version: Some(CONFIDENTIALITY_TERMS_VERSION.into()),
            acknowledged_at: Some(1),
        }
    }

    #[test]
    fn stored_statuses_read_back_and_unknown_ones_name_the_row() {
        for status in AssignmentStatus::ALL {
            assert_eq!(stored_status(&row(status.as_str())).unwrap(), status);
        }
        match stored_status(&row("finished")) {
            Err(DeskError::Internal(source)) => assert_eq!(
                source.to_string(),
                "assignment 7: unknown status \"finished\" in the database"
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_colleague_sees_none_of_the_answers_to_the_desk() {
        let seen = as_colleague(row("accepted"));
        assert_eq!(
            (
                seen.decline_reason,
                seen.terms_version,
                seen.acknowledged_at
            ),
            (None, None, None)
        );
        assert_eq!(
            (seen.id, seen.expert_id, seen.status.as_str()),
            (7, 12, "accepted")
        );
    }

    #[test]
    fn the_decision_is_the_domain_one_with_ownership_from_the_expert_row() {
        let expert = ExpertRow {
            id: 12,
            user_id: 40,
            name: "Own".into(),
            affiliation: String::new(),
            capacity: 3,
            paused_until: None,
            last_assigned_at: None,
            created_at: 0,
            updated_at: 0,
        };
        let own = Caller {
            id: 40,
            role: Role::Expert,
            organization_id: None,
        };
        let other = Caller { id: 41, ..own };
        let staff = Caller {
            id: 1,
            role: Role::Supporter,
            organization_id: None,
        };
        let proposed = row("proposed");
        assert_eq!(
            decide_move(&own, &proposed, &expert, AssignmentAction::Accept).unwrap(),
            (AssignmentStatus::Proposed, AssignmentStatus::Accepted)
        );
        assert!(matches!(
            decide_move(&other, &proposed, &expert, AssignmentAction::Accept),
            Err(DeskError::Forbidden(_))
        ));
        assert!(matches!(
            decide_move(&staff, &proposed, &expert, AssignmentAction::Complete),
            Err(DeskError::Conflict { .. })
        ));
    }
}
