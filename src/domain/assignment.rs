//! The assignment lifecycle: an expert proposed for a case answers, works,
//! and leaves. The one place that decides which change of an assignment is
//! allowed, for whom, and what it means for the case.
//!
//! ```text
//! proposed ─┬─▶ accepted ─┬─▶ completed
//!           │             └─▶ withdrawn
//!           ├─▶ declined
//!           └─▶ withdrawn
//! ```
//!
//! - The proposed expert accepts (acknowledging the confidentiality terms) or
//!   declines with a reason; nobody else answers for them.
//! - Desk staff withdraw a proposed or accepted expert.
//! - An accepted expert's work is completed by that expert or by the desk.
//!
//! When an expert leaves, the case follows PRODUCT.md ("a decline returns the
//! case to `matching`"): if the case is `in_consultation` and no accepted
//! expert remains after a decline, or after the withdrawal of an expert who
//! had accepted, it goes back to `matching` ([`CaseEffect::BackToMatching`],
//! the lifecycle's `expert_declined`) so the desk finds another expert. A
//! proposal withdrawn before it was answered changes nothing: that expert
//! never carried the consultation. A completion is the end of the expert's
//! part, not a failure: the case stays where it is and the desk closes it or
//! goes on directly.

use std::fmt;
use std::str::FromStr;

use super::role::Role;
use super::vocabulary::CaseStatus;

/// Where an assignment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssignmentStatus {
    Proposed,
    Accepted,
    Declined,
    Withdrawn,
    Completed,
}

impl AssignmentStatus {
    pub const ALL: [AssignmentStatus; 5] = [
        Self::Proposed,
        Self::Accepted,
        Self::Declined,
        Self::Withdrawn,
        Self::Completed,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Proposed => "proposed",
            Self::Accepted => "accepted",
            Self::Declined => "declined",
            Self::Withdrawn => "withdrawn",
            Self::Completed => "completed",
        }
    }

    /// Active assignments count against the expert's capacity and give
    /// access to the case.
    pub const fn is_active(self) -> bool {
        matches!(self, Self::Proposed | Self::Accepted)
    }
}

impl fmt::Display for AssignmentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored status that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAssignmentStatus(pub String);

impl fmt::Display for UnknownAssignmentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown assignment status {:?}", self.0)
    }
}

impl std::error::Error for UnknownAssignmentStatus {}

impl FromStr for AssignmentStatus {
    type Err = UnknownAssignmentStatus;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == text)
            .ok_or_else(|| UnknownAssignmentStatus(text.to_owned()))
    }
}

/// What someone asks to do to an assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignmentAction {
    Accept,
    Decline,
    Withdraw,
    Complete,
}

impl AssignmentAction {
    pub const ALL: [AssignmentAction; 4] =
        [Self::Accept, Self::Decline, Self::Withdraw, Self::Complete];

    /// The status the action leads to.
    pub const fn target(self) -> AssignmentStatus {
        match self {
            Self::Accept => AssignmentStatus::Accepted,
            Self::Decline => AssignmentStatus::Declined,
            Self::Withdraw => AssignmentStatus::Withdrawn,
            Self::Complete => AssignmentStatus::Completed,
        }
    }

    /// The statuses the action may start from.
    pub const fn sources(self) -> &'static [AssignmentStatus] {
        use AssignmentStatus as S;
        match self {
            Self::Accept | Self::Decline => &[S::Proposed],
            Self::Withdraw => &[S::Proposed, S::Accepted],
            Self::Complete => &[S::Accepted],
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Accept => "accept",
            Self::Decline => "decline",
            Self::Withdraw => "withdraw",
            Self::Complete => "complete",
        }
    }
}

/// Who acts on an assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssignmentActor {
    pub role: Role,
    /// Whether the assignment is the actor's own (they are its expert).
    pub is_own: bool,
}

