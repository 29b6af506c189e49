//! The confidentiality terms experts acknowledge by accepting an
//! assignment (PRODUCT.md, "Confidentiality is the desk's first promise").
//!
//! The text is compiled into the binary from `templates/terms/`, one file
//! per language; its version is [`CONFIDENTIALITY_TERMS_VERSION`], the one
//! an acceptance records. A new version is a new text, a new version
//! constant and a new effective date, in one commit.

/// The version of the terms in force, recorded with every acceptance.
pub const CONFIDENTIALITY_TERMS_VERSION: &str = "2026-11";

/// The day the current version took effect.
pub const CONFIDENTIALITY_TERMS_EFFECTIVE_ON: &str = "2026-11-01";

/// Where people read the terms (the web page) …
pub const CONFIDENTIALITY_TERMS_PAGE: &str = "/terms/confidentiality";
/// … and where programs read them (no sign-in needed).
pub const CONFIDENTIALITY_TERMS_API: &str = "/api/v1/terms/confidentiality";

/// A version of the terms with its text in both languages (Markdown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms {
    pub version: &'static str,
    /// `YYYY-MM-DD`.
    pub effective_on: &'static str,
    pub ja: &'static str,
    pub en: &'static str,
}

/// The terms in force.
pub const CURRENT: Terms = Terms {
    version: CONFIDENTIALITY_TERMS_VERSION,
    effective_on: CONFIDENTIALITY_TERMS_EFFECTIVE_ON,
    ja: include_str!("../../templates/terms/confidentiality.ja.md"),
    en: include_str!("../../templates/terms/confidentiality.en.md"),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_terms_cover_what_an_expert_promises_in_both_languages() {
        let terms = CURRENT;
        assert_eq!(terms.version, "2026-11");
        assert!(chrono::NaiveDate::parse_from_str(terms.effective_on, "%Y-%m-%d").is_ok());
        // Conflicts of interest, use only for the consultation, no
        // disclosure, return or destroy, duties after the case.
        for needle in [
            "Conflicts of interest",
            "Use only for the consultation",
            "No disclosure",
            "Returning and destroying documents",
            "After the case",
        ] {
            assert!(terms.en.contains(needle), "en: {needle}");
        }
        for needle in [
            "利益相反",
            "目的外利用の禁止",
            "開示の禁止",
            "返却・廃棄",
            "相談終了後の義務",
        ] {
            assert!(terms.ja.contains(needle), "ja: {needle}");
        }
        // Both point to where the current version is published.
        assert!(terms.en.contains(CONFIDENTIALITY_TERMS_PAGE));
        assert!(terms.ja.contains(CONFIDENTIALITY_TERMS_PAGE));
    }
}
