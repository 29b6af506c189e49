//! Event rows of the outbox replaced by their mails (`outbox::CASE_SUBMITTED`):
//! the worker reads the claimed events' cases and their applicants on a
//! read connection, a statement for all of them each (one per case on
//! SQLite, which has no round trip to share), renders the mails, then
//! deletes the events it still holds and writes their mails in one
//! transaction. The mails are then claimed and sent as any other; an event
//! whose case is gone is dropped without mail.
//!
//! Read one case at a time, the reads were two round trips per new case,
//! 200,000 statements over a benchmark's 100,000 intakes on PostgreSQL
//! (issue 19, twenty-third round).

use std::collections::HashMap;

use crate::db::cases::FullCaseRead;
use crate::db::outbox::{self, FannedOut, NewMail, OutboxRow};
use crate::db::users::ContactRow;
use crate::db::{Database, DbError, cases, users};
use crate::domain::role::Role;

use super::notify::Notifier;

/// Replaces the claimed event rows `events` with their mails; how many
/// were replaced (fewer when another instance took some meanwhile).
pub async fn fan_out(
    db: &Database,
    notifier: &Notifier,
    events: Vec<OutboxRow>,
    now: i64,
) -> Result<usize, DbError> {
    if events.is_empty() {
        return Ok(0);
    }
    let notifier = notifier.clone();
    let fanned: Vec<FannedOut> = db
        .read(move |conn| {
            // Read once for the batch: every new case goes to all of them.
            let supporters = users::contacts_with_role(conn, Role::Supporter.as_str())?;
            let case_ids: Vec<i64> = events.iter().filter_map(|event| event.case_id).collect();
            let cases: HashMap<i64, FullCaseRead> = case_ids
                .iter()
                .copied()
                .zip(cases::find_full_many(conn, &case_ids)?)
                .collect();
            let applicant_ids: Vec<i64> = cases
                .values()
                .filter_map(|read| read.as_ref().ok()?.as_ref()?.row.applicant_id)
                .collect();
            let applicants: HashMap<i64, ContactRow> = users::contacts_by_id(conn, &applicant_ids)?
                .into_iter()
                .map(|contact| (contact.0, contact))
                .collect();
            let mut fanned = Vec::with_capacity(events.len());
            for event in &events {
                let case = event.case_id.and_then(|id| cases.get(&id));
                match mails_of(&notifier, case, &applicants, &supporters) {
                    Ok(mails) => fanned.push(FannedOut {
                        event_id: event.id,
                        held: event.locked_until.unwrap_or_default(),
                        queued_at: event.created_at,
                        mails,
                    }),
                    // One case that cannot be read (a stored code this
                    // build does not know) holds back no other: its event
                    // stays claimed and is tried again when the claim ends.
                    Err(error) => tracing::error!(
                        outbox_id = event.id,
                        case_id = event.case_id,
                        error = %error,
                        "the mails of a new case could not be written"
                    ),
                }
            }
            Ok::<_, DbError>(fanned)
        })
        .await?;
    db.write(move |conn| outbox::replace_events(conn, &fanned, now))
        .await
}

