//! Closing a case as a duplicate of another (issue 16).
//!
//! A case closed with the outcome `duplicate` names the case it duplicates,
//! its *original*; the link is shown on both cases and in both timelines,
//! and cleared when the duplicate is reopened. The rules:
//!
//! - `duplicate_of` is required with the outcome `duplicate` and refused
//!   with any other, and it names another case ([`check_request`]);
//! - the original is a case the closer can see, and is not itself closed as
//!   a duplicate: the closer names that one's original instead; and a case
//!   that is the original of others is not closed as a duplicate itself
//!   ([`check_original`]). Links are therefore one step deep: every
//!   duplicate points at a case that is not a duplicate;
//! - a reader sees the other end of a link only when they may read that
//!   case ([`link_visible`]): an applicant never learns another
//!   organisation's case number, title or existence, and an expert nothing
//!   of a case they are not assigned to; desk staff see both ends.

use serde_json::Value;

use super::case::{CaseView, case_view};
use super::role::Role;
use super::vocabulary::Outcome;

/// The field every problem of this module is about.
pub const FIELD: &str = "duplicate_of";

/// Checks what a close request says about the link, before anything is
/// read: `Ok(Some(original))` when the case is to be linked, `Ok(None)` when
/// no link is asked for, or the problem with `duplicate_of`.
pub fn check_request(
    case_id: i64,
    outcome: Option<Outcome>,
    duplicate_of: Option<i64>,
) -> Result<Option<i64>, String> {
    match (outcome, duplicate_of) {
        (Some(Outcome::Duplicate), None) => Err(
            "is required when the outcome is duplicate: the id of the case this one duplicates"
                .to_owned(),
        ),
        (Some(Outcome::Duplicate), Some(original)) if original == case_id => {
            Err("must name another case: a case cannot duplicate itself".to_owned())
        }
        (Some(Outcome::Duplicate), Some(original)) => Ok(Some(original)),
        (_, Some(_)) => Err("is only for closing with the outcome duplicate".to_owned()),
        (_, None) => Ok(None),
    }
}

/// What the desk knows of a case named as an original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original<'a> {
    pub number: &'a str,
    pub outcome: Option<Outcome>,
    /// The number of the case it duplicates, when it is a duplicate.
    pub duplicate_of: Option<&'a str>,
}

/// Checks the original against the stored links: it must not be a
/// duplicate itself, and the case being closed (`case_number`) must not be
/// the original of others (`its_duplicates`, their numbers). Links stay
/// one step deep, so every duplicate names a case that counts.
pub fn check_original(
    case_number: &str,
    its_duplicates: &[String],
    original: &Original<'_>,
) -> Result<(), String> {
    if original.outcome == Some(Outcome::Duplicate) {
        return Err(match original.duplicate_of {
            Some(first) => format!(
                "{} is itself closed as a duplicate of {first}: name {first} instead",
                original.number
            ),
            None => format!(
                "{} is itself closed as a duplicate: name its original instead",
                original.number
            ),
        });
    }
    if !its_duplicates.is_empty() {
        return Err(format!(
            "{case_number} is the original of {}: a case others duplicate is not closed as a \
             duplicate itself; close {} as a duplicate of {case_number} instead",
            its_duplicates.join(", "),
            original.number
        ));
    }
    Ok(())
}

/// Whether a reader sees the other end of a link: exactly when they may
/// read that case (`is_member` of its organisation, `assignment` their
/// expert assignment on it, as for [`case_view`]).
pub fn link_visible(role: Role, is_member: bool, assignment: Option<bool>) -> bool {
    case_view(role, is_member, assignment) != CaseView::Hidden
}

/// Timeline events that record a link. On the case itself (`closed`,
/// `reopened`) the detail names the original under `duplicate_of`; on the
/// original (`duplicate_linked`, `duplicate_unlinked`) it names the
/// duplicate under `duplicate`.
pub const LINKED_EVENT: &str = "duplicate_linked";
pub const UNLINKED_EVENT: &str = "duplicate_unlinked";

/// The detail key naming the other case in an event of `kind`, if any.
fn link_key(kind: &str) -> Option<&'static str> {
    match kind {
        "closed" | "reopened" => Some("duplicate_of"),
        LINKED_EVENT | UNLINKED_EVENT => Some("duplicate"),
        _ => None,
    }
}

/// The id of the other case an event's detail names, if any.
pub fn linked_case(kind: &str, detail: &Value) -> Option<i64> {
    detail.get(link_key(kind)?)?.get("id")?.as_i64()
}

