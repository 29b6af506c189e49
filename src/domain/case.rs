//! Case rules outside the lifecycle: intake validation, numbering, the desk
//! calendar, who may read what, and how a requested status maps to an action.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate};

use super::assignment::AssignmentStatus;
use super::lifecycle::{Action, CaseState};
use super::role::Role;
use super::vocabulary::{
    CaseStatus, Category, Lang, MessageVisibility, OrganizationKind, Outcome, ProductType, Stage,
};

pub const TITLE_MAX_CHARS: usize = 200;
pub const DESCRIPTION_MAX_CHARS: usize = 20_000;
pub const MESSAGE_MAX_CHARS: usize = 20_000;
pub const NOTE_MAX_CHARS: usize = 5_000;

use super::validation::{Code, Invalid, Problems, Refusal};

/// Text stored verbatim: only its length (in characters) and emptiness are checked.
pub fn parse_text(raw: &str, max_chars: usize) -> Result<String, Refusal> {
    if raw.trim().is_empty() {
        return Err(Refusal::new(Code::Required, "must not be empty"));
    }
    let chars = raw.chars().count();
    if chars > max_chars {
        return Err(Refusal::new(
            Code::TooLong { max: max_chars },
            format!("must be at most {max_chars} characters (got {chars})"),
        ));
    }
    Ok(raw.to_owned())
}

/// A case title: [`parse_text`] of at most [`TITLE_MAX_CHARS`], and, as it
/// is listed beside other cases and put in mail subjects, shown as stored
/// like a name ([`super::account::check_shown_as_stored`]: a visible
/// character, no bidirectional controls). Descriptions and messages are
/// free text and keep whatever they are given.
pub fn parse_title(raw: &str) -> Result<String, Refusal> {
    let title = parse_text(raw, TITLE_MAX_CHARS)?;
    super::account::check_shown_as_stored(&title)?;
    Ok(title)
}

/// At least one known category, none twice; kept in the canonical order.
pub fn parse_categories(raw: &[String]) -> Result<Vec<Category>, Refusal> {
    if raw.is_empty() {
        return Err(no_category());
    }
    let mut categories = Vec::with_capacity(raw.len());
    for code in raw {
        let category: Category = code.parse()?;
        if categories.contains(&category) {
            return Err(Refusal::new(Code::Twice, format!("lists {code:?} twice")));
        }
        categories.push(category);
    }
    categories.sort();
    Ok(categories)
}

fn no_category() -> Refusal {
    Refusal::new(Code::NoCategory, "must name at least one category")
}

/// A validated consultation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intake {
    pub title: String,
    pub description: String,
    pub product_type: ProductType,
    pub categories: Vec<Category>,
    pub stage: Stage,
    pub language: Lang,
    pub organization_name: Option<String>,
    pub organization_kind: Option<OrganizationKind>,
}

/// The request as it arrives; every field optional so that each missing one
/// is reported by name.
#[derive(Debug, Default, Clone)]
pub struct IntakeForm<'a> {
    pub title: Option<&'a str>,
    pub description: Option<&'a str>,
    pub product_type: Option<&'a str>,
    pub categories: Option<&'a [String]>,
    pub stage: Option<&'a str>,
    pub language: Option<&'a str>,
    pub organization_name: Option<&'a str>,
    pub organization_kind: Option<&'a str>,
}

