//! Mail texts: one template per event and language in `templates/mail`
//! (first line the subject, the rest the plain-text body), compiled into the
//! binary. The HTML alternative is the same text in `layout.html`, where
//! every value is HTML-escaped (case text is user input); it is rendered
//! when the mail is sent, so the outbox stores each mail's text only once.

use std::sync::LazyLock;

use chrono::Datelike;
use minijinja::value::{Value, ValueKind};
use minijinja::{AutoEscape, Environment};
use serde::Serialize;

use crate::clock;
use crate::db::outbox::NewMail;
use crate::domain::account::Locale;
use crate::domain::case::desk_offset;

macro_rules! mail_templates {
    ($($event:literal),* $(,)?) => {
        &[$(
            (concat!($event, ".ja.txt"), include_str!(concat!("../../templates/mail/", $event, ".ja.txt"))),
            (concat!($event, ".en.txt"), include_str!(concat!("../../templates/mail/", $event, ".en.txt"))),
        )*]
    };
}

const TEMPLATES: &[(&str, &str)] = mail_templates!(
    "case_submitted_applicant",
    "case_submitted_desk",
    "info_requested",
    "applicant_replied",
    "expert_assigned",
    "assignment_accepted",
    "assignment_declined",
    "meeting_scheduled",
    "case_closed",
    "triage_overdue",
    "invitation",
    "expert_welcome",
    "password_reset",
    "message_posted",
    "open_hours_booked",
    "open_hours_booked_desk",
    "open_hours_cancelled",
    "open_hours_cancelled_desk",
    "open_hours_reminder",
);

static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_keep_trailing_newline(true);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .expect("mail templates are valid");
    }
    env.add_template(
        "layout.html",
        include_str!("../../templates/mail/layout.html"),
    )
    .expect("layout is valid");
    env
});

/// A rendered mail: subject, plain text, and the line of the text that the
/// HTML alternative makes a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub link: Option<String>,
}

/// Renders `event` in `locale` with `context`.
pub fn render(event: &str, locale: Locale, context: impl Serialize) -> Rendered {
    // A `context!` passes through `from_serialize` as it is: no copy through
    // JSON, which was half of a mail's rendering on the writer (issue 19).
    let context = single_line_values(Value::from_serialize(&context));
    let name = format!("{event}.{}.txt", locale.as_str());
    let template = ENVIRONMENT
        .get_template(&name)
        .unwrap_or_else(|_| panic!("no mail template {name}"));
    let full = template
        .render(&context)
        .unwrap_or_else(|e| panic!("mail template {name}: {e}"));
    let (subject, body) = full.split_once('\n').unwrap_or((full.as_str(), ""));
    let text = body.trim_start_matches('\n').to_owned();
    let link = context
        .get_attr("link")
        .ok()
        .and_then(|l| l.as_str().map(str::to_owned));
    Rendered {
        subject: subject.trim().to_owned(),
        text,
        link,
    }
}

/// The HTML alternative of a mail: its text in `layout.html`, paragraph by
/// paragraph, with the line equal to `link` clickable.
pub fn html_alternative(locale: Locale, subject: &str, text: &str, link: Option<&str>) -> String {
    let paragraphs: Vec<Vec<&str>> = text
        .split("\n\n")
        .map(|p| {
            p.lines()
                .filter(|l| !l.trim().is_empty())
                .collect::<Vec<_>>()
        })
        .filter(|p| !p.is_empty())
        .collect();
    ENVIRONMENT
        .get_template("layout.html")
        .expect("layout exists")
        .render(minijinja::context! {
            lang => locale.as_str(),
            subject => subject,
            paragraphs => paragraphs,
            link => link,
        })
        .expect("layout renders")
}

/// Values such as titles and names are user input and may hold line breaks;
/// in a mail they are one line (a break would split the subject or forge
/// body lines). Only `reason`, a free text, keeps its lines.
fn single_line_values(context: Value) -> Value {
    if context.kind() != ValueKind::Map {
        return context;
    }
    let Ok(keys) = context.try_iter() else {
        return context;
    };
    let needs_change = |(key, value): &(Value, Value)| {
        key.as_str() != Some("reason") && value.as_str().is_some_and(|text| !is_one_line(text))
    };
    let entries: Vec<(Value, Value)> = keys
        .map(|key| {
            let value = context.get_item(&key).unwrap_or_default();
            (key, value)
        })
        .collect();
    if !entries.iter().any(needs_change) {
        // Most contexts are kept as they are: no new map.
        return context;
    }
    entries
        .into_iter()
        .map(|entry| match entry.1.as_str() {
            Some(text) if needs_change(&entry) => (
                entry.0,
                Value::from(text.split_whitespace().collect::<Vec<_>>().join(" ")),
            ),
            _ => entry,
        })
        .collect()
}

