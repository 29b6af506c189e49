//! Schemas of the OpenAPI document that the body types cannot carry on their
//! own: the vocabulary codes (built from the domain enums, so the document
//! and the parsers cannot drift) and the text rules the handlers apply
//! (lengths in characters, blank text, control characters). Bodies refer to
//! them with `#[schema(value_type = …)]`.

use std::borrow::Cow;

use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::desk::meetings::PLAN_MAX_CHARS;
use crate::domain::account::{AFFILIATION_MAX_CHARS, NAME_MAX_CHARS, ORGANIZATION_MAX_CHARS};
use crate::domain::account::{Locale, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};
use crate::domain::case::{DESCRIPTION_MAX_CHARS, NOTE_MAX_CHARS, TITLE_MAX_CHARS};
use crate::domain::lifecycle::ActionKind;
use crate::domain::matching::Exclusion;
use crate::domain::role::Role;
use crate::domain::vocabulary::{
    CaseStatus, Category, Lang, MessageVisibility, OrganizationKind, Outcome, Priority,
    ProductType, Route, Stage,
};

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn codes<const N: usize>(description: &str, codes: [&'static str; N]) -> RefOr<Schema> {
    string()
        .description(Some(description))
        .enum_values(Some(codes))
        .into()
}

/// A schema named `$name` (a component the bodies refer to), with the
/// components it refers to (`uses`).
macro_rules! doc_schema {
    ($($(#[$meta:meta])* $name:ident $(uses $($dep:ty),+)? => $schema:expr;)+) => {$(
        $(#[$meta])*
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }

            fn schemas(_schemas: &mut Vec<(String, RefOr<Schema>)>) {
                $($(
                    _schemas.push((<$dep as ToSchema>::name().into_owned(), <$dep as PartialSchema>::schema()));
                )+)?
            }
        }
    )+};
}

/// The domain enums' codes, as the parsers accept them.
macro_rules! code_schema {
    ($($ty:ty => $description:literal, $codes:expr;)+) => {$(
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                codes($description, $codes)
            }
        }

        impl ToSchema for $ty {}
    )+};
}

code_schema! {
    Lang => "A language: Japanese or English.", Lang::ALL.map(Lang::as_str);
    Locale => "The language of the user's mails.", [Locale::Ja.as_str(), Locale::En.as_str()];
    ProductType => "What the venture develops.", ProductType::ALL.map(ProductType::as_str);
    Category => "A consultation category.", Category::ALL.map(Category::as_str);
    Stage => "Development stage of the product.", Stage::ALL.map(Stage::as_str);
    OrganizationKind => "What kind of organisation brings the case.", OrganizationKind::ALL.map(OrganizationKind::as_str);
    CaseStatus => "Where a case stands.", CaseStatus::ALL.map(CaseStatus::as_str);
    Outcome => "How a closed case ended.", Outcome::ALL.map(Outcome::as_str);
    Priority => "Triage priority.", Priority::ALL.map(Priority::as_str);
    Route => "The way triage sends a case on.", Route::ALL.map(Route::as_str);
    MessageVisibility => "Who may read a message; applicants never see `internal` ones.", MessageVisibility::ALL.map(MessageVisibility::as_str);
    Role => "What a user is to the desk.", Role::ALL.map(Role::as_str);
    ActionKind => "A case action: what `allowed_actions` lists and `POST /api/v1/cases/{id}/actions/{action}` takes.", ActionKind::CASE_ACTIONS.map(ActionKind::as_str);
}

/// What Rust's `char::is_whitespace` (and so `str::trim`) counts as white
/// space, as a regular-expression class body.
const WHITE_SPACE: &str = r"\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// `char::is_control`: the C0 and C1 control characters.
const CONTROL: &str = r"\u0000-\u001f\u007f-\u009f";

/// Free text as `domain::case::parse_text` takes it: 1 to `max` characters,
/// not only white space, stored verbatim.
fn text(max: usize) -> RefOr<Schema> {
    string()
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(format!("[^{WHITE_SPACE}]")))
        .into()
}

/// `domain::account::is_bidi_control`: the characters with the Unicode
/// `Bidi_Control` property, refused in names and titles.
const BIDI_CONTROL: &str = r"\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069";