impl IntakeForm<'_> {
    pub fn validate(&self) -> Result<Intake, Vec<Invalid>> {
        let mut problems = Problems::default();
        let title = problems
            .required("title", self.title)
            .and_then(|t| problems.check("title", parse_title(t)));
        let description = problems
            .required("description", self.description)
            .and_then(|d| problems.check("description", parse_text(d, DESCRIPTION_MAX_CHARS)));
        let product_type = problems
            .required("product_type", self.product_type)
            .and_then(|p| problems.check("product_type", p.parse::<ProductType>()));
        let categories = match self.categories {
            None => {
                problems.push("categories", no_category());
                None
            }
            Some(raw) => problems.check("categories", parse_categories(raw)),
        };
        let stage = problems
            .required("stage", self.stage)
            .and_then(|s| problems.check("stage", s.parse::<Stage>()));
        let language = match self.language {
            None => Some(Lang::Ja),
            Some(l) => problems.check("language", l.parse::<Lang>()),
        };
        let organization_name = match self.organization_name {
            None => Some(None),
            Some(name) => problems
                .check(
                    "organization.name",
                    super::account::parse_display_name(
                        name,
                        super::account::ORGANIZATION_MAX_CHARS,
                    ),
                )
                .map(Some),
        };
        let organization_kind = match self.organization_kind {
            None => Some(None),
            Some(kind) => problems
                .check("organization.kind", kind.parse::<OrganizationKind>())
                .map(Some),
        };
        problems.finish(|| {
            Some(Intake {
                title: title?,
                description: description?,
                product_type: product_type?,
                categories: categories?,
                stage: stage?,
                language: language?,
                organization_name: organization_name?,
                organization_kind: organization_kind?,
            })
        })
    }
}

/// What an applicant filed and may correct while the desk has not read it
/// yet (issue 16): the case's own fields as filed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiledFields {
    pub title: String,
    pub description: String,
    pub product_type: ProductType,
    /// The applicant's categories, in the canonical order.
    pub categories: Vec<Category>,
    /// None for an imported historical case, which records no stage.
    pub stage: Option<Stage>,
}

/// A validated correction: the fields it sets (None leaves one as it is).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CaseEdit {
    pub title: Option<String>,
    pub description: Option<String>,
    pub product_type: Option<ProductType>,
    pub categories: Option<Vec<Category>>,
    pub stage: Option<Stage>,
}

/// The correction as it arrives; absent fields stay as they are, present
/// ones are checked as the intake checks them.
#[derive(Debug, Default, Clone)]
pub struct EditForm<'a> {
    pub title: Option<&'a str>,
    pub description: Option<&'a str>,
    pub product_type: Option<&'a str>,
    pub categories: Option<&'a [String]>,
    pub stage: Option<&'a str>,
}

impl EditForm<'_> {
    pub fn validate(&self) -> Result<CaseEdit, Vec<Invalid>> {
        let mut problems = Problems::default();
        let title = self
            .title
            .map(|t| problems.check("title", parse_text(t, TITLE_MAX_CHARS)));
        let description = self
            .description
            .map(|d| problems.check("description", parse_text(d, DESCRIPTION_MAX_CHARS)));
        let product_type = self
            .product_type
            .map(|p| problems.check("product_type", p.parse::<ProductType>()));
        let categories = self
            .categories
            .map(|raw| problems.check("categories", parse_categories(raw)));
        let stage = self
            .stage
            .map(|s| problems.check("stage", s.parse::<Stage>()));
        // A present field that was refused is `Some(None)`: `?` on it ends
        // the closure, but `finish` returns the problems first.
        problems.finish(|| {
            Some(CaseEdit {
                title: title.map_or(Some(None), |t| t.map(Some))?,
                description: description.map_or(Some(None), |d| d.map(Some))?,
                product_type: product_type.map_or(Some(None), |p| p.map(Some))?,
                categories: categories.map_or(Some(None), |c| c.map(Some))?,
                stage: stage.map_or(Some(None), |s| s.map(Some))?,
            })
        })
    }
}

impl CaseEdit {
    /// The fields after the correction, and the names of those it changed
    /// (in the order of the intake; empty when it changes nothing).
    pub fn apply(&self, current: &FiledFields) -> (FiledFields, Vec<&'static str>) {
        let mut changed = Vec::new();
        let mut next = current.clone();
        if let Some(title) = self.title.as_ref().filter(|t| **t != current.title) {
            next.title = title.clone();
            changed.push("title");
        }
        if let Some(description) = self
            .description
            .as_ref()
            .filter(|d| **d != current.description)
        {
            next.description = description.clone();
            changed.push("description");
        }
        if let Some(product_type) = self.product_type.filter(|p| *p != current.product_type) {
            next.product_type = product_type;
            changed.push("product_type");
        }
        if let Some(categories) = self
            .categories
            .as_ref()
            .filter(|c| **c != current.categories)
        {
            next.categories = categories.clone();
            changed.push("categories");
        }
        if let Some(stage) = self.stage.filter(|s| Some(*s) != current.stage) {
            next.stage = Some(stage);
            changed.push("stage");
        }
        (next, changed)
    }
}

