//! Reading the mails medesk wrote as `.eml` files.

use std::path::Path;
use std::time::Duration;

/// One received mail, decoded.
#[derive(Debug, Clone)]
pub struct Mail {
    /// Every address of the To header (the desk's mails to its supporters
    /// name several).
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
}

fn read_all(dir: &Path) -> Vec<Mail> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .filter_map(|e| std::fs::read(e.path()).ok())
        .filter_map(|bytes| {
            let message = mail_parser::MessageParser::default().parse(&bytes)?;
            Some(Mail {
                to: message
                    .to()
                    .map(|to| {
                        to.iter()
                            .filter_map(|a| a.address())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
                subject: message.subject().unwrap_or_default().to_owned(),
                text: message.body_text(0).unwrap_or_default().into_owned(),
            })
        })
        .collect()
}

/// Waits (up to 15 s) until a mail to `recipient` matching `predicate`
/// arrives in `dir`, and returns it.
pub async fn wait_for_mail(dir: &Path, recipient: &str, predicate: impl Fn(&Mail) -> bool) -> Mail {
    for _ in 0..150 {
        if let Some(mail) = read_all(dir)
            .into_iter()
            .find(|m| m.to.iter().any(|to| to == recipient) && predicate(m))
        {
            return mail;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no mail to {recipient} arrived in {}", dir.display());
}

/// The first run of 64 hex digits in a text (tokens medesk mails).
pub fn token_in(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_hexdigit())
        .find(|word| word.len() == 64)
        .expect("a token in the mail")
        .to_owned()
}