/// Redacts an event for a reader who may not see the other case
/// (`visible` false): the case's own close or reopen keeps its outcome and
/// loses the other case; an event about the other case (`duplicate_linked`,
/// `duplicate_unlinked`) is left out whole (false), as its existence would
/// tell of the other case.
pub fn redact_event(kind: &str, detail: &mut Value, visible: bool) -> bool {
    let Some(key) = link_key(kind) else {
        return true;
    };
    if visible {
        return true;
    }
    match kind {
        LINKED_EVENT | UNLINKED_EVENT => false,
        _ => {
            if let Some(fields) = detail.as_object_mut() {
                fields.remove(key);
            }
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_duplicate_names_another_case_and_only_a_duplicate_does() {
        assert_eq!(
            check_request(7, Some(Outcome::Duplicate), Some(3)),
            Ok(Some(3))
        );
        assert!(
            check_request(7, Some(Outcome::Duplicate), None)
                .unwrap_err()
                .starts_with("is required")
        );
        assert!(
            check_request(7, Some(Outcome::Duplicate), Some(7))
                .unwrap_err()
                .contains("cannot duplicate itself")
        );
        for outcome in [None, Some(Outcome::Resolved), Some(Outcome::Withdrawn)] {
            assert_eq!(
                check_request(7, outcome, Some(3)),
                Err("is only for closing with the outcome duplicate".to_owned()),
                "{outcome:?}"
            );
            assert_eq!(check_request(7, outcome, None), Ok(None));
        }
    }

    #[test]
    fn links_stay_one_step_deep() {
        let open = Original {
            number: "MD-2026-00001",
            outcome: None,
            duplicate_of: None,
        };
        assert_eq!(check_original("MD-2026-00009", &[], &open), Ok(()));
        let resolved = Original {
            outcome: Some(Outcome::Resolved),
            ..open.clone()
        };
        assert_eq!(check_original("MD-2026-00009", &[], &resolved), Ok(()));

        let duplicate = Original {
            number: "MD-2026-00002",
            outcome: Some(Outcome::Duplicate),
            duplicate_of: Some("MD-2026-00001"),
        };
        assert_eq!(
            check_original("MD-2026-00009", &[], &duplicate),
            Err(
                "MD-2026-00002 is itself closed as a duplicate of MD-2026-00001: \
                 name MD-2026-00001 instead"
                    .to_owned()
            )
        );

        let message =
            check_original("MD-2026-00009", &["MD-2026-00010".to_owned()], &open).unwrap_err();
        assert!(
            message.starts_with("MD-2026-00009 is the original of MD-2026-00010")
                && message.ends_with("close MD-2026-00001 as a duplicate of MD-2026-00009 instead"),
            "{message}"
        );
    }

    #[test]
    fn a_link_shows_only_to_who_may_read_the_other_case() {
        for role in [Role::Supporter, Role::Admin] {
            assert!(link_visible(role, false, None));
        }
        assert!(link_visible(Role::Applicant, true, None));
        assert!(!link_visible(Role::Applicant, false, None));
        assert!(!link_visible(Role::Expert, false, None));
        assert!(link_visible(Role::Expert, false, Some(false)));
        assert!(link_visible(Role::Expert, false, Some(true)));
        assert!(!link_visible(Role::Manager, true, Some(true)));
    }

    #[test]
    fn events_about_a_hidden_case_lose_it_or_are_left_out() {
        let closed =
            json!({"outcome": "duplicate", "duplicate_of": {"id": 3, "number": "MD-2026-00003"}});
        assert_eq!(linked_case("closed", &closed), Some(3));
        let mut seen = closed.clone();
        assert!(redact_event("closed", &mut seen, true));
        assert_eq!(seen, closed);
        let mut hidden = closed.clone();
        assert!(redact_event("closed", &mut hidden, false));
        assert_eq!(hidden, json!({"outcome": "duplicate"}));

        let linked = json!({"duplicate": {"id": 9, "number": "MD-2026-00009"}});
        assert_eq!(linked_case(LINKED_EVENT, &linked), Some(9));
        assert!(redact_event(LINKED_EVENT, &mut linked.clone(), true));
        assert!(!redact_event(LINKED_EVENT, &mut linked.clone(), false));
        assert!(!redact_event(UNLINKED_EVENT, &mut linked.clone(), false));

        let other = json!({"outcome": "resolved"});
        assert_eq!(linked_case("closed", &other), None);
        let mut message = json!({"message_id": 4});
        assert!(redact_event("message", &mut message, false));
        assert_eq!(message, json!({"message_id": 4}));
    }
}
