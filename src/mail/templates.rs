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