/// Why an assignment change is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignmentRefusal {
    /// The actor may never do this to this assignment (403, or 404 for an
    /// expert's assignment that is not theirs, which leaks nothing).
    NotPermitted,
    /// Allowed for the actor, but not from the assignment's current status (409).
    WrongState { from: AssignmentStatus },
}

/// Whether `actor` may do `action` to an assignment in `from`; the new status.
pub fn decide(
    from: AssignmentStatus,
    action: AssignmentAction,
    actor: AssignmentActor,
) -> Result<AssignmentStatus, AssignmentRefusal> {
    use AssignmentAction as A;
    let permitted = match action {
        A::Accept | A::Decline => actor.role == Role::Expert && actor.is_own,
        A::Withdraw => actor.role.is_desk_staff(),
        A::Complete => actor.role.is_desk_staff() || (actor.role == Role::Expert && actor.is_own),
    };
    if !permitted {
        return Err(AssignmentRefusal::NotPermitted);
    }
    if action.sources().contains(&from) {
        Ok(action.target())
    } else {
        Err(AssignmentRefusal::WrongState { from })
    }
}

/// What an assignment change does to its case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseEffect {
    /// Nothing beyond the case's `updated_at`.
    None,
    /// The first accepted expert starts the consultation (`matching → in_consultation`).
    StartConsultation,
    /// The last accepted expert left a consultation: back to `matching`.
    BackToMatching,
}

