//! Mail texts, in the recipient's language.

use crate::db::outbox::NewMail;
use crate::domain::account::Locale;

pub fn invitation(
    locale: Locale,
    recipient: &str,
    inviter: &str,
    organization: &str,
    token: &str,
    expires_at: &str,
) -> NewMail {
    let (subject, body_text) = match locale {
        Locale::Ja => (
            format!("[medesk] {organization} への招待"),
            format!(
                "{inviter} さんが medesk の {organization} にあなたを招待しました。\n\n\
                 登録時に次の招待トークンを入力してください（{expires_at} まで有効、一度限り）:\n\n\
                 {token}\n\n\
                 心当たりがない場合はこのメールを破棄してください。\n"
            ),
        ),
        Locale::En => (
            format!("[medesk] Invitation to join {organization}"),
            format!(
                "{inviter} invited you to join {organization} on medesk.\n\n\
                 Register with this invitation token (valid once, until {expires_at}):\n\n\
                 {token}\n\n\
                 If you did not expect this, ignore this mail.\n"
            ),
        ),
    };
    NewMail {
        kind: "invitation",
        case_id: None,
        recipient: recipient.to_owned(),
        subject,
        body_text,
        body_html: None,
        calendar: None,
    }
}

pub fn expert_welcome(locale: Locale, recipient: &str, name: &str, token: &str) -> NewMail {
    let (subject, body_text) = match locale {
        Locale::Ja => (
            "[medesk] 専門家として登録されました".to_owned(),
            format!(
                "{name} 様\n\nmedesk に専門家として登録されました。\n\
                 次のトークンでパスワードを設定してください（7日間有効、一度限り）:\n\n\
                 {token}\n\n\
                 POST /api/v1/auth/password に {{\"token\": \"…\", \"password\": \"…\"}} を送ります。\n"
            ),
        ),
        Locale::En => (
            "[medesk] You are registered as an expert".to_owned(),
            format!(
                "Dear {name},\n\nyou are registered as an expert on medesk.\n\
                 Set your password with this token (valid once, for 7 days):\n\n\
                 {token}\n\n\
                 Send {{\"token\": \"…\", \"password\": \"…\"}} to POST /api/v1/auth/password.\n"
            ),
        ),
    };
    NewMail {
        kind: "expert_welcome",
        case_id: None,
        recipient: recipient.to_owned(),
        subject,
        body_text,
        body_html: None,
        calendar: None,
    }
}