/// Why a case may not be corrected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditRefusal {
    /// Experts and managers never correct a filed case (403).
    NotPermitted,
    /// The desk has taken the case up: what it read stays as filed, and
    /// corrections go into a message (409).
    NotSubmitted(CaseStatus),
}

/// Who may correct a filed case, and when: the applicant's organisation
/// and desk staff, while the case is still `submitted` (nobody at the desk
/// has claimed it, so nobody has read a version that would silently change).
pub fn may_edit(role: Role, view: CaseView, status: CaseStatus) -> Result<(), EditRefusal> {
    let permitted = match role {
        Role::Supporter | Role::Admin => true,
        Role::Applicant => view == CaseView::Applicant,
        Role::Expert | Role::Manager => false,
    };
    if !permitted {
        Err(EditRefusal::NotPermitted)
    } else if status != CaseStatus::Submitted {
        Err(EditRefusal::NotSubmitted(status))
    } else {
        Ok(())
    }
}

/// The categories a case is counted and matched under: the ones triage
/// confirmed, or the applicant's own before triage (PRODUCT.md,
/// "Statistics").
pub fn effective_categories<T>(applicant: Vec<T>, confirmed: Vec<T>) -> Vec<T> {
    if confirmed.is_empty() {
        applicant
    } else {
        confirmed
    }
}

/// The desk works in Japan: dates and case-number years are in JST (UTC+9,
/// no daylight saving).
pub fn desk_offset() -> FixedOffset {
    FixedOffset::east_opt(9 * 3600).expect("valid offset")
}

pub fn desk_date(micros: i64) -> NaiveDate {
    DateTime::from_timestamp_micros(micros)
        .unwrap_or_default()
        .with_timezone(&desk_offset())
        .date_naive()
}

/// `MD-2026-00042`: unique per desk and year; numbers may have gaps.
pub fn case_number(received_on: NaiveDate, sequence: i64) -> String {
    format!("MD-{}-{sequence:05}", received_on.year())
}

/// The detail of a case's `submitted` event: the number it was filed under.
pub fn filing_detail(number: &str) -> String {
    serde_json::json!({ "number": number }).to_string()
}

/// What a role may see of a case, given its relation to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseView {
    /// Desk staff, or an expert who accepted: everything, reads are logged.
    Desk,
    /// A member of the case's organisation: the case and public messages.
    Applicant,
    /// An assigned expert who has not accepted yet: a summary without
    /// confidential text.
    ExpertSummary,
    /// Not visible at all (answered as 404, which leaks nothing).
    Hidden,
}

/// The per-object read rule of PRODUCT.md's roles table. `assignment` is the
/// caller's expert assignment on this case: None, Some(false) proposed,
/// Some(true) accepted.
pub fn case_view(role: Role, is_member: bool, assignment: Option<bool>) -> CaseView {
    match role {
        Role::Supporter | Role::Admin => CaseView::Desk,
        Role::Applicant if is_member => CaseView::Applicant,
        Role::Expert => match assignment {
            Some(true) => CaseView::Desk,
            Some(false) => CaseView::ExpertSummary,
            None => CaseView::Hidden,
        },
        // Managers see aggregates only; non-members see nothing.
        Role::Manager | Role::Applicant => CaseView::Hidden,
    }
}

impl CaseView {
    pub fn sees_internal(self) -> bool {
        self == CaseView::Desk
    }

    /// Reads of case text by desk staff and experts go to the access log.
    pub fn is_logged(self) -> bool {
        matches!(self, CaseView::Desk | CaseView::ExpertSummary)
    }

