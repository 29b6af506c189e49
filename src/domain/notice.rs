//! Telling people about new messages on a case (issue 16: "nobody hears
//! about messages").
//!
//! **Who**: the other side of the message, and only people who can read it.
//! An `applicant` message written by the desk or an expert goes to the
//! case's applicant; one written by an applicant goes to the desk side; an
//! `internal` message goes to the desk side only, never to an applicant.
//! The desk side is the supporter who claimed the case (every supporter
//! while nobody has, as a new case is announced) and the experts who
//! accepted an assignment on it. The author is never told of their own
//! message.
//!
//! **When**: at most one mail per case and person per quarter hour. The
//! first message after a quiet quarter hour is mailed at once: the other
//! side usually waits for exactly that answer, and a quarter hour's delay
//! would make every single message late for the sake of the rare burst.
//! Messages that follow within the quarter hour are gathered into one mail
//! that goes when it ends and says how many arrived; more messages join
//! that mail while it waits. So a burst of five is two mails: the first
//! message at once, "4 new messages" a quarter hour later.
//!
//! The mail never carries message text, only the case number, how many
//! messages and a link to the case page.

use super::case::CaseView;
use super::vocabulary::MessageVisibility;

/// The least time between two notices to one person about one case.
pub const QUIET_MICROS: i64 = 15 * 60 * 1_000_000;

/// Which side of a case hears of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// The case's applicant.
    Applicant,
    /// The supporter in charge and the accepted experts.
    Desk,
}

/// Who hears of a message of `visibility` written by an author whose view
/// of the case is `author`.
pub fn audience(visibility: MessageVisibility, author: CaseView) -> Audience {
    match (visibility, author) {
        (MessageVisibility::Applicant, CaseView::Desk) => Audience::Applicant,
        // An applicant's message, and internal ones (which applicants never
        // see, so never hear of).
        _ => Audience::Desk,
    }
}

/// The people of a case a notice may go to, by user id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CasePeople {
    /// The case's applicant, while still a member of its organisation.
    pub applicant: Option<i64>,
    /// The supporter who claimed the case.
    pub claimed_by: Option<i64>,
    /// Every supporter: the desk while nobody claimed the case.
    pub supporters: Vec<i64>,
    /// Experts whose assignment on the case is accepted.
    pub accepted_experts: Vec<i64>,
}

/// The user ids to tell, ascending, without repeats and without those
/// `told` otherwise: the author, and a supporter whose information request
/// the message answers (they get the `applicant_replied` mail).
pub fn recipients(audience: Audience, people: &CasePeople, told: &[i64]) -> Vec<i64> {
    let mut ids: Vec<i64> = match audience {
        Audience::Applicant => people.applicant.into_iter().collect(),
        Audience::Desk => {
            let desk = match people.claimed_by {
                Some(supporter) => vec![supporter],
                None => people.supporters.clone(),
            };
            desk.into_iter()
                .chain(people.accepted_experts.iter().copied())
                .collect()
        }
    };
    ids.retain(|id| !told.contains(id));
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The latest notice to one person about one case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notice {
    /// When it goes (or went) out.
    pub due_at: i64,
    /// How many messages it tells of.
    pub messages: i32,
}

/// What a new message does to a person's notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Nothing was mailed for a quarter hour: mail now, one message.
    Now,
    /// The latest notice still waits to go at `due_at`: it now tells of
    /// `messages`.
    Join { due_at: i64, messages: i32 },
    /// A notice went less than a quarter hour ago: a new one, of one
    /// message, goes at `due_at`, when the quarter hour is over.
    Later { due_at: i64 },
}

/// Plans the notice of a message arriving at `now`, given the person's
/// `latest` notice about the case.
pub fn plan(latest: Option<Notice>, now: i64) -> Plan {
    match latest {
        Some(notice) if now < notice.due_at => Plan::Join {
            due_at: notice.due_at,
            messages: notice.messages.saturating_add(1),
        },
        Some(notice) if now < notice.due_at.saturating_add(QUIET_MICROS) => Plan::Later {
            due_at: notice.due_at + QUIET_MICROS,
        },
        _ => Plan::Now,
    }
}

impl Plan {
    /// When the notice goes, for a message arriving at `now`.
    pub fn due_at(self, now: i64) -> i64 {
        match self {
            Plan::Now => now,
            Plan::Join { due_at, .. } | Plan::Later { due_at } => due_at,
        }
    }

