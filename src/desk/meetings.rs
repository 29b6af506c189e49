//! Meetings with experts, their advice, and the support plan.
//!
//! A meeting (面談) is recorded by the desk or by an expert who accepted the
//! case (for themself), while the case is open; it mails the applicant and
//! the expert an invitation. The support plan (支援計画) is written by the
//! desk in revisions that are never overwritten, and read by the desk and
//! accepted experts.

use std::ops::RangeInclusive;

use chrono::{DateTime, FixedOffset};
use serde_json::json;

use super::assignments::{desk_event, event, stored_status};
use super::cases::{DESK_STAFF, refuse_managers, visible_case};
use super::{Desk, DeskError};
use crate::clock;
use crate::db::assignments::{self as store, MeetingRow, NewMeeting, PlanRow};
use crate::db::cases as case_store;
use crate::db::experts;
use crate::domain::assignment::AssignmentStatus;
use crate::domain::case::CaseView;
use crate::domain::plan::{self, RevisionKind};
use crate::domain::role::{Caller, Role};
use crate::domain::vocabulary::{CaseStatus, MeetingMode};

/// Who record meetings: the desk, and experts (their own, once accepted).
pub const RECORDERS: &[Role] = &[Role::Supporter, Role::Admin, Role::Expert];
/// Who write the support plan: the desk writes the plan, accepted experts
/// propose text for it (`domain::plan`).
pub const PLANNERS: &[Role] = &[Role::Supporter, Role::Admin, Role::Expert];

/// How long a meeting may be, in minutes.
pub const DURATION_MINUTES: RangeInclusive<i32> = 5..=480;
/// The longest advice summary, in characters.
pub const ADVICE_MAX_CHARS: usize = 20_000;
/// The longest revision of a support plan, in characters.
pub const PLAN_MAX_CHARS: usize = 20_000;

/// A meeting with the name of its expert.
#[derive(Debug)]
pub struct Meeting {
    pub row: MeetingRow,
    pub expert_name: String,
}

/// A desk-side participant: staff, or an expert who accepted this case.
fn require_desk_view(view: CaseView) -> Result<(), DeskError> {
    if view == CaseView::Desk {
        Ok(())
    } else {
        Err(DeskError::Forbidden(
            "only the desk and accepted experts may do this",
        ))
    }
}

// ---------------------------------------------------------------- meetings

/// Record a meeting of an expert on a case.
#[derive(Debug, Clone)]
pub struct ScheduleMeeting {
    /// A registered expert with an accepted assignment on the case.
    pub expert_id: i64,
    pub starts_at: DateTime<FixedOffset>,
    /// One of [`DURATION_MINUTES`].
    pub duration_minutes: i32,
    pub mode: MeetingMode,
    /// The advice given, when the meeting took place already.
    pub advice_summary: Option<String>,
}

/// Records a meeting: the event, and the invitation (.ics) mailed to the
/// applicant and the expert.
pub async fn schedule_meeting(
    desk: &Desk,
    caller: Caller,
    case_id: i64,
    command: ScheduleMeeting,
) -> Result<Meeting, DeskError> {
    caller.require(RECORDERS)?;
    let ScheduleMeeting {
        expert_id,
        starts_at,
        duration_minutes,
        mode,
        advice_summary,
    } = command;
    let starts_at = starts_at.timestamp_micros();
    let notifier = desk.notifier.clone();
    desk.write_and_mail(move |conn| {
        let (case, view) = visible_case(conn, &caller, case_id)?;
        require_desk_view(view)?;
        if case.status == CaseStatus::Closed {
            return Err(DeskError::conflict("the case is closed"));
        }
        let expert = experts::find_row(conn, expert_id)?
            .ok_or_else(|| DeskError::field("expert_id", "is not a registered expert"))?;
        if caller.role == Role::Expert && expert.user_id != caller.id {
            return Err(DeskError::Forbidden("experts record their own meetings"));
        }
        let mut accepted = false;
        for (assignment, _, _) in store::for_case(conn, case.id)? {
            if assignment.expert_id == expert_id
                && stored_status(&assignment)? == AssignmentStatus::Accepted
            {
                accepted = true;
            }
        }
        if !accepted {
            return Err(DeskError::conflict(
                "this expert has not accepted an assignment on this case",
            ));
        }
        let now = clock::now_micros();
        let row = store::insert_meeting(
            conn,
            &NewMeeting {
                case_id: case.id,
                expert_id,
                starts_at,
                duration_minutes,
                mode: mode.as_str(),
                advice_summary: advice_summary.as_deref(),
                created_by: caller.id,
                now,
            },
        )?;
        event(
            conn,
            case.id,
            caller.id,
            "meeting_scheduled",
            json!({"meeting_id": row.id, "expert": expert.name, "starts_at": clock::to_rfc3339(starts_at),
                   "duration_minutes": duration_minutes, "mode": mode.as_str()}),
            now,
        )?;
        notifier.meeting_scheduled(
            conn,
            &case,
            row.id,
            expert.user_id,
            &expert.name,
            starts_at,
            duration_minutes,
            mode.as_str(),
            now,
        )?;
        case_store::touch(conn, case.id, now)?;
        Ok(Meeting {
            row,
            expert_name: expert.name,
        })
    })
    .await
}

