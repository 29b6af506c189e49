//! The support plan (支援計画): revisions written by the desk are the plan
//! the startup reads; an accepted expert's revisions are proposals the desk
//! may take over. The startup reads only the current plan, never the
//! proposals or the earlier revisions.

use serde::Serialize;

use super::role::Role;

/// What a revision of the support plan is, by who wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RevisionKind {
    /// The desk's text: the plan.
    Plan,
    /// An expert's proposed text, for the desk.
    Proposal,
}

impl RevisionKind {
    /// The kind of a revision written by `author`.
    pub fn written_by(author: Role) -> Self {
        if author.is_desk_staff() {
            RevisionKind::Plan
        } else {
            RevisionKind::Proposal
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            RevisionKind::Plan => "plan",
            RevisionKind::Proposal => "proposal",
        }
    }
}

/// Of revisions given newest first, what the startup reads: the newest
/// plan revision alone.
pub fn applicant_view<T>(revisions: Vec<(RevisionKind, T)>) -> Vec<(RevisionKind, T)> {
    revisions
        .into_iter()
        .find(|(kind, _)| *kind == RevisionKind::Plan)
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_desk_writes_the_plan_and_experts_propose() {
        assert_eq!(
            RevisionKind::written_by(Role::Supporter),
            RevisionKind::Plan
        );
        assert_eq!(RevisionKind::written_by(Role::Admin), RevisionKind::Plan);
        assert_eq!(
            RevisionKind::written_by(Role::Expert),
            RevisionKind::Proposal
        );
    }

    #[test]
    fn the_startup_reads_the_newest_plan_revision_only() {
        use RevisionKind::{Plan, Proposal};
        let newest_first = vec![(Proposal, 4), (Plan, 3), (Proposal, 2), (Plan, 1)];
        assert_eq!(applicant_view(newest_first), vec![(Plan, 3)]);
        assert_eq!(applicant_view(vec![(Proposal, 1)]), vec![]);
        assert_eq!(applicant_view::<i32>(vec![]), vec![]);
    }
}