    /// How many messages the notice tells of.
    pub fn messages(self) -> i32 {
        match self {
            Plan::Join { messages, .. } => messages,
            Plan::Now | Plan::Later { .. } => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60 * 1_000_000;

    fn people() -> CasePeople {
        CasePeople {
            applicant: Some(1),
            claimed_by: Some(10),
            supporters: vec![10, 11, 12],
            accepted_experts: vec![20, 21],
        }
    }

    #[test]
    fn the_other_side_hears_never_the_author() {
        use MessageVisibility::{Applicant, Internal};
        assert_eq!(audience(Applicant, CaseView::Desk), Audience::Applicant);
        assert_eq!(audience(Applicant, CaseView::Applicant), Audience::Desk);
        assert_eq!(audience(Internal, CaseView::Desk), Audience::Desk);

        // A supporter's public message: the applicant.
        assert_eq!(recipients(Audience::Applicant, &people(), &[10]), [1]);
        // The applicant's message: the claiming supporter and the experts.
        assert_eq!(recipients(Audience::Desk, &people(), &[1]), [10, 20, 21]);
        // An expert's internal note: everyone on the desk side but them.
        assert_eq!(recipients(Audience::Desk, &people(), &[20]), [10, 21]);
        // The claiming supporter's internal note: the experts only.
        assert_eq!(recipients(Audience::Desk, &people(), &[10]), [20, 21]);
        // An answer to the claiming supporter's request: they hear of it by
        // `applicant_replied`, the experts by a notice.
        assert_eq!(recipients(Audience::Desk, &people(), &[1, 10]), [20, 21]);
    }

    #[test]
    fn an_unclaimed_case_tells_every_supporter_and_no_applicant_hears_internal_notes() {
        let unclaimed = CasePeople {
            claimed_by: None,
            accepted_experts: vec![],
            ..people()
        };
        assert_eq!(recipients(Audience::Desk, &unclaimed, &[1]), [10, 11, 12]);
        assert_eq!(recipients(Audience::Desk, &unclaimed, &[11]), [10, 12]);
        for author in [1, 10, 20] {
            assert!(!recipients(Audience::Desk, &people(), &[author]).contains(&1));
        }
        // An applicant who left the organisation (none) hears nothing.
        let gone = CasePeople {
            applicant: None,
            ..people()
        };
        assert!(recipients(Audience::Applicant, &gone, &[10]).is_empty());
        // Someone on both lists is told once.
        let twice = CasePeople {
            claimed_by: Some(20),
            ..people()
        };
        assert_eq!(recipients(Audience::Desk, &twice, &[1]), [20, 21]);
    }

    #[test]
    fn the_first_message_after_a_quiet_quarter_hour_is_mailed_at_once() {
        let t = 1_000_000 * MINUTE;
        assert_eq!(plan(None, t), Plan::Now);
        assert_eq!(Plan::Now.due_at(t), t);
        assert_eq!(Plan::Now.messages(), 1);
        let long_ago = Notice {
            due_at: t - QUIET_MICROS,
            messages: 3,
        };
        assert_eq!(plan(Some(long_ago), t), Plan::Now);
    }

    #[test]
    fn a_burst_is_gathered_into_one_mail_at_the_end_of_the_quarter_hour() {
        let t = 1_000_000 * MINUTE;
        // Message 1 went at t; message 2 a minute later waits for t + 15'.
        let first = Notice {
            due_at: t,
            messages: 1,
        };
        let second = plan(Some(first), t + MINUTE);
        assert_eq!(
            second,
            Plan::Later {
                due_at: t + QUIET_MICROS
            }
        );
        assert_eq!(second.messages(), 1);
        // Messages 3..5 join it.
        let mut waiting = Notice {
            due_at: second.due_at(t + MINUTE),
            messages: second.messages(),
        };
        for minute in 2..5 {
            let next = plan(Some(waiting), t + minute * MINUTE);
            assert_eq!(next.due_at(t + minute * MINUTE), t + QUIET_MICROS);
            waiting = Notice {
                due_at: next.due_at(0),
                messages: next.messages(),
            };
        }
        assert_eq!(waiting.messages, 4);
        // A message just after the gathered mail went waits another quarter
        // hour; one a quarter hour after it goes at once.
        assert_eq!(
            plan(Some(waiting), t + QUIET_MICROS),
            Plan::Later {
                due_at: t + 2 * QUIET_MICROS
            }
        );
        assert_eq!(plan(Some(waiting), t + 2 * QUIET_MICROS), Plan::Now);
    }

    #[test]
    fn a_message_timed_before_a_mail_that_has_not_gone_joins_it() {
        // Two writers read the time, the later one commits first: the
        // earlier message joins the mail still waiting for the worker.
        let t = 1_000_000 * MINUTE;
        let first = Notice {
            due_at: t,
            messages: 1,
        };
        assert_eq!(
            plan(Some(first), t - 1),
            Plan::Join {
                due_at: t,
                messages: 2
            }
        );
    }
}
