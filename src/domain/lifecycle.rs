//! The case lifecycle of PRODUCT.md: the one place that decides which change
//! of a case's status is allowed, for whom, and what it leads to.
//!
//! Handlers call [`decide`] and store the [`Transition`] it returns, or turn
//! the [`Refusal`] into 403/409. Clients are shown [`allowed_actions`], which
//! is derived from the same rules, so UI and server never disagree.
//!
//! Two kinds of action are never offered on a case: an expert's acceptance
//! and decline happen through the assignment (`POST /assignments/{id}/…`),
//! which then asks [`decide`] about the case. Everything [`allowed_actions`]
//! lists is a [case action](ActionKind::is_case_action), which its caller can
//! take as `POST /cases/{id}/actions/{action}`.
//!
//! ```text
//! submitted ─▶ triage ─▶ matching ─▶ in_consultation ─▶ closed
//!                │  ▲        │            │   ▲
//!                ▼  │        └────────────┘   │ (follow-up)
//!           awaiting_info ───────────────────┘
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

use super::role::Role;
use super::vocabulary::{CaseStatus, Outcome, Route};

/// Something a person (or the system, acting as staff) asks to do to a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A supporter takes a new case: `submitted → triage`.
    Claim,
    /// Triage is done and says where the case goes next.
    Triage { route: Route },
    /// The desk asks the applicant something: `→ awaiting_info`.
    RequestInfo,
    /// The applicant answered: back to where the case was.
    ApplicantReply,
    /// A case handled directly needs an expert after all.
    StartMatching,
    /// An assigned expert accepted.
    ExpertAccepted,
    /// An assigned expert declined or stepped down and none remains.
    ExpertDeclined,
    /// The supporter decides to handle a matching case directly.
    StartConsultation,
    /// The desk closes the case.
    Close { outcome: Outcome },
    /// The applicant withdraws its case.
    Withdraw,
    /// A supporter reopens a closed case for follow-up.
    Reopen,
}

impl Action {
    /// The action without its parameters.
    pub const fn kind(&self) -> ActionKind {
        match self {
            Self::Claim => ActionKind::Claim,
            Self::Triage { .. } => ActionKind::Triage,
            Self::RequestInfo => ActionKind::RequestInfo,
            Self::ApplicantReply => ActionKind::ApplicantReply,
            Self::StartMatching => ActionKind::StartMatching,
            Self::ExpertAccepted => ActionKind::ExpertAccepted,
            Self::ExpertDeclined => ActionKind::ExpertDeclined,
            Self::StartConsultation => ActionKind::StartConsultation,
            Self::Close { .. } => ActionKind::Close,
            Self::Withdraw => ActionKind::Withdraw,
            Self::Reopen => ActionKind::Reopen,
        }
    }
}

/// [`Action`] without parameters: what the API lists as allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    Claim,
    Triage,
    RequestInfo,
    ApplicantReply,
    StartMatching,
    ExpertAccepted,
    ExpertDeclined,
    StartConsultation,
    Close,
    Withdraw,
    Reopen,
}

impl ActionKind {
    /// Every kind, in the order allowed lists are given.
    pub const ALL: [Self; 11] = [
        Self::Claim,
        Self::Triage,
        Self::RequestInfo,
        Self::ApplicantReply,
        Self::StartMatching,
        Self::ExpertAccepted,
        Self::ExpertDeclined,
        Self::StartConsultation,
        Self::Close,
        Self::Withdraw,
        Self::Reopen,
    ];

    /// The kinds a person takes on the case itself, in [`Self::ALL`] order:
    /// every kind but the expert's answers, which follow from an assignment.
    pub const CASE_ACTIONS: [Self; 9] = [
        Self::Claim,
        Self::Triage,
        Self::RequestInfo,
        Self::ApplicantReply,
        Self::StartMatching,
        Self::StartConsultation,
        Self::Close,
        Self::Withdraw,
        Self::Reopen,
    ];

    /// Whether this kind is taken on the case (and so may be offered in
    /// [`allowed_actions`]) rather than following from an assignment.
    pub const fn is_case_action(self) -> bool {
        !matches!(self, Self::ExpertAccepted | Self::ExpertDeclined)
    }

    /// The case action with this code, if any.
    pub fn case_action(code: &str) -> Option<Self> {
        Self::CASE_ACTIONS
            .into_iter()
            .find(|kind| kind.as_str() == code)
    }

