//! Account vocabulary: e-mail addresses, password policy, locales, names.
//! Parse, don't validate: a value of these types is known to be acceptable.

use std::fmt;
use std::str::FromStr;

use super::validation::{Code, Refusal};

/// A syntactically valid, lower-cased e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, Refusal> {
        let trimmed = raw.trim();
        if trimmed.len() > 254 {
            return Err(Refusal::new(
                Code::TooLong { max: 254 },
                "must be at most 254 characters",
            ));
        }
        // Addresses are compared case-insensitively: one account per mailbox.
        let lowered = trimmed.to_lowercase();
        if !email_address::EmailAddress::is_valid(&lowered) {
            return Err(Refusal::new(Code::Email, "is not a valid e-mail address"));
        }
        // A desk mails these people: require a domain with a dot, no display names.
        let domain = lowered.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        if !domain.contains('.') || lowered.contains(['<', '>', ' ']) {
            return Err(Refusal::new(Code::Email, "is not a valid e-mail address"));
        }
        Ok(Self(lowered))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// "must be at most `max` characters".
pub fn too_long(max: usize) -> Refusal {
    Refusal::new(
        Code::TooLong { max },
        format!("must be at most {max} characters"),
    )
}

pub const MIN_PASSWORD_CHARS: usize = 12;
/// argon2 accepts long inputs, but hashing megabytes per request is a DoS vector.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// A password that meets the policy. Its Debug output hides the value.
#[derive(Clone)]
pub struct NewPassword(String);

impl NewPassword {
    pub fn parse(raw: &str) -> Result<Self, Refusal> {
        let chars = raw.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(Refusal::new(
                Code::TooShort {
                    min: MIN_PASSWORD_CHARS,
                },
                format!("must be at least {MIN_PASSWORD_CHARS} characters"),
            ));
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(too_long(MAX_PASSWORD_CHARS));
        }
        if raw.trim().is_empty() {
            return Err(Refusal::new(Code::OnlySpaces, "must not be only spaces"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(..)")
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Locale {
    #[default]
    Ja,
    En,
}

impl Locale {
    pub fn as_str(self) -> &'static str {
        match self {
            Locale::Ja => "ja",
            Locale::En => "en",
        }
    }
}

impl FromStr for Locale {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ja" => Ok(Locale::Ja),
            "en" => Ok(Locale::En),
            _ => Err("must be ja or en"),
        }
    }
}

/// The longest name of a person.
pub const NAME_MAX_CHARS: usize = 100;
/// The longest name of an organisation (also one referred to, or named in
/// an expert's conflicts of interest).
pub const ORGANIZATION_MAX_CHARS: usize = 200;
/// The longest affiliation of an expert.
pub const AFFILIATION_MAX_CHARS: usize = 200;

/// A person's or organisation's display name: trimmed, 1..=max characters,
/// no control characters, and shown as it is stored ([`check_shown_as_stored`]).
/// Every name field of the API goes through here: user, registrant and
/// organisation names, an expert's name, affiliation and conflicts, a
/// referral's organisation.
pub fn parse_display_name(raw: &str, max_chars: usize) -> Result<String, Refusal> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(Refusal::new(Code::Required, "must not be empty"));
    }
    if trimmed.chars().count() > max_chars {
        return Err(too_long(max_chars));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Refusal::new(
            Code::ControlCharacters,
            "must not contain control characters",
        ));
    }
    check_shown_as_stored(trimmed)?;
    Ok(trimmed.to_owned())
}

/// The Unicode characters with the `Bidi_Control` property: the embeddings
/// and overrides (U+202A–U+202E), the isolates (U+2066–U+2069) and the
/// implicit marks (U+200E LRM, U+200F RLM, U+061C ALM).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that show nothing on their own: white space, control
/// characters, combining marks (which only decorate the character before
/// them), the Unicode `Default_Ignorable_Code_Point`s (zero-width space and
/// joiners U+200B–U+200D, word joiner U+2060, U+FEFF, variation selectors,
/// soft hyphen, Hangul fillers, tags …) and the blank Braille pattern.
pub fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || unicode_normalization::char::is_combining_mark(c)
        || matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}'
            | '\u{17B4}' | '\u{17B5}' | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}' | '\u{2800}' | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}' | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// A name (or title) must look like what is stored, so that one cannot be