/// The rule of the module doc: the assignment left `from` by `action`;
/// `case` is the case's status, `accepted_left` how many accepted experts
/// remain after the change.
pub fn case_effect(
    action: AssignmentAction,
    from: AssignmentStatus,
    case: CaseStatus,
    accepted_left: usize,
) -> CaseEffect {
    let left_the_consultation = match action {
        AssignmentAction::Decline => true,
        AssignmentAction::Withdraw => from == AssignmentStatus::Accepted,
        AssignmentAction::Accept | AssignmentAction::Complete => false,
    };
    match action {
        AssignmentAction::Accept if case == CaseStatus::Matching => CaseEffect::StartConsultation,
        _ if left_the_consultation && case == CaseStatus::InConsultation && accepted_left == 0 => {
            CaseEffect::BackToMatching
        }
        _ => CaseEffect::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AssignmentAction as A;
    use AssignmentStatus as S;

    const ROLES: [Role; 5] = Role::ALL;

    /// The whole table, written out: (from, action, role, own) → outcome.
    fn expected(
        from: S,
        action: A,
        role: Role,
        own: bool,
    ) -> Result<AssignmentStatus, AssignmentRefusal> {
        let staff = matches!(role, Role::Supporter | Role::Admin);
        let own_expert = role == Role::Expert && own;
        let permitted = match action {
            A::Accept | A::Decline => own_expert,
            A::Withdraw => staff,
            A::Complete => staff || own_expert,
        };
        if !permitted {
            return Err(AssignmentRefusal::NotPermitted);
        }
        match (from, action) {
            (S::Proposed, A::Accept) => Ok(S::Accepted),
            (S::Proposed, A::Decline) => Ok(S::Declined),
            (S::Proposed | S::Accepted, A::Withdraw) => Ok(S::Withdrawn),
            (S::Accepted, A::Complete) => Ok(S::Completed),
            _ => Err(AssignmentRefusal::WrongState { from }),
        }
    }

    #[test]
    fn every_state_action_and_role() {
        let mut allowed = 0;
        for from in S::ALL {
            for action in A::ALL {
                for role in ROLES {
                    for is_own in [false, true] {
                        let actor = AssignmentActor { role, is_own };
                        let got = decide(from, action, actor);
                        assert_eq!(
                            got,
                            expected(from, action, role, is_own),
                            "{from} {} by {role:?} (own: {is_own})",
                            action.as_str()
                        );
                        allowed += usize::from(got.is_ok());
                    }
                }
            }
        }
        // accept, decline: own expert; withdraw from two states: 2 staff roles
        // x 2 ownerships; complete: staff (2 x 2) + own expert.
        assert_eq!(allowed, 1 + 1 + 2 * 2 * 2 + (2 * 2 + 1));
    }

    #[test]
    fn ended_assignments_change_no_more() {
        for from in [S::Declined, S::Withdrawn, S::Completed] {
            for action in A::ALL {
                for role in ROLES {
                    let actor = AssignmentActor { role, is_own: true };
                    assert!(decide(from, action, actor).is_err(), "{from}");
                }
            }
        }
    }

    #[test]
    fn only_the_two_answering_states_are_active() {
        let active: Vec<S> = S::ALL.into_iter().filter(|s| s.is_active()).collect();
        assert_eq!(active, vec![S::Proposed, S::Accepted]);
    }

    #[test]
    fn statuses_read_back_from_their_names_and_unknown_ones_are_errors() {
        for status in S::ALL {
            assert_eq!(status.as_str().parse::<S>(), Ok(status));
        }
        assert_eq!(
            "accepted ".parse::<S>(),
            Err(UnknownAssignmentStatus("accepted ".into()))
        );
    }

    /// Every move an assignment can make (each action from each of its
    /// sources), in every case status, with none, one or two accepted
    /// experts left: the case moves only in the two rows the module doc names.
    #[test]
    fn every_move_in_every_case_status() {
        let mut moves = 0;
        for action in A::ALL {
            for &from in action.sources() {
                for case in CaseStatus::ALL {
                    for left in 0..=2 {
                        let expected = match (from, action) {
                            (S::Proposed, A::Accept) if case == CaseStatus::Matching => {
                                CaseEffect::StartConsultation
                            }
                            (S::Proposed, A::Decline) | (S::Accepted, A::Withdraw)
                                if case == CaseStatus::InConsultation && left == 0 =>
                            {
                                CaseEffect::BackToMatching
                            }
                            _ => CaseEffect::None,
                        };
                        assert_eq!(
                            case_effect(action, from, case, left),
                            expected,
                            "{} from {from}, case {}, {left} accepted left",
                            action.as_str(),
                            case.as_str()
                        );
                    }
                }
                moves += 1;
            }
        }
        // accept, decline, withdraw (from proposed and from accepted), complete.
        assert_eq!(moves, 5);
    }

    #[test]
    fn the_first_acceptance_starts_the_consultation() {
        assert_eq!(
            case_effect(A::Accept, S::Proposed, CaseStatus::Matching, 1),
            CaseEffect::StartConsultation
        );
        assert_eq!(
            case_effect(A::Accept, S::Proposed, CaseStatus::InConsultation, 2),
            CaseEffect::None
        );
    }

    #[test]
    fn the_last_expert_leaving_by_decline_or_withdrawal_returns_the_case_to_matching() {
        for (action, from) in [(A::Decline, S::Proposed), (A::Withdraw, S::Accepted)] {
            assert_eq!(
                case_effect(action, from, CaseStatus::InConsultation, 0),
                CaseEffect::BackToMatching
            );
            assert_eq!(
                case_effect(action, from, CaseStatus::InConsultation, 1),
                CaseEffect::None,
                "another accepted expert goes on"
            );
            assert_eq!(
                case_effect(action, from, CaseStatus::Matching, 0),
                CaseEffect::None,
                "still matching"
            );
        }
    }

    #[test]
    fn withdrawing_an_unanswered_proposal_leaves_the_case_where_it_is() {
        for case in [CaseStatus::Matching, CaseStatus::InConsultation] {
            assert_eq!(
                case_effect(A::Withdraw, S::Proposed, case, 0),
                CaseEffect::None
            );
        }
    }

    #[test]
    fn a_completion_leaves_the_case_where_it_is() {
        for case in [CaseStatus::InConsultation, CaseStatus::Closed] {
            for left in [0, 1] {
                assert_eq!(
                    case_effect(A::Complete, S::Accepted, case, left),
                    CaseEffect::None
                );
            }
        }
    }
}