    /// The API code (same as serde).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Claim => "claim",
            Self::Triage => "triage",
            Self::RequestInfo => "request_info",
            Self::ApplicantReply => "applicant_reply",
            Self::StartMatching => "start_matching",
            Self::ExpertAccepted => "expert_accepted",
            Self::ExpertDeclined => "expert_declined",
            Self::StartConsultation => "start_consultation",
            Self::Close => "close",
            Self::Withdraw => "withdraw",
            Self::Reopen => "reopen",
        }
    }

    /// An action of this kind that is valid in exactly the states where any
    /// action of this kind is: every route leaves triage, and every outcome
    /// but `withdrawn` closes from the same states.
    const fn representative(self) -> Action {
        match self {
            Self::Claim => Action::Claim,
            Self::Triage => Action::Triage {
                route: Route::Direct,
            },
            Self::RequestInfo => Action::RequestInfo,
            Self::ApplicantReply => Action::ApplicantReply,
            Self::StartMatching => Action::StartMatching,
            Self::ExpertAccepted => Action::ExpertAccepted,
            Self::ExpertDeclined => Action::ExpertDeclined,
            Self::StartConsultation => Action::StartConsultation,
            Self::Close => Action::Close {
                outcome: Outcome::Resolved,
            },
            Self::Withdraw => Action::Withdraw,
            Self::Reopen => Action::Reopen,
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is acting, with the relations to this case that decide what they may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub role: Role,
    /// An applicant who belongs to the case's organisation.
    pub is_member: bool,
    /// An expert currently assigned to the case.
    pub is_assigned_expert: bool,
}

/// The part of a case the lifecycle looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaseState {
    pub status: CaseStatus,
    /// Where an `awaiting_info` case returns once the applicant replies.
    pub resume_to: Option<CaseStatus>,
}

impl CaseState {
    /// A case in `status` with nothing to resume to.
    pub const fn new(status: CaseStatus) -> Self {
        Self {
            status,
            resume_to: None,
        }
    }
}

/// An accepted change. The caller stores all three fields as given: `None`
/// clears the stored value (so reopening clears the outcome, and leaving
/// `awaiting_info` clears `resume_to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub to: CaseStatus,
    /// `Some` exactly when `to` is `closed`.
    pub outcome: Option<Outcome>,
    /// `Some` exactly when `to` is `awaiting_info`.
    pub resume_to: Option<CaseStatus>,
}

impl Transition {
    const fn to(status: CaseStatus) -> Self {
        Self {
            to: status,
            outcome: None,
            resume_to: None,
        }
    }

    const fn closed(outcome: Outcome) -> Self {
        Self {
            to: CaseStatus::Closed,
            outcome: Some(outcome),
            resume_to: None,
        }
    }
}

/// Why [`decide`] said no. Both carry what the actor *may* do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The actor's role, or its relation to the case, never allows this kind
    /// of action (HTTP 403).
    NotPermitted { allowed: Vec<ActionKind> },
    /// The actor may do this kind of action, but not from the case's current
    /// state (HTTP 409).
    InvalidTransition {
        from: CaseStatus,
        allowed: Vec<ActionKind>,
    },
}

impl Refusal {
    /// The actions the actor may take instead.
    pub fn allowed(&self) -> &[ActionKind] {
        match self {
            Self::NotPermitted { allowed } | Self::InvalidTransition { allowed, .. } => allowed,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotPermitted { .. } => f.write_str("not permitted")?,
            Self::InvalidTransition { from, .. } => write!(f, "not possible from {from}")?,
        }
        f.write_str("; allowed: ")?;
        let allowed = self.allowed();
        if allowed.is_empty() {
            return f.write_str("none");
        }
        for (i, kind) in allowed.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(kind.as_str())?;
        }
        Ok(())
    }
}

impl std::error::Error for Refusal {}

/// Decides whether `actor` may apply `action` to a case in `state`, and if so
/// what the case becomes.
///
/// Permission is checked before state, so an actor who could never do this
/// learns that (403) rather than the case's state (409).
pub fn decide(state: &CaseState, action: &Action, actor: &Actor) -> Result<Transition, Refusal> {
    if !may_perform(actor, action.kind()) {
        return Err(Refusal::NotPermitted {
            allowed: allowed_actions(state, actor),
        });
    }
    next(state, action).ok_or_else(|| Refusal::InvalidTransition {
        from: state.status,
        allowed: allowed_actions(state, actor),
    })
}

/// The case actions `actor` may take on a case in `state`, in
/// [`ActionKind::ALL`] order: each one is accepted by [`decide`] for some
/// parameters. The expert's answers are never listed (they follow from an
/// assignment, not from the case).
pub fn allowed_actions(state: &CaseState, actor: &Actor) -> Vec<ActionKind> {
    ActionKind::CASE_ACTIONS
        .into_iter()
        .filter(|&kind| may_perform(actor, kind) && next(state, &kind.representative()).is_some())
        .collect()
}