/// Whether `text` is already as [`single_line_values`] makes it: words
/// separated by single spaces, none before or after (most titles and names
/// are, and are then not copied).
fn is_one_line(text: &str) -> bool {
    let mut after_space = true;
    for c in text.chars() {
        if c.is_whitespace() {
            if c != ' ' || after_space {
                return false;
            }
            after_space = true;
        } else {
            after_space = false;
        }
    }
    !after_space || text.is_empty()
}

/// A moment as a mail shows it: on the desk's clock (Japan, +09:00, which
/// has no daylight saving time), in the reader's language, saying which
/// clock it is — `2026年12月3日(木) 10:00 (日本時間)`, `Thu 3 Dec 2026, 10:00
/// (Japan time)`. Every time in every mail goes through here.
pub fn desk_time(micros: i64, locale: Locale) -> String {
    const WEEKDAYS_JA: [&str; 7] = ["月", "火", "水", "木", "金", "土", "日"];
    let at = clock::to_datetime(micros).with_timezone(&desk_offset());
    match locale {
        Locale::Ja => format!(
            "{}年{}月{}日({}) {} (日本時間)",
            at.year(),
            at.month(),
            at.day(),
            WEEKDAYS_JA[at.weekday().num_days_from_monday() as usize],
            at.format("%H:%M"),
        ),
        Locale::En => at.format("%a %-d %b %Y, %H:%M (Japan time)").to_string(),
    }
}

/// A queued mail for `recipient` from a rendered template.
pub fn mail(
    kind: &'static str,
    case_id: Option<i64>,
    recipient: &str,
    locale: Locale,
    context: impl Serialize,
) -> NewMail {
    let rendered = render(kind, locale, context);
    NewMail {
        kind,
        case_id,
        recipient: recipient.to_owned(),
        subject: rendered.subject,
        body_text: rendered.text,
        locale: locale.as_str(),
        link: rendered.link,
        calendar: None,
    }
}

/// The page where a mailed token sets a password (a new expert's first
/// one, or a reset): `{base_url}/password/reset?token=TOKEN`. Tokens are
/// hex, so they need no escaping in the query.
pub fn password_page(base_url: &str, token: &str) -> String {
    format!("{base_url}/password/reset?token={token}")
}

/// A new expert's welcome: a link to set their first password (valid
/// `valid_days`).
pub fn expert_welcome(
    locale: Locale,
    recipient: &str,
    name: &str,
    base_url: &str,
    token: &str,
    valid_days: i64,
) -> NewMail {
    mail(
        "expert_welcome",
        None,
        recipient,
        locale,
        minijinja::context! { name, link => password_page(base_url, token), days => valid_days },
    )
}