/// A name as `domain::account::parse_display_name` takes it: trimmed, 1 to
/// `max` characters, no control characters, no bidirectional controls (and
/// a visible character, which the description says: a pattern cannot list
/// every invisible one).
fn display_name_pattern(max: usize) -> String {
    // The first and last kept characters are neither white space nor
    // control characters; those between are not control characters.
    let edge = format!(r"[^{CONTROL}{BIDI_CONTROL}{WHITE_SPACE}]");
    let inner = format!("[^{CONTROL}{BIDI_CONTROL}]");
    let pad = format!("[{WHITE_SPACE}]");
    format!("^{pad}*{edge}(?:{inner}{{0,{}}}{edge})?{pad}*$", max - 2)
}

fn display_name(max: usize) -> RefOr<Schema> {
    string()
        .min_length(Some(1))
        .pattern(Some(display_name_pattern(max)))
        .into()
}

/// An object with one integer property per code, each present.
fn per_key(
    keys: impl IntoIterator<Item = &'static str>,
    minimum: Option<i64>,
    maximum: Option<i64>,
) -> RefOr<Schema> {
    let mut object = ObjectBuilder::new().schema_type(Type::Object);
    for key in keys {
        object = object
            .property(
                key,
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(minimum)
                    .maximum(maximum),
            )
            .required(key);
    }
    object.into()
}

/// A list of codes of `T`, none twice.
fn unique_codes<T: ToSchema>(min_items: usize) -> RefOr<Schema> {
    ArrayBuilder::new()
        .items(RefOr::Ref(
            utoipa::openapi::Ref::from_schema_name(T::name()),
        ))
        .min_items(Some(min_items))
        .unique_items(true)
        .into()
}