    pub fn may_see_messages(self, visibility: MessageVisibility) -> bool {
        match self {
            CaseView::Desk => true,
            CaseView::Applicant => visibility == MessageVisibility::Applicant,
            CaseView::ExpertSummary | CaseView::Hidden => false,
        }
    }
}

/// Why a message's visibility is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisibilityRefusal {
    /// Desk staff and experts must say who reads the message (a 422
    /// naming `visibility`).
    Missing,
    /// Not the writer's to choose, or not their case to write on.
    Forbidden(&'static str),
}

/// What a writer who must choose is told when they did not.
pub const VISIBILITY_REQUIRED: &str = "is required of desk staff and experts: \
internal (the desk side only) or applicant (the applicant reads it too)";

/// Whether a writer of `role` must say who reads their message. Applicants
/// write only `applicant` messages; everyone else chooses every time: a
/// silent default once kept a supporter's answer from the founder it was
/// meant for (issue 16), and the other default would show desk notes to
/// applicants.
pub fn visibility_required(role: Role) -> bool {
    role != Role::Applicant
}

/// Which message visibility a writer may use. Applicants always write
/// `applicant` messages; the desk side must choose (see
/// [`visibility_required`]).
pub fn message_visibility(
    view: CaseView,
    requested: Option<MessageVisibility>,
) -> Result<MessageVisibility, VisibilityRefusal> {
    match view {
        CaseView::Applicant => match requested {
            None | Some(MessageVisibility::Applicant) => Ok(MessageVisibility::Applicant),
            Some(MessageVisibility::Internal) => Err(VisibilityRefusal::Forbidden(
                "applicants can only write messages the applicant sees",
            )),
        },
        CaseView::Desk => requested.ok_or(VisibilityRefusal::Missing),
        CaseView::ExpertSummary | CaseView::Hidden => Err(VisibilityRefusal::Forbidden(
            "you may not write on this case",
        )),
    }
}

/// How much of one expert assignment on a case a caller may see.
///
/// An expert's answer to the desk (a decline and its reason, the terms they
/// acknowledged) may concern another client of theirs: only desk staff and
/// the expert themself see it. An expert who accepted works beside the other
/// accepted experts and sees who they are and in which role; an expert who
/// was only proposed sees their own assignment and nothing of the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssignmentDisclosure {
    /// Every field.
    Full,
    /// A colleague on the case: expert, role and status, none of their answers.
    Colleague,
    /// Left out of the answer.
    Hidden,
}

/// The disclosure rule for an assignment in `status` shown to a caller of
/// `role` whose view of the case is `view`; `own` when it is the caller's.
pub fn assignment_disclosure(
    role: Role,
    view: CaseView,
    own: bool,
    status: AssignmentStatus,
) -> AssignmentDisclosure {
    match (role, view) {
        (Role::Supporter | Role::Admin, CaseView::Desk) => AssignmentDisclosure::Full,
        (Role::Expert, _) if own => AssignmentDisclosure::Full,
        (Role::Expert, CaseView::Desk)
            if matches!(
                status,
                AssignmentStatus::Accepted | AssignmentStatus::Completed
            ) =>
        {
            AssignmentDisclosure::Colleague
        }
        _ => AssignmentDisclosure::Hidden,
    }
}

/// Timeline event details that only desk staff see: (event kind, key).
/// An expert's decline reason may concern another client of theirs.
const STAFF_ONLY_EVENT_DETAIL: &[(&str, &str)] = &[("expert_declined", "reason")];

/// Removes from the detail of an event of `kind` what `role` may not read
/// (see [`assignment_disclosure`]); accepted experts read the desk-side
/// timeline.
pub fn redact_event_detail(role: Role, kind: &str, detail: &mut serde_json::Value) {
    if role.is_desk_staff() {
        return;
    }
    if let Some(fields) = detail.as_object_mut() {
        for (_, key) in STAFF_ONLY_EVENT_DETAIL.iter().filter(|(k, _)| *k == kind) {
            fields.remove(*key);
        }
    }
}