/// Whether someone of `role` may ever take this kind of action on a case
/// (given the right relation to it: a member's own case, an expert's
/// assignment). Interfaces refuse everyone else before reading a body.
pub const fn role_may(role: Role, kind: ActionKind) -> bool {
    use ActionKind as K;
    match role {
        // Staff act for everyone: they record replies and withdrawals made
        // by phone or mail, and expert responses are relayed as staff.
        Role::Supporter | Role::Admin => true,
        Role::Applicant => matches!(kind, K::ApplicantReply | K::Withdraw),
        Role::Expert => matches!(kind, K::ExpertAccepted | K::ExpertDeclined),
        // Managers see statistics only; they never touch a case.
        Role::Manager => false,
    }
}

/// Whether the actor may ever do this kind of action, whatever the state.
fn may_perform(actor: &Actor, kind: ActionKind) -> bool {
    let related = match actor.role {
        Role::Applicant => actor.is_member,
        Role::Expert => actor.is_assigned_expert,
        Role::Supporter | Role::Admin | Role::Manager => true,
    };
    related && role_may(actor.role, kind)
}

/// The state rules alone: where `action` leads from `state`, if anywhere.
fn next(state: &CaseState, action: &Action) -> Option<Transition> {
    use CaseStatus as S;
    let from = state.status;
    let open = from != S::Closed;
    let transition = match (*action, from) {
        (Action::Claim, S::Submitted) => Transition::to(S::Triage),
        (Action::Triage { route }, S::Triage) => match route {
            // Open Hours is handled by the desk: it proposes a session and
            // follows up, so the case is in consultation meanwhile.
            Route::Direct | Route::OpenHours => Transition::to(S::InConsultation),
            Route::Expert => Transition::to(S::Matching),
            Route::Refer => Transition::closed(Outcome::Referred),
        },
        (Action::RequestInfo, S::Triage | S::Matching | S::InConsultation) => Transition {
            to: S::AwaitingInfo,
            outcome: None,
            resume_to: Some(from),
        },
        (Action::ApplicantReply, S::AwaitingInfo) => Transition::to(resume_target(state.resume_to)),
        (Action::StartMatching, S::InConsultation) => Transition::to(S::Matching),
        (Action::ExpertAccepted, S::Matching) => Transition::to(S::InConsultation),
        // Whether any other expert remains is the caller's to know; it only
        // asks when none does.
        (Action::ExpertDeclined, S::Matching | S::InConsultation) => Transition::to(S::Matching),
        (Action::StartConsultation, S::Matching) => Transition::to(S::InConsultation),
        // `withdrawn` records the applicant's own decision, so it is reached
        // only through Withdraw (which staff may also perform on the
        // applicant's behalf). Closing with it is refused as an impossible
        // transition (409) rather than 403: staff may close, just not with
        // this outcome, and the allowed list points them to `withdraw`.
        (Action::Close { outcome }, _) if open && outcome != Outcome::Withdrawn => {
            Transition::closed(outcome)
        }
        (Action::Withdraw, _) if open => Transition::closed(Outcome::Withdrawn),
        (Action::Reopen, S::Closed) => Transition::to(S::InConsultation),
        _ => return None,
    };
    Some(transition)
}

/// Where a reply returns the case. Only the states [`Action::RequestInfo`]
/// leaves can be resumed; anything else stored (none, or corrupt data) falls
/// back to triage, where a supporter looks at the case again.
fn resume_target(resume_to: Option<CaseStatus>) -> CaseStatus {
    match resume_to {
        Some(status @ (CaseStatus::Triage | CaseStatus::Matching | CaseStatus::InConsultation)) => {
            status
        }
        _ => CaseStatus::Triage,
    }
}

#[cfg(test)]
mod tests {
    use super::Outcome as O;
    use super::*;
    use ActionKind as K;
    use CaseStatus as S;

    const ROLES: [Role; 5] = [
        Role::Applicant,
        Role::Supporter,
        Role::Expert,
        Role::Manager,
        Role::Admin,
    ];

    fn actor(role: Role) -> Actor {
        Actor {
            role,
            is_member: false,
            is_assigned_expert: false,
        }
    }

    fn member() -> Actor {
        Actor {
            is_member: true,
            ..actor(Role::Applicant)
        }
    }

    fn assigned_expert() -> Actor {
        Actor {
            is_assigned_expert: true,
            ..actor(Role::Expert)
        }
    }

    fn supporter() -> Actor {
        actor(Role::Supporter)
    }

    fn awaiting(resume_to: Option<CaseStatus>) -> CaseState {
        CaseState {
            status: S::AwaitingInfo,
            resume_to,
        }
    }

    /// Every role with every combination of the two relation flags.
    fn all_actors() -> Vec<Actor> {
        let mut actors = Vec::new();
        for role in ROLES {
            for is_member in [false, true] {
                for is_assigned_expert in [false, true] {
                    actors.push(Actor {
                        role,
                        is_member,
                        is_assigned_expert,
                    });
                }
            }
        }
        actors
    }