/// The meetings of a case, in time order (the desk and accepted experts).
pub async fn meetings(
    desk: &Desk,
    caller: Caller,
    case_id: i64,
) -> Result<Vec<Meeting>, DeskError> {
    refuse_managers(&caller)?;
    desk.read(move |conn| {
        let (case, view) = visible_case(conn, &caller, case_id)?;
        if view == CaseView::ExpertSummary {
            return Err(DeskError::Forbidden("accept the assignment first"));
        }
        Ok(store::meetings_of(conn, case.id)?
            .into_iter()
            .map(|(row, expert_name)| Meeting { row, expert_name })
            .collect())
    })
    .await
}

/// Record the advice given in a meeting.
#[derive(Debug, Clone)]
pub struct RecordAdvice {
    /// At most [`ADVICE_MAX_CHARS`].
    pub advice_summary: String,
}

/// Records (or replaces) a meeting's advice: the desk, or that meeting's
/// expert.
pub async fn record_advice(
    desk: &Desk,
    caller: Caller,
    meeting_id: i64,
    command: RecordAdvice,
) -> Result<Meeting, DeskError> {
    refuse_managers(&caller)?;
    let RecordAdvice { advice_summary } = command;
    desk.write(move |conn| {
        let meeting = store::find_meeting(conn, meeting_id)?.ok_or(DeskError::NotFound)?;
        let (case, view) = visible_case(conn, &caller, meeting.case_id)?;
        require_desk_view(view)?;
        let expert = experts::find_row(conn, meeting.expert_id)?.ok_or(DeskError::NotFound)?;
        if caller.role == Role::Expert && expert.user_id != caller.id {
            return Err(DeskError::Forbidden(
                "only that meeting's expert records its advice",
            ));
        }
        let now = clock::now_micros();
        store::set_advice(conn, meeting_id, &advice_summary, now)?;
        event(
            conn,
            case.id,
            caller.id,
            "advice_recorded",
            json!({"meeting_id": meeting_id}),
            now,
        )?;
        let row = store::find_meeting(conn, meeting_id)?.ok_or(DeskError::NotFound)?;
        Ok(Meeting {
            row,
            expert_name: expert.name,
        })
    })
    .await
}

// ---------------------------------------------------------------- support plan

/// A support plan: every revision, newest first (none before the first is
/// written).
#[derive(Debug)]
pub struct SupportPlan {
    /// Newest first, each with what it is; for the startup only the
    /// current plan.
    pub revisions: Vec<(RevisionKind, PlanRow)>,
}

/// Each revision with its kind, newest first.
fn revisions_of(
    conn: &mut crate::db::AnyConnection,
    case_id: i64,
) -> Result<Vec<(RevisionKind, PlanRow)>, DeskError> {
    store::plan_revisions(conn, case_id)?
        .into_iter()
        .map(|row| {
            let role: Role = row.author_role.parse().map_err(|_| {
                DeskError::internal(anyhow::anyhow!(
                    "user {}: unknown role {:?} in the database",
                    row.author_id,
                    row.author_role
                ))
            })?;
            Ok((RevisionKind::written_by(role), row))
        })
        .collect()
}

/// Write the next revision of a case's support plan.
#[derive(Debug, Clone)]
pub struct WritePlan {
    /// At most [`PLAN_MAX_CHARS`].
    pub body: String,
}

/// Adds a revision of the support plan: the plan when the desk writes it, a
/// proposal when an accepted expert does. The event stays on the desk side.
pub async fn write_plan(
    desk: &Desk,
    caller: Caller,
    case_id: i64,
    command: WritePlan,
) -> Result<SupportPlan, DeskError> {
    caller.require(PLANNERS)?;
    let WritePlan { body } = command;
    desk.write(move |conn| {
        let (case, view) = visible_case(conn, &caller, case_id)?;
        require_desk_view(view)?;
        let now = clock::now_micros();
        let revision = store::add_plan_revision(conn, case.id, &body, caller.id, now)?;
        let event = match RevisionKind::written_by(caller.role) {
            RevisionKind::Plan => "support_plan_revised",
            RevisionKind::Proposal => "support_plan_proposed",
        };
        desk_event(
            conn,
            case.id,
            caller.id,
            event,
            json!({ "revision": revision }),
            now,
        )?;
        case_store::touch(conn, case.id, now)?;
        Ok(SupportPlan {
            revisions: revisions_of(conn, case.id)?,
        })
    })
    .await
}

/// The support plan of a case: every revision for the desk and accepted
/// experts, the current plan alone for the startup.
pub async fn support_plan(
    desk: &Desk,
    caller: Caller,
    case_id: i64,
) -> Result<SupportPlan, DeskError> {
    refuse_managers(&caller)?;
    desk.read(move |conn| {
        let (case, view) = visible_case(conn, &caller, case_id)?;
        let revisions = revisions_of(conn, case.id)?;
        let revisions = match view {
            CaseView::Desk => revisions,
            CaseView::Applicant => plan::applicant_view(revisions),
            CaseView::ExpertSummary | CaseView::Hidden => {
                return Err(DeskError::Forbidden(
                    "only the desk, accepted experts and the startup read the plan",
                ));
            }
        };
        Ok(SupportPlan { revisions })
    })
    .await
}
