//! The pages' texts in Japanese and English (`templates/pages/labels/*.toml`),
//! and which language a visitor reads.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use actix_web::HttpRequest;
use actix_web::http::header;
use minijinja::value::{Object, Value};

use crate::domain::account::Locale;
use crate::domain::validation::Code;
use crate::domain::vocabulary::Lang;

/// The cookie that remembers a visitor's choice before sign-in.
pub const LANGUAGE_COOKIE: &str = "medesk_lang";

type Table = BTreeMap<String, String>;

/// The label files, one pair per area of pages (`templates/pages/labels/`):
/// every area's keys are merged into one table per language, and a key
/// defined twice is a start-up error.
macro_rules! label_files {
    ($($area:literal),* $(,)?) => {
        (
            &[$(($area, include_str!(concat!("../../templates/pages/labels/", $area, ".ja.toml")))),*],
            &[$(($area, include_str!(concat!("../../templates/pages/labels/", $area, ".en.toml")))),*],
        )
    };
}

type Sources = &'static [(&'static str, &'static str)];

const LABEL_FILES: (Sources, Sources) = label_files!(
    "core",
    "problems",
    "quality",
    "desk",
    "account",
    "statistics",
    "open_hours"
);

fn parse(sources: Sources, language: &str) -> Table {
    let mut merged = Table::new();
    for (area, source) in sources {
        let table: Table =
            toml::from_str(source).unwrap_or_else(|e| panic!("labels/{area}.{language}.toml: {e}"));
        for (key, value) in table {
            if merged.insert(key.clone(), value).is_some() {
                panic!("labels/{area}.{language}.toml: {key} is defined in another area too");
            }
        }
    }
    merged
}

static JA: LazyLock<Table> = LazyLock::new(|| parse(LABEL_FILES.0, "ja"));
static EN: LazyLock<Table> = LazyLock::new(|| parse(LABEL_FILES.1, "en"));

fn table(locale: Locale) -> &'static Table {
    match locale {
        Locale::Ja => &JA,
        Locale::En => &EN,
    }
}

/// The text of `key` in `locale`. Every key used exists in both files (a
/// test and the templates' strict mode check it); an unknown key shows
/// itself rather than nothing.
pub fn text(locale: Locale, key: &str) -> String {
    table(locale)
        .get(key)
        .cloned()
        .unwrap_or_else(|| key.to_owned())
}

/// A validation problem in `locale`: its code's label (`problem_*`) with
/// the values it names filled in, else the domain's English message.
pub fn problem(locale: Locale, code: Option<Code>, message: &str) -> String {
    let Some(code) = code else {
        return message.to_owned();
    };
    let mut text = text(locale, code.key());
    for (name, value) in code.params() {
        text = text.replace(&format!("{{{name}}}"), &value);
    }
    text
}

/// Whether `key` is a known text.
pub fn has(key: &str) -> bool {
    EN.contains_key(key)
}

/// The same language in the vocabulary's terms.
pub fn lang(locale: Locale) -> Lang {
    match locale {
        Locale::Ja => Lang::Ja,
        Locale::En => Lang::En,
    }
}

/// The other language, offered by the switch.
pub fn other(locale: Locale) -> Locale {
    match locale {
        Locale::Ja => Locale::En,
        Locale::En => Locale::Ja,
    }
}

/// `t` in templates: `{{ t.login_title }}` or `{{ t["role_" ~ role] }}`.
#[derive(Debug)]
pub struct Labels(pub Locale);

impl Object for Labels {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        table(self.0)
            .get(key.as_str()?)
            .map(|s| Value::from(s.as_str()))
    }
}

/// The language of a visitor who is not signed in: the switch's cookie,
/// else the first of Japanese or English in `Accept-Language` (by quality),
/// else Japanese, the desk's language.
pub fn visitor_locale(req: &HttpRequest) -> Locale {
    if let Some(chosen) = req
        .cookie(LANGUAGE_COOKIE)
        .and_then(|c| c.value().parse::<Locale>().ok())
    {
        return chosen;
    }
    req.headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(from_accept_language)
        .unwrap_or_default()
}

/// The preferred supported language of an `Accept-Language` value.
pub fn from_accept_language(value: &str) -> Option<Locale> {
    let mut best: Option<(f32, Locale)> = None;
    for part in value.split(',') {
        let mut pieces = part.trim().split(';');
        let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
        let quality = pieces
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let primary = tag.split('-').next().unwrap_or("");
        let locale = match primary {
            "ja" => Locale::Ja,
            "en" => Locale::En,
            _ => continue,
        };
        if quality > 0.0 && best.is_none_or(|(q, _)| quality > q) {
            best = Some((quality, locale));
        }
    }
    best.map(|(_, locale)| locale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_have_the_same_keys_and_no_empty_text() {
        let ja: Vec<_> = JA.keys().collect();
        let en: Vec<_> = EN.keys().collect();
        assert_eq!(ja, en, "the ja and en label files differ in keys");
        for (key, value) in JA.iter().chain(EN.iter()) {
            assert!(!value.trim().is_empty(), "{key} is empty");
        }
    }

    #[test]
    fn every_validation_code_has_a_text_in_both_languages() {
        for code in Code::EXAMPLES {
            for locale in [Locale::Ja, Locale::En] {
                assert!(
                    table(locale).contains_key(code.key()),
                    "{code:?} has no {} label",
                    locale.as_str()
                );
                let text = problem(locale, Some(code), "english");
                assert!(!text.contains(['{', '}']), "{code:?}: {text}");
            }
        }
        assert_eq!(
            problem(Locale::Ja, Some(Code::TooLong { max: 200 }), "x"),
            "200文字以内で入力してください。"
        );
        assert_eq!(problem(Locale::Ja, None, "is odd"), "is odd");
    }

    #[test]
    fn accept_language_picks_the_best_supported_language() {
        assert_eq!(from_accept_language("en-US,en;q=0.9"), Some(Locale::En));
        assert_eq!(from_accept_language("ja,en-US;q=0.8"), Some(Locale::Ja));
        assert_eq!(
            from_accept_language("fr-FR,en;q=0.5,ja;q=0.7"),
            Some(Locale::Ja)
        );
        assert_eq!(from_accept_language("de, fr"), None);
        assert_eq!(from_accept_language("en;q=0, ja;q=0.1"), Some(Locale::Ja));
        assert_eq!(from_accept_language(""), None);
    }
}