    /// Every action with every parameter value.
    fn all_actions() -> Vec<Action> {
        let mut actions = vec![
            Action::Claim,
            Action::RequestInfo,
            Action::ApplicantReply,
            Action::StartMatching,
            Action::ExpertAccepted,
            Action::ExpertDeclined,
            Action::StartConsultation,
            Action::Withdraw,
            Action::Reopen,
        ];
        actions.extend(Route::ALL.map(|route| Action::Triage { route }));
        actions.extend(O::ALL.map(|outcome| Action::Close { outcome }));
        actions
    }

    /// Every status with every stored `resume_to`, including values that only
    /// corrupt data could hold: they must not change anything but a reply.
    fn all_states() -> Vec<CaseState> {
        let mut states = Vec::new();
        for status in S::ALL {
            states.push(CaseState::new(status));
            for resume in S::ALL {
                states.push(CaseState {
                    status,
                    resume_to: Some(resume),
                });
            }
        }
        states
    }

    /// What a valid action leads to, as written in the expected table.
    #[derive(Debug, Clone, Copy)]
    enum Expect {
        To(CaseStatus),
        /// `awaiting_info`, remembering the status it came from.
        AskApplicant,
        /// Back to the stored `resume_to` (see `EXPECTED_RESUME`).
        Resume,
        Closed(Outcome),
    }
    use Expect::*;

    const fn triage(route: Route) -> Action {
        Action::Triage { route }
    }

    const fn close(outcome: Outcome) -> Action {
        Action::Close { outcome }
    }

    /// Every valid (status, action) pair for an actor allowed the action's
    /// kind. Everything not listed is an invalid transition.
    #[rustfmt::skip]
    const EXPECTED: &[(CaseStatus, Action, Expect)] = &[
        (S::Submitted,      Action::Claim,             To(S::Triage)),
        (S::Submitted,      close(O::Resolved),        Closed(O::Resolved)),
        (S::Submitted,      close(O::Referred),        Closed(O::Referred)),
        (S::Submitted,      close(O::OutOfScope),      Closed(O::OutOfScope)),
        (S::Submitted,      close(O::NoResponse),      Closed(O::NoResponse)),
        (S::Submitted,      close(O::Duplicate),       Closed(O::Duplicate)),
        (S::Submitted,      Action::Withdraw,          Closed(O::Withdrawn)),
        //
        (S::Triage,         triage(Route::Direct),     To(S::InConsultation)),
        (S::Triage,         triage(Route::Expert),     To(S::Matching)),
        (S::Triage,         triage(Route::OpenHours),  To(S::InConsultation)),
        (S::Triage,         triage(Route::Refer),      Closed(O::Referred)),
        (S::Triage,         Action::RequestInfo,       AskApplicant),
        (S::Triage,         close(O::Resolved),        Closed(O::Resolved)),
        (S::Triage,         close(O::Referred),        Closed(O::Referred)),
        (S::Triage,         close(O::OutOfScope),      Closed(O::OutOfScope)),
        (S::Triage,         close(O::NoResponse),      Closed(O::NoResponse)),
        (S::Triage,         close(O::Duplicate),       Closed(O::Duplicate)),
        (S::Triage,         Action::Withdraw,          Closed(O::Withdrawn)),
        //
        (S::AwaitingInfo,   Action::ApplicantReply,    Resume),
        (S::AwaitingInfo,   close(O::Resolved),        Closed(O::Resolved)),
        (S::AwaitingInfo,   close(O::Referred),        Closed(O::Referred)),
        (S::AwaitingInfo,   close(O::OutOfScope),      Closed(O::OutOfScope)),
        (S::AwaitingInfo,   close(O::NoResponse),      Closed(O::NoResponse)),
        (S::AwaitingInfo,   close(O::Duplicate),       Closed(O::Duplicate)),
        (S::AwaitingInfo,   Action::Withdraw,          Closed(O::Withdrawn)),
        //
        (S::Matching,       Action::RequestInfo,       AskApplicant),
        (S::Matching,       Action::ExpertAccepted,    To(S::InConsultation)),
        (S::Matching,       Action::ExpertDeclined,    To(S::Matching)),
        (S::Matching,       Action::StartConsultation, To(S::InConsultation)),
        (S::Matching,       close(O::Resolved),        Closed(O::Resolved)),
        (S::Matching,       close(O::Referred),        Closed(O::Referred)),
        (S::Matching,       close(O::OutOfScope),      Closed(O::OutOfScope)),
        (S::Matching,       close(O::NoResponse),      Closed(O::NoResponse)),
        (S::Matching,       close(O::Duplicate),       Closed(O::Duplicate)),
        (S::Matching,       Action::Withdraw,          Closed(O::Withdrawn)),
        //
        (S::InConsultation, Action::RequestInfo,       AskApplicant),
        (S::InConsultation, Action::StartMatching,     To(S::Matching)),
        (S::InConsultation, Action::ExpertDeclined,    To(S::Matching)),
        (S::InConsultation, close(O::Resolved),        Closed(O::Resolved)),
        (S::InConsultation, close(O::Referred),        Closed(O::Referred)),
        (S::InConsultation, close(O::OutOfScope),      Closed(O::OutOfScope)),
        (S::InConsultation, close(O::NoResponse),      Closed(O::NoResponse)),
        (S::InConsultation, close(O::Duplicate),       Closed(O::Duplicate)),
        (S::InConsultation, Action::Withdraw,          Closed(O::Withdrawn)),
        //
        (S::Closed,         Action::Reopen,            To(S::InConsultation)),
    ];