/// Maps `POST /cases/{id}/status {status, outcome}` to the lifecycle action
/// it means from the current state. None when no action leads there.
pub fn action_for_status(
    state: &CaseState,
    target: CaseStatus,
    outcome: Option<Outcome>,
    role: Role,
) -> Option<Action> {
    use CaseStatus as S;
    match (state.status, target) {
        (S::Closed, S::InConsultation) => Some(Action::Reopen),
        (S::Closed, _) => None,
        (_, S::Closed) => match (role, outcome) {
            (Role::Applicant, None | Some(Outcome::Withdrawn)) => Some(Action::Withdraw),
            (Role::Applicant, Some(_)) => None,
            (_, Some(Outcome::Withdrawn)) => Some(Action::Withdraw),
            (_, Some(outcome)) => Some(Action::Close { outcome }),
            (_, None) => None,
        },
        (S::AwaitingInfo, to)
            if Some(to) == state.resume_to || (state.resume_to.is_none() && to == S::Triage) =>
        {
            Some(Action::ApplicantReply)
        }
        (_, S::AwaitingInfo) => Some(Action::RequestInfo),
        (S::Submitted, S::Triage) => Some(Action::Claim),
        (S::InConsultation, S::Matching) => Some(Action::StartMatching),
        (S::Matching, S::InConsultation) => Some(Action::StartConsultation),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ASSIGNMENT_STATUSES: [AssignmentStatus; 5] = AssignmentStatus::ALL;

    #[test]
    fn desk_staff_see_every_assignment_in_full() {
        for role in [Role::Supporter, Role::Admin] {
            for status in ASSIGNMENT_STATUSES {
                assert_eq!(
                    assignment_disclosure(role, CaseView::Desk, false, status),
                    AssignmentDisclosure::Full
                );
            }
        }
    }

    #[test]
    fn a_proposed_expert_sees_only_their_own_assignment() {
        for status in ASSIGNMENT_STATUSES {
            assert_eq!(
                assignment_disclosure(Role::Expert, CaseView::ExpertSummary, false, status),
                AssignmentDisclosure::Hidden,
                "{status}"
            );
        }
        assert_eq!(
            assignment_disclosure(
                Role::Expert,
                CaseView::ExpertSummary,
                true,
                AssignmentStatus::Proposed
            ),
            AssignmentDisclosure::Full
        );
    }

    #[test]
    fn an_accepted_expert_sees_colleagues_but_not_who_declined_or_left() {
        let seen = |status| assignment_disclosure(Role::Expert, CaseView::Desk, false, status);
        assert_eq!(
            seen(AssignmentStatus::Accepted),
            AssignmentDisclosure::Colleague
        );
        assert_eq!(
            seen(AssignmentStatus::Completed),
            AssignmentDisclosure::Colleague
        );
        for status in [
            AssignmentStatus::Proposed,
            AssignmentStatus::Declined,
            AssignmentStatus::Withdrawn,
        ] {
            assert_eq!(seen(status), AssignmentDisclosure::Hidden, "{status}");
        }
        assert_eq!(
            assignment_disclosure(
                Role::Expert,
                CaseView::Desk,
                true,
                AssignmentStatus::Accepted
            ),
            AssignmentDisclosure::Full
        );
    }

    #[test]
    fn other_roles_see_no_assignment() {
        for (role, view) in [
            (Role::Applicant, CaseView::Applicant),
            (Role::Manager, CaseView::Hidden),
            (Role::Applicant, CaseView::Hidden),
        ] {
            for status in ASSIGNMENT_STATUSES {
                assert_eq!(
                    assignment_disclosure(role, view, false, status),
                    AssignmentDisclosure::Hidden
                );
            }
        }
    }

    #[test]
    fn decline_reasons_are_kept_from_everyone_but_desk_staff() {
        let event = serde_json::json!({"assignment_id": 4, "reason": "advises a competitor"});
        for role in [Role::Supporter, Role::Admin] {
            let mut detail = event.clone();
            redact_event_detail(role, "expert_declined", &mut detail);
            assert_eq!(detail, event);
        }
        for role in [Role::Expert, Role::Applicant, Role::Manager] {
            let mut detail = event.clone();
            redact_event_detail(role, "expert_declined", &mut detail);
            assert_eq!(detail, serde_json::json!({"assignment_id": 4}));
        }
    }

    #[test]
    fn the_desks_questions_keep_their_reason_for_everyone() {
        let event = serde_json::json!({"reason": "売上計画を教えてください"});
        for role in [Role::Applicant, Role::Expert] {
            let mut detail = event.clone();
            redact_event_detail(role, "info_requested", &mut detail);
            assert_eq!(detail, event);
        }
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn form(categories: &[String]) -> IntakeForm<'_> {
        IntakeForm {
            title: Some("承認申請の相談"),
            description: Some("<b>\"quoted\"</b> & 日本語"),
            product_type: Some("medical_device"),
            categories: Some(categories),
            stage: Some("non_clinical"),
            language: Some("ja"),
            organization_name: None,
            organization_kind: None,
        }
    }

    #[test]
    fn valid_intake_keeps_text_verbatim_and_orders_categories() {
        let categories = strings(&["reimbursement", "regulatory"]);
        let intake = form(&categories).validate().unwrap();
        assert_eq!(intake.description, "<b>\"quoted\"</b> & 日本語");
        assert_eq!(
            intake.categories,
            vec![Category::Regulatory, Category::Reimbursement]
        );
        assert_eq!(intake.product_type, ProductType::MedicalDevice);
    }

    #[test]
    fn every_bad_field_is_reported() {
        let categories = strings(&["regulatory", "regulatory"]);
        let mut bad = form(&categories);
        bad.title = Some("   ");
        bad.product_type = Some("pharma");
        bad.stage = None;
        let long = "長".repeat(DESCRIPTION_MAX_CHARS + 1);
        bad.description = Some(&long);
        let fields: Vec<String> = bad
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|i| i.field)
            .collect();
        assert_eq!(
            fields,
            vec![
                "title",
                "description",
                "product_type",
                "categories",
                "stage"
            ]
        );
    }

    #[test]
    fn categories_must_be_known_unique_and_present() {
        assert!(parse_categories(&[]).is_err());
        assert!(parse_categories(&strings(&["astrology"])).is_err());
        assert!(parse_categories(&strings(&["ip_strategy", "ip_strategy"])).is_err());
        assert_eq!(
            parse_categories(&strings(&["other", "regulatory"])).unwrap(),
            vec![Category::Regulatory, Category::Other]
        );
    }

    #[test]
    fn limits_count_characters() {
        assert!(parse_text(&"字".repeat(TITLE_MAX_CHARS), TITLE_MAX_CHARS).is_ok());
        assert!(parse_text(&"字".repeat(TITLE_MAX_CHARS + 1), TITLE_MAX_CHARS).is_err());
    }

    #[test]
    fn titles_show_what_is_stored() {
        assert_eq!(
            parse_title("承認申請 🚀 (クラスII)"),
            Ok("承認申請 🚀 (クラスII)".to_owned())
        );
        for bad in [
            "\u{200B}\u{200D}",
            "Invoice \u{202E}fdp.exe",
            "\u{2067}申請",
        ] {
            assert!(parse_title(bad).is_err(), "{bad:?}");
        }
        assert!(parse_title(&"字".repeat(TITLE_MAX_CHARS + 1)).is_err());
    }

    #[test]
    fn desk_calendar_is_japan() {
        // 2026-12-31 20:00 UTC is already 2027-01-01 in Tokyo.
        let micros = chrono::NaiveDate::from_ymd_opt(2026, 12, 31)
            .unwrap()
            .and_hms_opt(20, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_micros();
        let date = desk_date(micros);
        assert_eq!(date.to_string(), "2027-01-01");
        assert_eq!(case_number(date, 42), "MD-2027-00042");
        assert_eq!(case_number(date, 123_456), "MD-2027-123456");
    }

    #[test]
    fn case_views_follow_the_roles_table() {
        assert_eq!(case_view(Role::Supporter, false, None), CaseView::Desk);
        assert_eq!(case_view(Role::Admin, false, None), CaseView::Desk);
        assert_eq!(case_view(Role::Applicant, true, None), CaseView::Applicant);
        assert_eq!(case_view(Role::Applicant, false, None), CaseView::Hidden);
        assert_eq!(case_view(Role::Manager, true, Some(true)), CaseView::Hidden);
        assert_eq!(case_view(Role::Expert, false, None), CaseView::Hidden);
        assert_eq!(
            case_view(Role::Expert, false, Some(false)),
            CaseView::ExpertSummary
        );
        assert_eq!(case_view(Role::Expert, false, Some(true)), CaseView::Desk);
        assert!(!CaseView::Applicant.may_see_messages(MessageVisibility::Internal));
        assert!(CaseView::Applicant.may_see_messages(MessageVisibility::Applicant));
        assert!(!CaseView::ExpertSummary.may_see_messages(MessageVisibility::Applicant));
        assert!(CaseView::Desk.is_logged() && !CaseView::Applicant.is_logged());
    }

    #[test]
    fn applicants_write_only_public_messages() {
        assert_eq!(
            message_visibility(CaseView::Applicant, None),
            Ok(MessageVisibility::Applicant)
        );
        assert!(
            message_visibility(CaseView::Applicant, Some(MessageVisibility::Internal)).is_err()
        );
        assert_eq!(
            message_visibility(CaseView::Desk, None),
            Err(VisibilityRefusal::Missing)
        );
        for requested in [MessageVisibility::Internal, MessageVisibility::Applicant] {
            assert_eq!(
                message_visibility(CaseView::Desk, Some(requested)),
                Ok(requested)
            );
        }
        assert!(matches!(
            message_visibility(CaseView::ExpertSummary, None),
            Err(VisibilityRefusal::Forbidden(_))
        ));
        assert!(!visibility_required(Role::Applicant));
        for role in [Role::Supporter, Role::Admin, Role::Expert] {
            assert!(visibility_required(role), "{role}");
        }
    }

    fn filed() -> FiledFields {
        FiledFields {
            title: "承認申請の相談".to_owned(),
            description: "説明".to_owned(),
            product_type: ProductType::MedicalDevice,
            categories: vec![Category::Regulatory, Category::Reimbursement],
            stage: Some(Stage::NonClinical),
        }
    }

    #[test]
    fn an_edit_checks_only_the_fields_it_names_as_the_intake_does() {
        assert_eq!(EditForm::default().validate().unwrap(), CaseEdit::default());
        let categories = strings(&["reimbursement", "regulatory"]);
        let edit = EditForm {
            title: Some("typo fixed"),
            categories: Some(&categories),
            ..EditForm::default()
        }
        .validate()
        .unwrap();
        assert_eq!(edit.title.as_deref(), Some("typo fixed"));
        assert_eq!(
            edit.categories,
            Some(vec![Category::Regulatory, Category::Reimbursement])
        );
        assert_eq!(edit.description, None);

        let twice = strings(&["other", "other"]);
        let long = "x".repeat(TITLE_MAX_CHARS + 1);
        let fields: Vec<String> = EditForm {
            title: Some(&long),
            description: Some(" "),
            product_type: Some("samd"),
            categories: Some(&twice),
            stage: Some("phase3"),
        }
        .validate()
        .unwrap_err()
        .into_iter()
        .map(|i| i.field)
        .collect();
        assert_eq!(
            fields,
            [
                "title",
                "description",
                "product_type",
                "categories",
                "stage"
            ]
        );
        let none: Vec<String> = Vec::new();
        let empty = EditForm {
            categories: Some(&none),
            ..EditForm::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(empty[0].field, "categories");
    }

    #[test]
    fn an_edit_names_the_fields_it_changes() {
        let current = filed();
        let (same, changed) = CaseEdit {
            title: Some(current.title.clone()),
            categories: Some(current.categories.clone()),
            ..CaseEdit::default()
        }
        .apply(&current);
        assert_eq!(same, current);
        assert!(changed.is_empty());

        let edit = CaseEdit {
            title: Some("新しい題".to_owned()),
            description: Some("説明".to_owned()),
            product_type: Some(ProductType::Drug),
            categories: Some(vec![Category::Other]),
            stage: Some(Stage::Idea),
        };
        let (next, changed) = edit.apply(&current);
        assert_eq!(changed, ["title", "product_type", "categories", "stage"]);
        assert_eq!(next.title, "新しい題");
        assert_eq!(next.description, current.description);
        assert_eq!(next.product_type, ProductType::Drug);
        assert_eq!(next.categories, [Category::Other]);
        assert_eq!(next.stage, Some(Stage::Idea));
    }

    #[test]
    fn only_the_applicant_side_and_the_desk_edit_and_only_while_submitted() {
        use CaseStatus as S;
        for status in S::ALL {
            let expected = if status == S::Submitted {
                Ok(())
            } else {
                Err(EditRefusal::NotSubmitted(status))
            };
            assert_eq!(
                may_edit(Role::Applicant, CaseView::Applicant, status),
                expected
            );
            assert_eq!(may_edit(Role::Supporter, CaseView::Desk, status), expected);
            assert_eq!(may_edit(Role::Admin, CaseView::Desk, status), expected);
            for (role, view) in [
                (Role::Expert, CaseView::Desk),
                (Role::Expert, CaseView::ExpertSummary),
                (Role::Manager, CaseView::Hidden),
                (Role::Applicant, CaseView::Hidden),
            ] {
                assert_eq!(
                    may_edit(role, view, status),
                    Err(EditRefusal::NotPermitted),
                    "{role:?} {status}"
                );
            }
        }
    }

    #[test]
    fn status_requests_map_to_actions() {
        use CaseStatus as S;
        let at = |status| CaseState::new(status);
        assert_eq!(
            action_for_status(&at(S::Submitted), S::Triage, None, Role::Supporter),
            Some(Action::Claim)
        );
        assert_eq!(
            action_for_status(&at(S::Triage), S::AwaitingInfo, None, Role::Supporter),
            Some(Action::RequestInfo)
        );
        let waiting = CaseState {
            status: S::AwaitingInfo,
            resume_to: Some(S::Matching),
        };
        assert_eq!(
            action_for_status(&waiting, S::Matching, None, Role::Supporter),
            Some(Action::ApplicantReply)
        );
        assert_eq!(
            action_for_status(&waiting, S::Triage, None, Role::Supporter),
            None
        );
        assert_eq!(
            action_for_status(
                &at(S::Matching),
                S::Closed,
                Some(Outcome::Resolved),
                Role::Supporter
            ),
            Some(Action::Close {
                outcome: Outcome::Resolved
            })
        );
        assert_eq!(
            action_for_status(&at(S::Matching), S::Closed, None, Role::Supporter),
            None
        );
        assert_eq!(
            action_for_status(&at(S::Triage), S::Closed, None, Role::Applicant),
            Some(Action::Withdraw)
        );
        assert_eq!(
            action_for_status(
                &at(S::Triage),
                S::Closed,
                Some(Outcome::Resolved),
                Role::Applicant
            ),
            None
        );
        assert_eq!(
            action_for_status(&at(S::Closed), S::InConsultation, None, Role::Supporter),
            Some(Action::Reopen)
        );
        assert_eq!(
            action_for_status(&at(S::Closed), S::Triage, None, Role::Supporter),
            None
        );
        assert_eq!(
            action_for_status(&at(S::InConsultation), S::Matching, None, Role::Supporter),
            Some(Action::StartMatching)
        );
        assert_eq!(
            action_for_status(&at(S::Matching), S::InConsultation, None, Role::Supporter),
            Some(Action::StartConsultation)
        );
        assert_eq!(
            action_for_status(&at(S::Submitted), S::Matching, None, Role::Supporter),
            None
        );
    }
}
