//! Meetings with experts, their advice, and the support plan.
//!
//! A meeting (面談) is put on an open case by the desk or by an expert who
//! accepted the case (for themself). Scheduled ahead, it mails the applicant
//! and the expert an invitation (with the video-call link, if any); recorded
//! after it took place, it mails nobody. See `domain::meeting`. The support plan (支援計画) is written by the
//! desk in revisions that are never overwritten, and read by the desk and
//! accepted experts.

use std::ops::RangeInclusive;

use chrono::{DateTime, FixedOffset};
use serde_json::json;

use super::assignments::{desk_event, event, stored_status};
use super::cases::{refuse_managers, visible_case};
use super::{Desk, DeskError};
use crate::clock;
use crate::db::AnyConnection;
use crate::db::assignments::{self as store, MeetingRow, NewMeeting, PlanRow};
use crate::db::cases::{self as case_store, CaseRow};
use crate::db::experts;
use crate::domain::assignment::AssignmentStatus;
use crate::domain::case::CaseView;
use crate::domain::meeting::{Timing, VideoUrl, check_start};
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
/// The longest notes of a recorded meeting, in characters.
pub const NOTES_MAX_CHARS: usize = 20_000;
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

/// Schedule a meeting of an expert on a case: it starts in the future and
/// its invitation is mailed.
#[derive(Debug, Clone)]
pub struct ScheduleMeeting {
    /// A registered expert with an accepted assignment on the case.
    pub expert_id: i64,
    /// After now ([`Timing::Scheduled`]); checked against the desk's clock
    /// here, where the invitation is queued.
    pub starts_at: DateTime<FixedOffset>,
    /// One of [`DURATION_MINUTES`].
    pub duration_minutes: i32,
    pub mode: MeetingMode,
    /// Put in the invitation and the .ics.
    pub video_url: Option<VideoUrl>,
    /// The advice given (usually recorded later with [`record_advice`]).
    pub advice_summary: Option<String>,
}

/// Record a meeting that took place already: nobody is mailed.
#[derive(Debug, Clone)]
pub struct RecordMeeting {
    /// A registered expert with an accepted (or completed) assignment on
    /// the case.
    pub expert_id: i64,
    /// Before now ([`Timing::Recorded`]).
    pub starts_at: DateTime<FixedOffset>,
    /// One of [`DURATION_MINUTES`].
    pub duration_minutes: i32,
    pub mode: MeetingMode,
    /// What it was about, at most [`NOTES_MAX_CHARS`].
    pub notes: Option<String>,
    /// The advice given, at most [`ADVICE_MAX_CHARS`].
    pub advice_summary: Option<String>,
}

/// Schedules a meeting: the event, and the invitation (.ics) mailed to the
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
        video_url,
        advice_summary,
    } = command;
    let starts_at = check_start(starts_at, clock::now_micros(), Timing::Scheduled)
        .map_err(|why| DeskError::field("starts_at", why))?;
    let notifier = desk.notifier.clone();
    desk.write_and_mail(move |conn| {
        let video_url = video_url.map(VideoUrl::into_string);
        let new = NewMeeting {
            case_id,
            expert_id,
            starts_at,
            duration_minutes,
            mode: mode.as_str(),
            advice_summary: advice_summary.as_deref(),
            video_url: video_url.as_deref(),
            recorded: false,
            notes: None,
            created_by: caller.id,
            now: clock::now_micros(),
        };
        let (case, meeting) = insert_meeting(conn, &caller, new, Timing::Scheduled)?;
        notifier.meeting_scheduled(
            conn,
            &case,
            meeting.row.id,
            meeting.expert_user_id,
            &meeting.expert_name,
            starts_at,
            duration_minutes,
            mode.as_str(),
            video_url.as_deref(),
            meeting.row.created_at,
        )?;
        Ok(meeting.into())
    })
    .await
}

/// Records a meeting that took place: the event and the row, no mail.
pub async fn record_meeting(
    desk: &Desk,
    caller: Caller,
    case_id: i64,
    command: RecordMeeting,
) -> Result<Meeting, DeskError> {
    caller.require(RECORDERS)?;
    let RecordMeeting {
        expert_id,
        starts_at,
        duration_minutes,
        mode,
        notes,
        advice_summary,
    } = command;
    let starts_at = check_start(starts_at, clock::now_micros(), Timing::Recorded)
        .map_err(|why| DeskError::field("starts_at", why))?;
    desk.write(move |conn| {
        let new = NewMeeting {
            case_id,
            expert_id,
            starts_at,
            duration_minutes,
            mode: mode.as_str(),
            advice_summary: advice_summary.as_deref(),
            video_url: None,
            recorded: true,
            notes: notes.as_deref(),
            created_by: caller.id,
            now: clock::now_micros(),
        };
        let (_, meeting) = insert_meeting(conn, &caller, new, Timing::Recorded)?;
        Ok(meeting.into())
    })
    .await
}

/// A meeting just stored, with what its mail needs.
struct Inserted {
    row: MeetingRow,
    expert_name: String,
    expert_user_id: i64,
}

impl From<Inserted> for Meeting {
    fn from(inserted: Inserted) -> Self {
        Meeting {
            row: inserted.row,
            expert_name: inserted.expert_name,
        }
    }
}

/// Who may put a meeting on the case, the row, its event (`meeting_scheduled`
/// or `meeting_recorded`) and the case's touch: what scheduling and
/// recording share. A scheduled meeting's expert must be accepted on the
/// case; a recorded one's may have completed their assignment since.
fn insert_meeting(
    conn: &mut AnyConnection,
    caller: &Caller,
    new: NewMeeting<'_>,
    timing: Timing,
) -> Result<(CaseRow, Inserted), DeskError> {
    let (case, view) = visible_case(conn, caller, new.case_id)?;
    require_desk_view(view)?;
    if case.status == CaseStatus::Closed {
        return Err(DeskError::conflict("the case is closed"));
    }
    let expert = experts::find_row(conn, new.expert_id)?
        .ok_or_else(|| DeskError::field("expert_id", "is not a registered expert"))?;
    if caller.role == Role::Expert && expert.user_id != caller.id {
        return Err(DeskError::Forbidden("experts record their own meetings"));
    }
    let mut engaged = false;
    for (assignment, _, _) in store::for_case(conn, case.id)? {
        if assignment.expert_id == new.expert_id {
            engaged |= match stored_status(&assignment)? {
                AssignmentStatus::Accepted => true,
                AssignmentStatus::Completed => timing == Timing::Recorded,
                _ => false,
            };
        }
    }
    if !engaged {
        return Err(DeskError::conflict(match timing {
            Timing::Scheduled => "this expert has not accepted an assignment on this case",
            Timing::Recorded => {
                "this expert has neither accepted nor completed an assignment on this case"
            }
        }));
    }
    let now = new.now;
    let row = store::insert_meeting(conn, &new)?;
    let kind = match timing {
        Timing::Scheduled => "meeting_scheduled",
        Timing::Recorded => "meeting_recorded",
    };
    event(
        conn,
        case.id,
        caller.id,
        kind,
        json!({"meeting_id": row.id, "expert": expert.name, "starts_at": clock::to_rfc3339(row.starts_at),
               "duration_minutes": row.duration_minutes, "mode": row.mode}),
        now,
    )?;
    case_store::touch(conn, case.id, now)?;
    Ok((
        case,
        Inserted {
            row,
            expert_name: expert.name,
            expert_user_id: expert.user_id,
        },
    ))
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
