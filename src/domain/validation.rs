//! The one validation accumulator: a request is checked field by field,
//! every problem is collected (so a person sees them all at once), and only
//! a complete, valid command leaves — never a half-checked one.

/// A refused input field, named as the API names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Collects every problem of a form so the client can show them all at once.
#[derive(Debug, Default)]
pub struct Problems(pub Vec<Invalid>);

impl Problems {
    pub fn push(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(Invalid::new(field, message));
    }

    pub fn required<'a>(&mut self, field: &str, value: Option<&'a str>) -> Option<&'a str> {
        if value.is_none() {
            self.push(field, "is required");
        }
        value
    }

    /// Keeps the value, or records the error under `field`.
    pub fn check<T, E: ToString>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        result.map_err(|e| self.push(field, e.to_string())).ok()
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