doc_schema! {
    /// A case title: a visible character (not only white space, zero-width
    /// characters or combining marks), no bidirectional control characters
    /// (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069).
    Title => string()
        .min_length(Some(1))
        .max_length(Some(TITLE_MAX_CHARS))
        .pattern(Some(format!(
            "^[^{BIDI_CONTROL}]*[^{WHITE_SPACE}{BIDI_CONTROL}][^{BIDI_CONTROL}]*$"
        )))
        .into();
    /// A case description or a message.
    LongText => text(DESCRIPTION_MAX_CHARS);
    /// Meeting advice or a support plan.
    RecordText => text(PLAN_MAX_CHARS);
    /// A note or a reason kept in the timeline.
    Note => text(NOTE_MAX_CHARS);
    /// A person's name: a visible character (not only white space,
    /// zero-width characters or combining marks), no control or
    /// bidirectional control characters (U+061C, U+200E, U+200F,
    /// U+202A–U+202E, U+2066–U+2069). Emoji and Japanese are kept as typed.
    PersonName => display_name(NAME_MAX_CHARS);
    /// An organisation's name, with the rules of a person's name.
    OrganizationName => display_name(ORGANIZATION_MAX_CHARS);
    /// An expert's affiliation: a name, or blank for none.
    Affiliation => string()
        .pattern(Some(format!(
            "^[{WHITE_SPACE}]*$|{}",
            display_name_pattern(AFFILIATION_MAX_CHARS)
        )))
        .into();
    /// At least 12 characters, not only white space.
    Password => string()
        .min_length(Some(MIN_PASSWORD_CHARS))
        .max_length(Some(MAX_PASSWORD_CHARS))
        .pattern(Some(format!("[^{WHITE_SPACE}]")))
        .into();
    /// An e-mail address with a domain that has a dot; compared without case.
    Email => string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
        .max_length(Some(254))
        .into();
    /// A calendar date `YYYY-MM-DD`.
    IsoDate => string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
        .pattern(Some("^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))
        .into();
    /// `month` or `year`.
    TrendInterval => codes("Trend granularity.", ["month", "year"]);
    /// Why an expert may not be assigned to a case.
    ExclusionReason => codes(
        "Why an expert may not be assigned to a case.",
        [
            Exclusion::ConflictOfInterest { organization: String::new() }.code(),
            Exclusion::Paused { until: chrono::NaiveDate::MIN }.code(),
            Exclusion::AtCapacity { load: 0, capacity: 0 }.code(),
            Exclusion::DeclinedBefore.code(),
            Exclusion::AlreadyAssigned.code(),
        ],
    );
    /// Why an expert fits a case (a suggestion's reason).
    ReasonCode => codes(
        "Why an expert fits a case: one scoring term of a suggestion.",
        crate::domain::matching::Reason::CODES,
    );
    /// A case's stage: empty for imported historical cases, which record none.
    CaseStage => string()
        .description(Some("Development stage of the product; empty for imported historical cases."))
        .enum_values(Some(Stage::ALL.map(Stage::as_str).into_iter().chain([crate::db::import::UNRECORDED_STAGE])))
        .into();
    /// An expert's part on a case.
    AssignmentRole => codes("An expert's part on a case.", ["lead", "member"]);
    /// Where an assignment stands.
    AssignmentStatus => codes(
        "Where an assignment stands.",
        crate::domain::assignment::AssignmentStatus::ALL
            .map(crate::domain::assignment::AssignmentStatus::as_str),
    );
    /// Which of an expert's assignments to list.
    AssignmentFilter => codes(
        "`active`: proposed and accepted; `all`: every one.",
        ["active", "all"],
    );
    /// How a meeting takes place.
    MeetingMode => codes("How a meeting takes place.", ["online", "onsite"]);
    /// A mail's delivery state.
    MailState => codes("A mail's delivery state.", ["pending", "sent", "failed"]);
    /// A count per category code, every category present.
    PerCategoryCounts => per_key(Category::ALL.map(Category::as_str), Some(0), None);
    /// A whole percent per category code, every category present.
    PerCategoryPercents => per_key(Category::ALL.map(Category::as_str), Some(0), Some(100));
    /// A count per product type code, every product type present.
    PerProductType => per_key(ProductType::ALL.map(ProductType::as_str), Some(0), None);
    /// A count per open case status, every open status present.
    OpenPerStatus => per_key(
        CaseStatus::ALL
            .into_iter()
            .filter(|s| *s != CaseStatus::Closed)
            .map(CaseStatus::as_str),
        Some(0),
        None,
    );
    /// At least one category, none twice.
    Categories uses Category => unique_codes::<Category>(1);
    /// Product types, none twice.
    ProductTypes uses ProductType => unique_codes::<ProductType>(0);
    /// At least one language, none twice.
    Languages uses Lang => unique_codes::<Lang>(1);
    /// A page position: the `next_cursor` of the previous page.
    CaseCursor => string()
        .pattern(Some("^[+-]?[0-9]{1,18}\\.[+-]?[0-9]{1,18}$"))
        .into();
    /// `If-Match`: a version as the `ETag` gives it (`"3"`, also `3` or
    /// `W/"3"`), or `*`.
    IfMatchValue => string()
        .pattern(Some("^(\\*|(W/)?\"*[+-]?[0-9]{1,18}\"*)$"))
        .into();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The characters a regular-expression class body lists (`a-b` ranges,
    /// `\t`, `\r`, `\uXXXX` and literal characters: what the classes above use).
    fn class_members(body: &str) -> Vec<char> {
        let mut singles = Vec::new();
        let mut chars = body.chars().peekable();
        while let Some(c) = chars.next() {
            let c = match c {
                '\\' => match chars.next() {
                    Some('t') => '\t',
                    Some('r') => '\r',
                    Some('u') => {
                        let hex: String = chars.by_ref().take(4).collect();
                        char::from_u32(u32::from_str_radix(&hex, 16).unwrap()).unwrap()
                    }
                    other => panic!("unexpected escape {other:?}"),
                },
                c => c,
            };
            singles.push(c);
        }
        let mut members = Vec::new();
        let mut i = 0;
        while i < singles.len() {
            if i + 2 < singles.len() && singles[i + 1] == '-' {
                members.extend(singles[i]..=singles[i + 2]);
                i += 3;
            } else {
                members.push(singles[i]);
                i += 1;
            }
        }
        members
    }

    fn every_char() -> impl Iterator<Item = char> {
        (0..=0x10ffffu32).filter_map(char::from_u32)
    }

    #[test]
    fn white_space_class_is_what_trim_removes() {
        let expected: Vec<char> = every_char().filter(|c| c.is_whitespace()).collect();
        assert_eq!(class_members(WHITE_SPACE), expected);
    }

    #[test]
    fn control_class_is_char_is_control() {
        let expected: Vec<char> = every_char().filter(|c| c.is_control()).collect();
        assert_eq!(class_members(CONTROL), expected);
    }

    #[test]
    fn display_name_pattern_counts_the_trimmed_name() {
        assert!(display_name_pattern(100).contains("{0,98}"));
    }
}