    /// Stored `resume_to` → where a reply leads.
    const EXPECTED_RESUME: [(Option<CaseStatus>, CaseStatus); 7] = [
        (None, S::Triage),
        (Some(S::Submitted), S::Triage),
        (Some(S::Triage), S::Triage),
        (Some(S::AwaitingInfo), S::Triage),
        (Some(S::Matching), S::Matching),
        (Some(S::InConsultation), S::InConsultation),
        (Some(S::Closed), S::Triage),
    ];

    /// The kinds each actor may ever perform.
    fn expected_permitted(actor: &Actor) -> &'static [ActionKind] {
        match (actor.role, actor.is_member, actor.is_assigned_expert) {
            (Role::Supporter | Role::Admin, _, _) => &ActionKind::ALL,
            (Role::Applicant, true, _) => &[K::ApplicantReply, K::Withdraw],
            (Role::Expert, _, true) => &[K::ExpertAccepted, K::ExpertDeclined],
            (Role::Applicant | Role::Expert | Role::Manager, _, _) => &[],
        }
    }

    fn expected_transition(state: &CaseState, action: &Action) -> Option<Transition> {
        let (_, _, expect) = EXPECTED
            .iter()
            .find(|(status, a, _)| *status == state.status && a == action)?;
        Some(match *expect {
            To(to) => Transition::to(to),
            AskApplicant => Transition {
                to: S::AwaitingInfo,
                outcome: None,
                resume_to: Some(state.status),
            },
            Resume => {
                let (_, to) = EXPECTED_RESUME
                    .iter()
                    .find(|(stored, _)| *stored == state.resume_to)
                    .expect("every stored value is in EXPECTED_RESUME");
                Transition::to(*to)
            }
            Closed(outcome) => Transition::closed(outcome),
        })
    }

    /// The kinds offered on a case: every kind but the expert's answers.
    const EXPECTED_CASE_ACTIONS: [ActionKind; 9] = [
        K::Claim,
        K::Triage,
        K::RequestInfo,
        K::ApplicantReply,
        K::StartMatching,
        K::StartConsultation,
        K::Close,
        K::Withdraw,
        K::Reopen,
    ];

    fn expected_allowed(state: &CaseState, actor: &Actor) -> Vec<ActionKind> {
        let permitted = expected_permitted(actor);
        EXPECTED_CASE_ACTIONS
            .into_iter()
            .filter(|kind| permitted.contains(kind))
            .filter(|&kind| {
                EXPECTED
                    .iter()
                    .any(|(status, a, _)| *status == state.status && a.kind() == kind)
            })
            .collect()
    }

    #[test]
    fn every_state_action_and_actor_matches_the_table() {
        let mut checked = 0;
        for state in all_states() {
            for action in all_actions() {
                for actor in all_actors() {
                    let allowed = expected_allowed(&state, &actor);
                    let expected = if !expected_permitted(&actor).contains(&action.kind()) {
                        Err(Refusal::NotPermitted { allowed })
                    } else {
                        expected_transition(&state, &action).ok_or(Refusal::InvalidTransition {
                            from: state.status,
                            allowed,
                        })
                    };
                    assert_eq!(
                        decide(&state, &action, &actor),
                        expected,
                        "{state:?} {action:?} {actor:?}"
                    );
                    checked += 1;
                }
            }
        }
        // 6 statuses × 7 stored resume values, 19 actions, 5 roles × 4 flag pairs.
        assert_eq!(checked, 42 * 19 * 20);
    }

    #[test]
    fn every_state_and_actor_lists_the_allowed_actions_of_the_table() {
        for state in all_states() {
            for actor in all_actors() {
                assert_eq!(
                    allowed_actions(&state, &actor),
                    expected_allowed(&state, &actor),
                    "{state:?} {actor:?}"
                );
            }
        }
    }

    #[test]
    fn allowed_actions_agree_with_decide() {
        for state in all_states() {
            for actor in all_actors() {
                let allowed = allowed_actions(&state, &actor);
                for kind in ActionKind::ALL {
                    let accepted = all_actions()
                        .iter()
                        .filter(|a| a.kind() == kind)
                        .any(|a| decide(&state, a, &actor).is_ok());
                    // Listed exactly when accepted, but only case actions
                    // are ever listed.
                    assert_eq!(
                        allowed.contains(&kind),
                        accepted && kind.is_case_action(),
                        "{state:?} {actor:?} {kind}"
                    );
                }
            }
        }
    }

    #[test]
    fn transitions_keep_outcome_and_resume_to_consistent() {
        for state in all_states() {
            for action in all_actions() {
                if let Ok(t) = decide(&state, &action, &supporter()) {
                    assert_eq!(t.outcome.is_some(), t.to == S::Closed, "{action:?}");
                    assert_eq!(t.resume_to.is_some(), t.to == S::AwaitingInfo, "{action:?}");
                }
            }
        }
    }

    #[test]
    fn staff_allowed_actions_per_status() {
        let expected: [(CaseStatus, &[ActionKind]); 6] = [
            (S::Submitted, &[K::Claim, K::Close, K::Withdraw]),
            (
                S::Triage,
                &[K::Triage, K::RequestInfo, K::Close, K::Withdraw],
            ),
            (S::AwaitingInfo, &[K::ApplicantReply, K::Close, K::Withdraw]),
            (
                S::Matching,
                &[K::RequestInfo, K::StartConsultation, K::Close, K::Withdraw],
            ),
            (
                S::InConsultation,
                &[K::RequestInfo, K::StartMatching, K::Close, K::Withdraw],
            ),
            (S::Closed, &[K::Reopen]),
        ];
        for (status, kinds) in expected {
            for role in [Role::Supporter, Role::Admin] {
                assert_eq!(
                    allowed_actions(&CaseState::new(status), &actor(role)),
                    kinds,
                    "{role:?} {status}"
                );
            }
        }
    }

    #[test]
    fn applicant_and_expert_allowed_actions() {
        let allowed = |status, actor| allowed_actions(&CaseState::new(status), &actor);
        assert_eq!(allowed(S::Submitted, member()), [K::Withdraw]);
        assert_eq!(
            allowed(S::AwaitingInfo, member()),
            [K::ApplicantReply, K::Withdraw]
        );
        assert!(allowed(S::Closed, member()).is_empty());
        // An assigned expert answers through the assignment: nothing is
        // offered on the case, in any status.
        for status in S::ALL {
            assert!(allowed(status, assigned_expert()).is_empty(), "{status}");
        }
        for status in S::ALL {
            for outsider in [Role::Manager, Role::Applicant, Role::Expert] {
                assert!(allowed(status, actor(outsider)).is_empty(), "{outsider:?}");
            }
        }
    }

    #[test]
    fn claim_moves_a_new_case_to_triage() {
        let t = decide(&CaseState::new(S::Submitted), &Action::Claim, &supporter()).unwrap();
        assert_eq!(t, Transition::to(S::Triage));
    }

    #[test]
    fn triage_routes() {
        let triage = CaseState::new(S::Triage);
        let route = |route| decide(&triage, &Action::Triage { route }, &supporter()).unwrap();
        assert_eq!(route(Route::Direct).to, S::InConsultation);
        assert_eq!(route(Route::Expert).to, S::Matching);
        assert_eq!(route(Route::OpenHours).to, S::InConsultation);
        assert_eq!(
            route(Route::Refer),
            Transition {
                to: S::Closed,
                outcome: Some(O::Referred),
                resume_to: None,
            }
        );
    }

    #[test]
    fn request_info_remembers_where_the_case_was() {
        for from in [S::Triage, S::Matching, S::InConsultation] {
            let t = decide(&CaseState::new(from), &Action::RequestInfo, &supporter()).unwrap();
            assert_eq!(t.to, S::AwaitingInfo);
            assert_eq!(t.resume_to, Some(from));
            assert_eq!(t.outcome, None);
        }
    }

    #[test]
    fn request_info_cannot_overwrite_a_pending_question() {
        let err = decide(
            &awaiting(Some(S::Matching)),
            &Action::RequestInfo,
            &supporter(),
        )
        .unwrap_err();
        assert_eq!(
            err,
            Refusal::InvalidTransition {
                from: S::AwaitingInfo,
                allowed: vec![K::ApplicantReply, K::Close, K::Withdraw],
            }
        );
    }

    #[test]
    fn reply_returns_to_where_the_case_was_and_clears_resume_to() {
        for from in [S::Triage, S::Matching, S::InConsultation] {
            let asked = decide(&CaseState::new(from), &Action::RequestInfo, &supporter()).unwrap();
            let state = CaseState {
                status: asked.to,
                resume_to: asked.resume_to,
            };
            let replied = decide(&state, &Action::ApplicantReply, &member()).unwrap();
            assert_eq!(replied, Transition::to(from));
            assert_eq!(replied.resume_to, None);
        }
    }

    #[test]
    fn reply_without_a_stored_status_goes_to_triage() {
        let t = decide(&awaiting(None), &Action::ApplicantReply, &member()).unwrap();
        assert_eq!(t, Transition::to(S::Triage));
    }

    #[test]
    fn reply_ignores_a_stored_status_that_cannot_be_resumed() {
        for stored in [S::Submitted, S::AwaitingInfo, S::Closed] {
            let t = decide(&awaiting(Some(stored)), &Action::ApplicantReply, &member()).unwrap();
            assert_eq!(t.to, S::Triage, "{stored}");
        }
    }

    #[test]
    fn staff_may_record_a_reply_for_the_applicant() {
        for role in [Role::Supporter, Role::Admin] {
            let t = decide(
                &awaiting(Some(S::InConsultation)),
                &Action::ApplicantReply,
                &actor(role),
            )
            .unwrap();
            assert_eq!(t.to, S::InConsultation);
        }
    }

    #[test]
    fn close_records_the_outcome_from_every_open_status() {
        for from in [
            S::Submitted,
            S::Triage,
            S::AwaitingInfo,
            S::Matching,
            S::InConsultation,
        ] {
            for outcome in [O::Resolved, O::Referred, O::OutOfScope, O::NoResponse] {
                let state = CaseState {
                    status: from,
                    resume_to: (from == S::AwaitingInfo).then_some(S::Matching),
                };
                let t = decide(&state, &Action::Close { outcome }, &supporter()).unwrap();
                assert_eq!(t, Transition::closed(outcome), "{from} {outcome}");
            }
        }
    }

    #[test]
    fn close_as_withdrawn_is_refused_and_points_to_withdraw() {
        let err = decide(
            &CaseState::new(S::InConsultation),
            &Action::Close {
                outcome: O::Withdrawn,
            },
            &supporter(),
        )
        .unwrap_err();
        match err {
            Refusal::InvalidTransition { from, allowed } => {
                assert_eq!(from, S::InConsultation);
                assert!(allowed.contains(&K::Close));
                assert!(allowed.contains(&K::Withdraw));
            }
            other => panic!("expected InvalidTransition, got {other:?}"),
        }
    }

    #[test]
    fn closing_a_closed_case_is_an_invalid_transition() {
        let err = decide(
            &CaseState::new(S::Closed),
            &Action::Close {
                outcome: O::Resolved,
            },
            &supporter(),
        )
        .unwrap_err();
        assert_eq!(
            err,
            Refusal::InvalidTransition {
                from: S::Closed,
                allowed: vec![K::Reopen],
            }
        );
    }

    #[test]
    fn member_may_withdraw_until_closed() {
        for from in [
            S::Submitted,
            S::Triage,
            S::AwaitingInfo,
            S::Matching,
            S::InConsultation,
        ] {
            let t = decide(&CaseState::new(from), &Action::Withdraw, &member()).unwrap();
            assert_eq!(t, Transition::closed(O::Withdrawn), "{from}");
        }
        let err = decide(&CaseState::new(S::Closed), &Action::Withdraw, &member()).unwrap_err();
        assert_eq!(
            err,
            Refusal::InvalidTransition {
                from: S::Closed,
                allowed: vec![],
            }
        );
    }

    #[test]
    fn non_member_may_not_withdraw_or_reply() {
        let outsider = actor(Role::Applicant);
        for (state, action) in [
            (CaseState::new(S::Triage), Action::Withdraw),
            (awaiting(Some(S::Triage)), Action::ApplicantReply),
        ] {
            assert_eq!(
                decide(&state, &action, &outsider),
                Err(Refusal::NotPermitted { allowed: vec![] })
            );
        }
    }

    #[test]
    fn applicant_may_not_act_as_the_desk() {
        let err = decide(&CaseState::new(S::Submitted), &Action::Claim, &member()).unwrap_err();
        assert_eq!(
            err,
            Refusal::NotPermitted {
                allowed: vec![K::Withdraw],
            }
        );
    }

    #[test]
    fn reopen_clears_the_outcome() {
        let t = decide(&CaseState::new(S::Closed), &Action::Reopen, &supporter()).unwrap();
        assert_eq!(
            t,
            Transition {
                to: S::InConsultation,
                outcome: None,
                resume_to: None,
            }
        );
        assert_eq!(
            decide(&CaseState::new(S::Closed), &Action::Reopen, &member()),
            Err(Refusal::NotPermitted { allowed: vec![] })
        );
    }

    #[test]
    fn expert_acts_only_on_its_assignment() {
        let matching = CaseState::new(S::Matching);
        assert_eq!(
            decide(&matching, &Action::ExpertAccepted, &assigned_expert()),
            Ok(Transition::to(S::InConsultation))
        );
        assert_eq!(
            decide(&matching, &Action::ExpertDeclined, &assigned_expert()),
            Ok(Transition::to(S::Matching))
        );
        assert_eq!(
            decide(
                &CaseState::new(S::InConsultation),
                &Action::ExpertDeclined,
                &assigned_expert()
            ),
            Ok(Transition::to(S::Matching))
        );
        assert_eq!(
            decide(&matching, &Action::ExpertAccepted, &actor(Role::Expert)),
            Err(Refusal::NotPermitted { allowed: vec![] })
        );
        assert_eq!(
            decide(&matching, &Action::StartConsultation, &assigned_expert()),
            Err(Refusal::NotPermitted { allowed: vec![] })
        );
        assert_eq!(
            decide(
                &CaseState::new(S::Triage),
                &Action::ExpertAccepted,
                &assigned_expert()
            ),
            Err(Refusal::InvalidTransition {
                from: S::Triage,
                allowed: vec![],
            })
        );
    }

    #[test]
    fn manager_may_do_nothing() {
        let manager = Actor {
            role: Role::Manager,
            is_member: true,
            is_assigned_expert: true,
        };
        for state in all_states() {
            for action in all_actions() {
                assert_eq!(
                    decide(&state, &action, &manager),
                    Err(Refusal::NotPermitted { allowed: vec![] })
                );
            }
        }
    }

    #[test]
    fn relation_flags_do_not_matter_for_staff() {
        for role in [Role::Supporter, Role::Admin] {
            for state in all_states() {
                let plain = actor(role);
                let flagged = Actor {
                    is_member: true,
                    is_assigned_expert: true,
                    ..plain
                };
                assert_eq!(
                    allowed_actions(&state, &plain),
                    allowed_actions(&state, &flagged)
                );
            }
        }
    }

    #[test]
    fn action_kinds_cover_every_action() {
        let kinds: Vec<ActionKind> = all_actions().iter().map(Action::kind).collect();
        for kind in ActionKind::ALL {
            assert!(kinds.contains(&kind), "{kind}");
            assert_eq!(kind.representative().kind(), kind);
        }
    }

    #[test]
    fn case_actions_are_every_kind_but_the_experts_answers() {
        assert_eq!(ActionKind::CASE_ACTIONS, EXPECTED_CASE_ACTIONS);
        for kind in ActionKind::ALL {
            assert_eq!(
                kind.is_case_action(),
                EXPECTED_CASE_ACTIONS.contains(&kind),
                "{kind}"
            );
            let parsed = ActionKind::case_action(kind.as_str());
            assert_eq!(parsed, kind.is_case_action().then_some(kind), "{kind}");
        }
        assert_eq!(ActionKind::case_action("withdrawn"), None);
        assert_eq!(ActionKind::case_action("Claim"), None);
    }

    #[test]
    fn role_may_is_what_some_related_actor_of_the_role_may_do() {
        for role in ROLES {
            for kind in ActionKind::ALL {
                let related = Actor {
                    role,
                    is_member: true,
                    is_assigned_expert: true,
                };
                assert_eq!(
                    role_may(role, kind),
                    expected_permitted(&related).contains(&kind),
                    "{role:?} {kind}"
                );
            }
        }
    }

    #[test]
    fn action_kind_codes() {
        let codes: Vec<&str> = ActionKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            codes,
            [
                "claim",
                "triage",
                "request_info",
                "applicant_reply",
                "start_matching",
                "expert_accepted",
                "expert_declined",
                "start_consultation",
                "close",
                "withdraw",
                "reopen",
            ]
        );
        for kind in ActionKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{kind}\""));
            assert_eq!(serde_json::from_str::<ActionKind>(&json).unwrap(), kind);
        }
        assert_eq!(
            serde_json::to_string(&vec![K::Close, K::Withdraw]).unwrap(),
            r#"["close","withdraw"]"#
        );
    }

    #[test]
    fn refusal_reads_well() {
        let conflict = Refusal::InvalidTransition {
            from: S::Closed,
            allowed: vec![K::Reopen],
        };
        assert_eq!(
            conflict.to_string(),
            "not possible from closed; allowed: reopen"
        );
        assert_eq!(conflict.allowed(), [K::Reopen]);
        let forbidden = Refusal::NotPermitted {
            allowed: vec![K::ApplicantReply, K::Withdraw],
        };
        assert_eq!(
            forbidden.to_string(),
            "not permitted; allowed: applicant_reply, withdraw"
        );
        assert_eq!(
            Refusal::NotPermitted { allowed: vec![] }.to_string(),
            "not permitted; allowed: none"
        );
    }
}