/// The mails an event of `case` stands for; none when its case is gone.
fn mails_of(
    notifier: &Notifier,
    case: Option<&FullCaseRead>,
    applicants: &HashMap<i64, ContactRow>,
    supporters: &[ContactRow],
) -> Result<Vec<NewMail>, DbError> {
    let case = match case {
        Some(Ok(Some(case))) => case,
        Some(Err(unknown)) => return Err(unknown.clone().into()),
        None | Some(Ok(None)) => return Ok(Vec::new()),
    };
    let applicant = case
        .row
        .applicant_id
        .and_then(|id| applicants.get(&id))
        .cloned();
    notifier.case_submitted_mails(&case.row, &case.categories.applicant, applicant, supporters)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::AnyConnection;
    use crate::db::cases::{FilingEvent, NewCase};
    use crate::db::users::NewUser;

    fn person<'a>(email: &'a str, role: &'a str, locale: &'a str) -> NewUser<'a> {
        NewUser {
            email,
            password_hash: "-",
            name: email,
            role,
            locale,
            organization_id: None,
            created_at: 1,
        }
    }

    /// Three supporters, two reading Japanese and one English.
    fn staff(conn: &mut AnyConnection) -> Result<(), DbError> {
        for (email, locale) in [
            ("s1@desk.example", "ja"),
            ("s2@desk.example", "en"),
            ("s3@desk.example", "ja"),
        ] {
            users::insert(conn, &person(email, "supporter", locale))?;
        }
        Ok(())
    }

    /// The founder `email` (ja) files case `number` under an organisation
    /// of their own, and its event is queued at 100. Returns the case's id.
    fn file_case(conn: &mut AnyConnection, email: &str, number: &str) -> Result<i64, DbError> {
        let founder = users::register_applicant(conn, person(email, "applicant", "ja"), email)?;
        let case = cases::insert_filed(
            conn,
            &NewCase::sample(number, &founder, email),
            &["fundraising", "regulatory"],
            FilingEvent {
                actor_id: founder.id,
                kind: "submitted",
                detail: "{}",
            },
        )?;
        notifier().case_submitted(conn, case.id, 100)?;
        Ok(case.id)
    }

    fn notifier() -> Notifier {
        Notifier {
            base_url: "http://desk.example".to_owned(),
            from_address: "desk@desk.example".to_owned(),
        }
    }

    /// What a worker claims at `now` for 1,000 µs.
    async fn claim(db: &Database, now: i64) -> Vec<OutboxRow> {
        db.write(move |conn| outbox::claim_due(conn, now, 1_000, 20, None))
            .await
            .unwrap()
    }

    fn outbox_rows(db: &Database) -> Vec<OutboxRow> {
        db.write_blocking(|conn| outbox::list(conn, None, None, 100))
            .unwrap()
    }

    /// The intake's one event row becomes the acknowledgement and one desk
    /// mail per language, due and created when the event was queued; a
    /// second fan-out of the same claim finds nothing left to replace.
    #[tokio::test]
    async fn a_new_case_is_one_row_until_the_worker_writes_its_mails() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = crate::db::scratch_sqlite_with_admin(dir.path());
        let case_id = db
            .write(|conn| {
                staff(conn)?;
                file_case(conn, "f@a.example", "MD-2026-00042")
            })
            .await
            .unwrap();
        let queued = outbox_rows(&db);
        assert_eq!(queued.len(), 1);
        assert_eq!(queued[0].kind, outbox::CASE_SUBMITTED);
        assert_eq!(queued[0].case_id, Some(case_id));

        let claimed = claim(&db, 200).await;
        assert_eq!(
            fan_out(&db, &notifier(), claimed.clone(), 300)
                .await
                .unwrap(),
            1
        );
        assert_eq!(fan_out(&db, &notifier(), claimed, 400).await.unwrap(), 0);

        let mut mails = outbox_rows(&db);
        mails.sort_by(|a, b| a.kind.cmp(&b.kind).then(a.locale.cmp(&b.locale)));
        let summary: Vec<(&str, &str, Option<&str>)> = mails
            .iter()
            .map(|m| (m.kind.as_str(), m.recipient.as_str(), m.locale.as_deref()))
            .collect();
        assert_eq!(
            summary,
            [
                ("case_submitted_applicant", "f@a.example", Some("ja")),
                ("case_submitted_desk", "s2@desk.example", Some("en")),
                (
                    "case_submitted_desk",
                    "s1@desk.example, s3@desk.example",
                    Some("ja")
                ),
            ]
        );
        for mail in &mails {
            assert_eq!(mail.case_id, Some(case_id));
            assert_eq!(mail.state, "pending");
            assert_eq!((mail.created_at, mail.next_attempt_at), (100, 100));
            assert_eq!(mail.locked_until, None);
            assert!(mail.subject.contains("MD-2026-00042"), "{}", mail.subject);
            assert!(mail.message_id.ends_with("@medesk>"));
            assert_eq!(mail.link.as_deref(), Some("http://desk.example/cases/1"));
        }
        assert!(
            mails[1].body_text.contains("Regulatory, Fundraising"),
            "{}",
            mails[1].body_text
        );
    }

    /// An event whose claim ran out and was taken by another worker is that
    /// worker's: the first one's fan-out writes nothing, the second's
    /// writes the mails once.
    #[tokio::test]
    async fn only_the_worker_holding_an_event_writes_its_mails() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = crate::db::scratch_sqlite_with_admin(dir.path());
        db.write(|conn| {
            staff(conn)?;
            file_case(conn, "f@a.example", "MD-2026-00042")
        })
        .await
        .unwrap();
        let first = claim(&db, 200).await;
        // The first claim ran out (at 1,200): another worker claims at 1,500.
        let second = claim(&db, 1_500).await;
        assert_eq!(second.len(), 1);
        assert_eq!(fan_out(&db, &notifier(), first, 1_600).await.unwrap(), 0);
        assert_eq!(outbox_rows(&db).len(), 1, "the event is still there");
        assert_eq!(fan_out(&db, &notifier(), second, 1_700).await.unwrap(), 1);
        let rows = outbox_rows(&db);
        assert_eq!(rows.len(), 3);
        assert!(rows.iter().all(|row| !outbox::is_event(&row.kind)));
    }

    /// A case that cannot be read (here a category code this build does
    /// not know) holds back no other case's mail: its event stays claimed.
    #[tokio::test]
    async fn an_unreadable_case_holds_back_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = crate::db::scratch_sqlite_with_admin(dir.path());
        let (good, bad) = db
            .write(|conn| {
                staff(conn)?;
                let bad = file_case(conn, "f@a.example", "MD-2026-00001")?;
                let good = file_case(conn, "g@b.example", "MD-2026-00002")?;
                diesel::RunQueryDsl::execute(
                    diesel::sql_query(format!(
                        "UPDATE case_categories SET category = 'astrology' \
                         WHERE case_id = {bad} AND category = 'fundraising'"
                    )),
                    conn,
                )?;
                Ok::<_, DbError>((good, bad))
            })
            .await
            .unwrap();
        let claimed = claim(&db, 200).await;
        assert_eq!(claimed.len(), 2);
        assert_eq!(fan_out(&db, &notifier(), claimed, 300).await.unwrap(), 1);
        let rows = outbox_rows(&db);
        let events: Vec<Option<i64>> = rows
            .iter()
            .filter(|row| outbox::is_event(&row.kind))
            .map(|row| row.case_id)
            .collect();
        assert_eq!(events, [Some(bad)]);
        assert_eq!(
            rows.iter().filter(|row| row.case_id == Some(good)).count(),
            3
        );
    }
}