/// made to display as another: at least one visible character (not only
/// white space, zero-width characters or combining marks), and no
/// bidirectional control character, which reorders how the text around it
/// is shown (U+202E makes `Acme\u{202E}cba` display as `Acmeabc`).
///
/// The implicit marks (LRM, RLM, ALM) are refused with the embeddings and
/// isolates: they are invisible too, a name of a few words needs none of
/// them (each script shows in its own direction without help), and they
/// still move digits and punctuation next to right-to-left text, so two
/// names that differ only by one would look alike. Everything else is kept
/// as typed: Japanese (full-width forms included), emoji, and zero-width
/// joiners inside an emoji sequence (👩‍💻).
pub fn check_shown_as_stored(text: &str) -> Result<(), Refusal> {
    if let Some(c) = text.chars().find(|&c| is_bidi_control(c)) {
        return Err(Refusal::new(
            Code::BidiControl {
                code_point: c as u32,
            },
            format!(
                "must not contain the bidirectional control character U+{:04X}: it changes how the text around it is displayed",
                c as u32
            ),
        ));
    }
    if text.chars().all(is_invisible) {
        return Err(Refusal::new(
            Code::Invisible,
            "must contain a visible character (not only spaces, zero-width characters or combining marks)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_lowercased_and_trimmed() {
        let email = EmailAddress::parse("  Founder@Example.CO.JP ").unwrap();
        assert_eq!(email.as_str(), "founder@example.co.jp");
    }

    #[test]
    fn bad_emails_are_refused() {
        for bad in [
            "",
            "plain",
            "@example.org",
            "a@",
            "a@localhost",
            "a b@example.org",
            "Name <a@example.org>",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("{}@example.org", "a".repeat(250));
        assert!(EmailAddress::parse(&long).is_err());
    }

    #[test]
    fn password_policy_counts_characters_not_bytes() {
        assert!(NewPassword::parse("elevenchars").is_err());
        assert!(NewPassword::parse("twelve chars").is_ok());
        // Twelve Japanese characters are twelve characters, not 36 bytes.
        assert!(NewPassword::parse("パスワードは十二文字です").is_ok());
        assert!(NewPassword::parse("パスワード").is_err());
        assert!(NewPassword::parse(&" ".repeat(20)).is_err());
        assert!(NewPassword::parse(&"x".repeat(MAX_PASSWORD_CHARS + 1)).is_err());
    }

    #[test]
    fn password_debug_hides_value() {
        let password = NewPassword::parse("correct horse battery").unwrap();
        assert!(!format!("{password:?}").contains("horse"));
    }

    #[test]
    fn locales() {
        assert_eq!("ja".parse::<Locale>().unwrap(), Locale::Ja);
        assert_eq!("en".parse::<Locale>().unwrap(), Locale::En);
        assert!("fr".parse::<Locale>().is_err());
    }

    #[test]
    fn names_must_show_what_is_stored() {
        let bidi = "must not contain the bidirectional control character";
        let invisible = "must contain a visible character";
        for (raw, refused) in [
            // Kept as typed.
            ("山田 太郎", None),
            ("株式会社メドテック", None),
            ("ＭＥＤＴＥＣＨ　株式会社", None),
            ("ｶﾌﾞｼｷｶﾞｲｼｬ", None),
            ("MedTech 🚀", None),
            ("👩\u{200D}💻 Lab", None),
            ("👨\u{200D}👩\u{200D}👧", None),
            ("❤\u{FE0F}", None),
            ("Zoë", None),
            ("Zoe\u{0308}", None),
            ("مختبر", None),
            ("שלום Lab", None),
            ("Acme\u{200B}Labs", None),
            // Nothing to see.
            ("\u{200B}", Some(invisible)),
            ("\u{200B}\u{200C}\u{200D}\u{2060}\u{FEFF}", Some(invisible)),
            ("\u{0301}\u{0308}", Some(invisible)),
            ("\u{3000}\u{200B}", Some(invisible)),
            ("\u{3164}", Some(invisible)),
            ("\u{2800}", Some(invisible)),
            ("\u{FE0F}\u{00AD}", Some(invisible)),
            ("\u{E0041}\u{E0042}", Some(invisible)),
            // Reorders what is shown.
            ("Acme\u{202E}cba", Some(bidi)),
            ("\u{202A}Acme\u{202C}", Some(bidi)),
            ("\u{202B}Acme", Some(bidi)),
            ("\u{202D}Acme", Some(bidi)),
            ("Acme\u{2066}x\u{2069}", Some(bidi)),
            ("\u{2067}Acme", Some(bidi)),
            ("\u{2068}Acme", Some(bidi)),
            ("Acme\u{200E}", Some(bidi)),
            ("مختبر\u{200F}123", Some(bidi)),
            ("Acme\u{061C}", Some(bidi)),
            ("\u{202E}", Some(bidi)),
        ] {
            let result = parse_display_name(raw, 100);
            match refused {
                None => assert_eq!(result.as_deref(), Ok(raw.trim()), "{raw:?}"),
                Some(says) => assert!(
                    result.as_ref().is_err_and(|e| e.message.starts_with(says)),
                    "{raw:?}: {result:?}"
                ),
            }
        }
        assert_eq!(
            parse_display_name("Acme\u{202E}cba", 100)
                .unwrap_err()
                .message,
            "must not contain the bidirectional control character U+202E: it changes how the text around it is displayed"
        );
    }

    #[test]
    fn display_names() {
        assert_eq!(
            parse_display_name("  山田 太郎 ", 100).unwrap(),
            "山田 太郎"
        );
        assert!(parse_display_name("   ", 100).is_err());
        assert!(parse_display_name("a\u{0007}b", 100).is_err());
        assert!(parse_display_name(&"長".repeat(101), 100).is_err());
    }
}
