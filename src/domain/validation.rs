//! The one validation accumulator: a request is checked field by field,
//! every problem is collected (so a person sees them all at once), and only
//! a complete, valid command leaves — never a half-checked one.
//!
//! A problem carries the English `message` the API answers with and, for
//! the common ones, a [`Code`] the pages show in the viewer's language.

use std::fmt;

/// What is wrong with a field, for the pages to say in the viewer's
/// language (`problem_*` labels, `templates/pages/labels/problems.*.toml`).
/// The API keeps answering with the English message only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Missing or blank.
    Required,
    /// Longer than `max` characters.
    TooLong { max: usize },
    /// Shorter than `min` characters.
    TooShort { min: usize },
    /// Not one of a vocabulary's codes.
    NotAllowed,
    /// Not an e-mail address the desk can write to.
    Email,
    /// Only spaces (a password).
    OnlySpaces,
    /// Control characters in a name.
    ControlCharacters,
    /// A bidirectional control character (its code point).
    BidiControl { code_point: u32 },
    /// Nothing visible (only spaces, zero-width characters, marks).
    Invisible,
    /// No category chosen.
    NoCategory,
    /// The same value chosen twice.
    Twice,
    /// Not a number.
    NotANumber,
    /// An e-mail address that has an account already.
    EmailTaken,
    /// An invitation that is unknown, used, expired or for someone else.
    InvitationUnusable,
}

impl Code {
    /// The label's key.
    pub fn key(self) -> &'static str {
        match self {
            Code::Required => "problem_required",
            Code::TooLong { .. } => "problem_too_long",
            Code::TooShort { .. } => "problem_too_short",
            Code::NotAllowed => "problem_not_allowed",
            Code::Email => "problem_email",
            Code::OnlySpaces => "problem_only_spaces",
            Code::ControlCharacters => "problem_control_characters",
            Code::BidiControl { .. } => "problem_bidi_control",
            Code::Invisible => "problem_invisible",
            Code::NoCategory => "problem_no_category",
            Code::Twice => "problem_twice",
            Code::NotANumber => "problem_not_a_number",
            Code::EmailTaken => "problem_email_taken",
            Code::InvitationUnusable => "problem_invitation_unusable",
        }
    }

    /// The values the label names: `{max}`, `{min}`, `{code_point}`.
    pub fn params(self) -> Vec<(&'static str, String)> {
        match self {
            Code::TooLong { max } => vec![("max", max.to_string())],
            Code::TooShort { min } => vec![("min", min.to_string())],
            Code::BidiControl { code_point } => {
                vec![("code_point", format!("U+{code_point:04X}"))]
            }
            _ => Vec::new(),
        }
    }

    /// One of each kind (for the test that every code has its labels).
    pub const EXAMPLES: [Code; 14] = [
        Code::Required,
        Code::TooLong { max: 200 },
        Code::TooShort { min: 12 },
        Code::NotAllowed,
        Code::Email,
        Code::OnlySpaces,
        Code::ControlCharacters,
        Code::BidiControl { code_point: 0x202E },
        Code::Invisible,
        Code::NoCategory,
        Code::Twice,
        Code::NotANumber,
        Code::EmailTaken,
        Code::InvitationUnusable,
    ];
}

/// Why a value is refused: the English message, with its [`Code`] when it
/// is one of the common problems. Parsers return it; it reads (and
/// converts into) a plain `String` where only the message matters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
    pub code: Option<Code>,
}

impl Refusal {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: Some(code),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<Refusal> for String {
    fn from(refusal: Refusal) -> String {
        refusal.message
    }
}

impl From<String> for Refusal {
    fn from(message: String) -> Self {
        Self {
            message,
            code: None,
        }
    }
}

impl From<&str> for Refusal {
    fn from(message: &str) -> Self {
        message.to_owned().into()
    }
}

impl From<super::vocabulary::UnknownCode> for Refusal {
    fn from(unknown: super::vocabulary::UnknownCode) -> Self {
        Refusal::new(Code::NotAllowed, unknown.to_string())
    }
}

impl From<super::role::UnknownRole> for Refusal {
    fn from(unknown: super::role::UnknownRole) -> Self {
        Refusal::new(Code::NotAllowed, unknown.to_string())
    }
}

/// A refused input field, named as the API names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
    /// For the pages: see [`Code`].
    pub code: Option<Code>,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::refused(field, Refusal::from(message.into()))
    }

    pub fn refused(field: impl Into<String>, refusal: impl Into<Refusal>) -> Self {
        let refusal = refusal.into();
        Self {
            field: field.into(),
            message: refusal.message,
            code: refusal.code,
        }
    }
}

/// Collects every problem of a form so the client can show them all at once.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<Invalid>);

impl Problems {
    pub fn push(&mut self, field: &str, refusal: impl Into<Refusal>) {
        self.0.push(Invalid::refused(field, refusal));
    }

    pub fn required<'a>(&mut self, field: &str, value: Option<&'a str>) -> Option<&'a str> {
        if value.is_none() {
            self.push(field, Refusal::new(Code::Required, "is required"));
        }
        value
    }

    /// Keeps the value, or records the error under `field`.
    pub fn check<T, E: Into<Refusal>>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        result.map_err(|e| self.push(field, e)).ok()
    }

    /// The checked value, or every problem found. `build` assembles it from
    /// the fields' `Option`s with `?`: each field that is `None` has recorded
    /// a problem, so a `None` with no problem recorded means a field was
    /// dropped without one — still refused, never a panic.
    pub fn finish<T>(mut self, build: impl FnOnce() -> Option<T>) -> Result<T, Vec<Invalid>> {
        match build() {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => {
                if self.0.is_empty() {
                    self.push("body", "is incomplete");
                }
                Err(self.0)
            }
        }
    }

    pub fn into_result(self) -> Result<(), Vec<Invalid>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_number(raw: &str) -> Result<u32, String> {
        raw.parse().map_err(|_| format!("{raw:?} is not a number"))
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut problems = Problems::default();
        let a = problems
            .required("a", None)
            .and_then(|a| problems.check("a", parse_number(a)));
        let b = problems.check("b", parse_number("x"));
        let c = problems.check("c", parse_number("3"));
        let result = problems.finish(|| Some((a?, b?, c?)));
        let fields: Vec<String> = result.unwrap_err().into_iter().map(|i| i.field).collect();
        assert_eq!(fields, ["a", "b"]);
    }

    #[test]
    fn a_complete_form_becomes_its_value() {
        let mut problems = Problems::default();
        let a = problems.check("a", parse_number("1"));
        let b = problems.check("b", parse_number("2"));
        assert_eq!(problems.finish(|| Some((a?, b?))), Ok((1, 2)));
    }

    #[test]
    fn a_field_dropped_without_a_problem_is_refused_not_a_panic() {
        let problems = Problems::default();
        let missing: Option<u32> = None;
        let errors = problems.finish(|| missing).unwrap_err();
        assert_eq!(errors, vec![Invalid::new("body", "is incomplete")]);
    }
}