/// A password-reset link (valid `valid_minutes`), to the account's address.
pub fn password_reset(
    locale: Locale,
    recipient: &str,
    name: &str,
    base_url: &str,
    token: &str,
    valid_minutes: i64,
) -> NewMail {
    mail(
        "password_reset",
        None,
        recipient,
        locale,
        minijinja::context! { name, link => password_page(base_url, token),
        minutes => valid_minutes, forgot => format!("{base_url}/password/forgot") },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html(rendered: &Rendered, locale: Locale) -> String {
        html_alternative(
            locale,
            &rendered.subject,
            &rendered.text,
            rendered.link.as_deref(),
        )
    }

    #[test]
    fn every_template_renders_in_both_languages() {
        for (name, _) in TEMPLATES {
            let (event, rest) = name.split_once('.').unwrap();
            let locale = if rest.starts_with("ja") {
                Locale::Ja
            } else {
                Locale::En
            };
            let rendered = render(
                event,
                locale,
                minijinja::context! {
                    number => "MD-2026-00001", title => "t", name => "n", link => "http://x/cases/1",
                    messages => 2,
                },
            );
            assert!(!rendered.subject.is_empty(), "{name}");
            assert!(!rendered.text.is_empty(), "{name}");
            assert!(
                html(&rendered, locale).starts_with("<!DOCTYPE html>"),
                "{name}"
            );
        }
    }

    #[test]
    fn times_are_on_the_desks_clock_in_the_readers_language() {
        // 2026-12-03 01:00 UTC is Thursday 10:00 in Japan.
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-03T01:00:00Z")
            .unwrap()
            .timestamp_micros();
        assert_eq!(
            desk_time(at, Locale::Ja),
            "2026年12月3日(木) 10:00 (日本時間)"
        );
        assert_eq!(
            desk_time(at, Locale::En),
            "Thu 3 Dec 2026, 10:00 (Japan time)"
        );
        // 15:30 UTC on a Sunday is already Monday in Japan.
        let late = chrono::DateTime::parse_from_rfc3339("2026-12-06T15:30:00Z")
            .unwrap()
            .timestamp_micros();
        assert_eq!(
            desk_time(late, Locale::Ja),
            "2026年12月7日(月) 00:30 (日本時間)"
        );
        assert_eq!(
            desk_time(late, Locale::En),
            "Mon 7 Dec 2026, 00:30 (Japan time)"
        );
    }

    #[test]
    fn a_message_notice_counts_messages_and_carries_no_text() {
        let one = minijinja::context! {
            number => "MD-2026-00042", name => "山田", messages => 1, link => "http://x/cases/42",
        };
        let four = minijinja::context! {
            number => "MD-2026-00042", name => "Jane", messages => 4, link => "http://x/cases/42",
        };
        let ja = render("message_posted", Locale::Ja, &one);
        assert_eq!(ja.subject, "[MD-2026-00042] 新しいメッセージがあります");
        let ja = render("message_posted", Locale::Ja, &four);
        assert_eq!(
            ja.subject,
            "[MD-2026-00042] 新しいメッセージが 4 件あります"
        );
        let en = render("message_posted", Locale::En, &one);
        assert_eq!(en.subject, "[MD-2026-00042] A new message");
        let en = render("message_posted", Locale::En, &four);
        assert_eq!(en.subject, "[MD-2026-00042] 4 new messages");
        assert!(en.text.contains("4 new messages"), "{}", en.text);
        assert!(en.text.ends_with("http://x/cases/42\n"), "{}", en.text);
    }

    #[test]
    fn subject_carries_the_case_number_and_language_follows_locale() {
        let context = minijinja::context! {
            number => "MD-2026-00042", title => "薬事", name => "山田", link => "http://x/cases/42",
        };
        let ja = render("case_submitted_applicant", Locale::Ja, &context);
        let en = render("case_submitted_applicant", Locale::En, &context);
        assert!(ja.subject.starts_with("[MD-2026-00042]"));
        assert!(ja.subject.contains("受け付けました"));
        assert!(en.subject.contains("We received"));
        assert!(ja.text.contains("受付番号は MD-2026-00042"));
    }

    #[test]
    fn a_line_break_in_a_title_cannot_split_the_subject_or_forge_a_link() {
        let context = minijinja::context! {
            number => "MD-2026-00001", title => "x\nhttp://evil.example/login", organization => "o",
            product_type => "p", categories => "c", link => "http://desk/cases/1",
        };
        let rendered = render("case_submitted_desk", Locale::En, &context);
        let html = html(&rendered, Locale::En);
        assert_eq!(
            rendered.subject,
            "[MD-2026-00001] New case: x http://evil.example/login"
        );
        assert!(!html.contains("href=\"http:&#x2f;&#x2f;evil"));
        assert!(html.contains("href=\"http:&#x2f;&#x2f;desk"));
    }

    #[test]
    fn values_become_one_line_and_only_the_reason_keeps_its_breaks() {
        let context = single_line_values(Value::from_serialize(minijinja::context! {
            title => "  a\tb\n\nc ", name => "山田\u{3000}太郎", organization => "one line",
            reason => "x\ny", messages => 3,
        }));
        let text = |key: &str| context.get_attr(key).unwrap().as_str().map(str::to_owned);
        assert_eq!(text("title").as_deref(), Some("a b c"));
        assert_eq!(text("name").as_deref(), Some("山田 太郎"));
        assert_eq!(text("organization").as_deref(), Some("one line"));
        assert_eq!(text("reason").as_deref(), Some("x\ny"));
        assert_eq!(context.get_attr("messages").unwrap().as_i64(), Some(3));
    }

    #[test]
    fn only_single_spaced_text_counts_as_one_line() {
        for one in ["", "a", "a b", "受付 番号", "a-b c"] {
            assert!(is_one_line(one), "{one:?}");
        }
        for not in [" a", "a ", "a  b", "a\u{3000}b", "a\nb", "a\tb", " "] {
            assert!(!is_one_line(not), "{not:?}");
        }
    }

    #[test]
    fn html_escapes_user_text_but_plain_text_keeps_it() {
        let context = minijinja::context! {
            number => "MD-2026-00001", title => "<script>alert(\"x\")</script> & co",
            name => "n", link => "http://x/cases/1",
        };
        let rendered = render("case_submitted_applicant", Locale::En, &context);
        let html = html(&rendered, Locale::En);
        assert!(rendered.text.contains("<script>alert(\"x\")</script> & co"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;"));
        // The link is clickable (minijinja also escapes `/`, which HTML decodes).
        assert!(html.contains("<a href=\"http:&#x2f;&#x2f;x&#x2f;cases&#x2f;1\">"));
    }
}
