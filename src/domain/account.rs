//! Account vocabulary: e-mail addresses, password policy, locales, names.
//! Parse, don't validate: a value of these types is known to be acceptable.

use std::fmt;
use std::str::FromStr;

/// A syntactically valid, lower-cased e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let trimmed = raw.trim();
        if trimmed.len() > 254 {
            return Err("must be at most 254 characters");
        }
        // Addresses are compared case-insensitively: one account per mailbox.
        let lowered = trimmed.to_lowercase();
        if !email_address::EmailAddress::is_valid(&lowered) {
            return Err("is not a valid e-mail address");
        }
        // A desk mails these people: require a domain with a dot, no display names.
        let domain = lowered.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        if !domain.contains('.') || lowered.contains(['<', '>', ' ']) {
            return Err("is not a valid e-mail address");
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

pub const MIN_PASSWORD_CHARS: usize = 12;
/// argon2 accepts long inputs, but hashing megabytes per request is a DoS vector.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// A password that meets the policy. Its Debug output hides the value.
#[derive(Clone)]
pub struct NewPassword(String);

impl NewPassword {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let chars = raw.chars().count();
        if chars < MIN_PASSWORD_CHARS {
            return Err(format!("must be at least {MIN_PASSWORD_CHARS} characters"));
        }
        if chars > MAX_PASSWORD_CHARS {
            return Err(format!("must be at most {MAX_PASSWORD_CHARS} characters"));
        }
        if raw.trim().is_empty() {
            return Err("must not be only spaces".to_owned());
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
/// no control characters.
pub fn parse_display_name(raw: &str, max_chars: usize) -> Result<String, String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if trimmed.chars().count() > max_chars {
        return Err(format!("must be at most {max_chars} characters"));
    }
    if trimmed.chars().any(char::is_control) {
        return Err("must not contain control characters".to_owned());
    }
    Ok(trimmed.to_owned())
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
