//! Who is told what (PRODUCT.md, "Notifications"). Every function here runs
//! inside the transaction of the change it reports and only queues outbox
//! rows; the worker delivers them after commit.

use chrono::{DateTime, Utc};
use icalendar::{Calendar, Component, Event, EventLike, Property};
use minijinja::context;

use crate::clock;
use crate::db::cases::CaseRow;
use crate::db::open_hours::BookingRow;
use crate::db::outbox::{self, NewMail};
use crate::db::users::ContactRow;
use crate::db::{AnyConnection, DbResult, StoredCodes, assignments, notices, users};
use crate::domain::account::Locale;
use crate::domain::notice::{self, Audience, CasePeople, Notice, Plan};
use crate::domain::role::Role;
use crate::domain::vocabulary::{Category, Lang, Outcome, ProductType};

use super::templates::{desk_time, mail};

/// Builds and queues the desk's mails.
#[derive(Debug, Clone)]
pub struct Notifier {
    /// Base of links in mails, without trailing slash.
    pub base_url: String,
    /// The sender, also the ORGANIZER of calendar invitations.
    pub from_address: String,
}

/// A person to write to.
struct Contact {
    email: String,
    name: String,
    locale: Locale,
}

fn lang(locale: Locale) -> Lang {
    match locale {
        Locale::Ja => Lang::Ja,
        Locale::En => Lang::En,
    }
}

fn contact(conn: &mut AnyConnection, user_id: Option<i64>) -> DbResult<Option<Contact>> {
    let Some(id) = user_id else {
        return Ok(None);
    };
    let Some(user) = users::find_by_id(conn, id)? else {
        return Ok(None);
    };
    Contact::of((user.id, user.email, user.name, user.locale)).map(Some)
}

impl Contact {
    fn of((id, email, name, locale): ContactRow) -> DbResult<Contact> {
        Ok(Contact {
            locale: StoredCodes::new("users", id).parse("locale", &locale)?,
            email,
            name,
        })
    }
}

/// The desk's mail to every supporter (see [`to_each_supporter`]).
fn to_every_supporter(
    conn: &mut AnyConnection,
    kind: &'static str,
    case_id: Option<i64>,
    context_in: impl FnMut(Locale) -> minijinja::Value,
) -> DbResult<Vec<NewMail>> {
    let supporters = users::contacts_with_role(conn, Role::Supporter.as_str())?;
    to_each_supporter(supporters, kind, case_id, context_in)
}

/// The desk's mails name no person, so `supporters` get one mail per
/// language, addressed to all who read it: a desk of ten supporters queues
/// two rows per case, not ten (most of an intake's writing was its mail,
/// issue 19). A delivery that fails for one of them is split into one mail
/// each (`outbox::split_recipients`), and nobody gets it twice.
fn to_each_supporter(
    supporters: Vec<ContactRow>,
    kind: &'static str,
    case_id: Option<i64>,
    mut context_in: impl FnMut(Locale) -> minijinja::Value,
) -> DbResult<Vec<NewMail>> {
    let mut mails: Vec<(Locale, NewMail)> = Vec::with_capacity(2);
    for supporter in supporters {
        let supporter = Contact::of(supporter)?;
        let shared = outbox::can_share_a_mail(&supporter.email);
        match mails.iter_mut().find(|(locale, mail)| {
            *locale == supporter.locale && shared && mail.can_add_recipient()
        }) {
            Some((_, mail)) => mail.add_recipient(&supporter.email),
            None => {
                let mut mail = mail(
                    kind,
                    case_id,
                    "",
                    supporter.locale,
                    context_in(supporter.locale),
                );
                mail.recipient = supporter.email;
                mails.push((supporter.locale, mail));
            }
        }
    }
    Ok(mails.into_iter().map(|(_, mail)| mail).collect())
}

/// The people of a case a message notice to `audience` may go to: only
/// those who can read the message.
fn case_people(
    conn: &mut AnyConnection,
    case: &CaseRow,
    audience: Audience,
) -> DbResult<CasePeople> {
    let mut people = CasePeople::default();
    match audience {
        Audience::Applicant => {
            // As every mail to the applicant side: the case's applicant,
            // while still a member of its organisation.
            if let Some(id) = case.applicant_id
                && let Some(user) = users::find_by_id(conn, id)?
                && user.role == Role::Applicant.as_str()
                && user.organization_id == Some(case.organization_id)
            {
                people.applicant = Some(id);
            }
        }
        Audience::Desk => {
            people.claimed_by = case.claimed_by;
            if case.claimed_by.is_none() {
                // Nobody took the case yet: the desk, as for a new case.
                people.supporters = users::contacts_with_role(conn, Role::Supporter.as_str())?
                    .into_iter()
                    .map(|(id, ..)| id)
                    .collect();
            }
            people.accepted_experts = assignments::for_case(conn, case.id)?
                .into_iter()
                .filter(|(assignment, ..)| assignment.status == "accepted")
                .map(|(_, _, user_id)| user_id)
                .collect();
        }
    }
    Ok(people)
}

fn product_label(product_type: ProductType, locale: Locale) -> String {
    product_type.label(lang(locale)).to_owned()
}

fn categories_label(codes: &[&str], locale: Locale) -> String {
    let separator = if locale == Locale::Ja { "、" } else { ", " };
    codes
        .iter()
        .map(|c| {
            c.parse::<Category>()
                .map(|c| c.label(lang(locale)).to_owned())
                .unwrap_or_else(|_| (*c).to_owned())
        })
        .collect::<Vec<_>>()
        .join(separator)
}

impl Notifier {
    /// The case's page (with its messages and meetings).
    fn case_link(&self, id: i64) -> String {
        format!("{}/cases/{id}", self.base_url)
    }

    /// An expert's assignments page.
    fn assignments_link(&self) -> String {
        format!("{}/assignments", self.base_url)
    }

    /// The registration page, with the invitation filled in.
    fn register_link(&self, invitation_token: &str) -> String {
        format!("{}/register?invitation={invitation_token}", self.base_url)
    }

    fn queue(&self, conn: &mut AnyConnection, mail: NewMail, now: i64) -> DbResult<()> {
        outbox::enqueue(conn, &mail, now)
    }

    /// A new case: one `case_submitted` outbox row, which the mail worker
    /// replaces with [`Self::case_submitted_mails`] (`mail::fan_out`).
    pub fn case_submitted(&self, conn: &mut AnyConnection, case_id: i64, now: i64) -> DbResult<()> {
        outbox::enqueue_event(conn, outbox::CASE_SUBMITTED, case_id, now)
    }

    /// The mails of a new case, written by the mail worker: the
    /// acknowledgement to `applicant` (None: the account is gone), "new
    /// case" to every supporter (`supporters` as `users::contacts_with_role`
    /// reads them). `categories` are the applicant's.
    pub fn case_submitted_mails(
        &self,
        case: &CaseRow,
        categories: &[Category],
        applicant: Option<ContactRow>,
        supporters: &[ContactRow],
    ) -> DbResult<Vec<NewMail>> {
        let mut mails = Vec::with_capacity(3);
        if let Some(applicant) = applicant.map(Contact::of).transpose()? {
            mails.push(mail(
                "case_submitted_applicant",
                Some(case.id),
                &applicant.email,
                applicant.locale,
                context! { number => case.number, title => case.title, name => applicant.name,
                link => self.case_link(case.id) },
            ));
        }
        let codes: Vec<&str> = categories.iter().map(|c| c.as_str()).collect();
        mails.extend(to_each_supporter(
            supporters.to_vec(),
            "case_submitted_desk",
            Some(case.id),
            |locale| {
                context! { number => case.number, title => case.title,
                organization => case.organization_name,
                product_type => product_label(case.effective_product_type, locale),
                categories => categories_label(&codes, locale),
                link => self.case_link(case.id) }
            },
        )?);
        Ok(mails)
    }

    /// The desk asked the applicant something.
    pub fn info_requested(
        &self,
        conn: &mut AnyConnection,
        case: &CaseRow,
        reason: Option<&str>,
        now: i64,
    ) -> DbResult<()> {
        let Some(applicant) = contact(conn, case.applicant_id)? else {
            return Ok(());
        };
        let m = mail(
            "info_requested",
            Some(case.id),
            &applicant.email,
            applicant.locale,
            context! { number => case.number, title => case.title, name => applicant.name,
            reason => reason, link => self.case_link(case.id) },
        );
        self.queue(conn, m, now)
    }

    /// The applicant answered: tell the supporter who asked.
    pub fn applicant_replied(
        &self,
        conn: &mut AnyConnection,
        case: &CaseRow,
        now: i64,
    ) -> DbResult<()> {
        let asker = crate::db::cases::last_info_requester(conn, case.id)?;
        let Some(supporter) = contact(conn, asker)? else {
            return Ok(());
        };
        let m = mail(
            "applicant_replied",
            Some(case.id),
            &supporter.email,
            supporter.locale,
            context! { number => case.number, title => case.title, link => self.case_link(case.id) },
        );
        self.queue(conn, m, now)
    }

    /// The case is closed: tell the applicant the outcome.
    pub fn case_closed(
        &self,
        conn: &mut AnyConnection,
        case: &CaseRow,
        outcome: Outcome,
        refer_to: Option<&str>,
        now: i64,
    ) -> DbResult<()> {
        let Some(applicant) = contact(conn, case.applicant_id)? else {
            return Ok(());
        };
        let m = mail(
            "case_closed",
            Some(case.id),
            &applicant.email,
            applicant.locale,
            context! { number => case.number, title => case.title, name => applicant.name,
            outcome => outcome.label(lang(applicant.locale)), refer_to => refer_to,
            link => self.case_link(case.id) },
        );
        self.queue(conn, m, now)
    }

    /// A proposal to an expert: the case number and a link, no case text
    /// (the expert has not accepted the confidentiality terms yet).
    pub fn expert_assigned(
        &self,
        conn: &mut AnyConnection,
        case: &CaseRow,
        expert_user_id: i64,
        role: &str,
        now: i64,
    ) -> DbResult<()> {
        let Some(expert) = contact(conn, Some(expert_user_id))? else {
            return Ok(());
        };
        let role = match (role, expert.locale) {
            ("lead", Locale::Ja) => "主担当",
            (_, Locale::Ja) => "副担当",
            (other, Locale::En) => other,
        };
        let m = mail(
            "expert_assigned",
            Some(case.id),
            &expert.email,
            expert.locale,
            context! { number => case.number, name => expert.name, role => role,
            link => self.assignments_link(),
            terms_version => crate::domain::terms::CONFIDENTIALITY_TERMS_VERSION,
            terms_link => format!("{}{}", self.base_url, crate::domain::terms::CONFIDENTIALITY_TERMS_PAGE) },
        );
        self.queue(conn, m, now)
    }

    /// The expert answered a proposal: tell the supporter who assigned.
    #[allow(clippy::too_many_arguments)]
    pub fn assignment_answered(
        &self,
        conn: &mut AnyConnection,
        case: &CaseRow,
        assigned_by: i64,
        expert_name: &str,
        accepted: bool,
        reason: Option<&str>,
        now: i64,
    ) -> DbResult<()> {
        let Some(supporter) = contact(conn, Some(assigned_by))? else {
            return Ok(());
        };
        let kind = if accepted {
            "assignment_accepted"
        } else {
            "assignment_declined"
        };
        let m = mail(
            kind,
            Some(case.id),
            &supporter.email,
            supporter.locale,
            context! { number => case.number, title => case.title, expert => expert_name,
            reason => reason, link => self.case_link(case.id) },
        );
        self.queue(conn, m, now)
    }

    /// The applicant and the expert get the meeting with an .ics invitation.
    #[allow(clippy::too_many_arguments)]
    pub fn meeting_scheduled(
        &self,
        conn: &mut AnyConnection,
        case: &CaseRow,
        meeting_id: i64,
        expert_user_id: i64,
        expert_name: &str,
        starts_at: i64,
        duration_minutes: i32,
        mode: &str,
        video_url: Option<&str>,
        now: i64,
    ) -> DbResult<()> {
        let applicant = contact(conn, case.applicant_id)?;
        let expert = contact(conn, Some(expert_user_id))?;
        let attendees: Vec<&Contact> = applicant.iter().chain(expert.iter()).collect();
        let ics = self.calendar(
            case,
            meeting_id,
            starts_at,
            duration_minutes,
            mode,
            video_url,
            &attendees,
            now,
        );
        for person in &attendees {
            let mode_label = match (mode, person.locale) {
                ("onsite", Locale::Ja) => "対面",
                ("onsite", Locale::En) => "on site",
                (_, Locale::Ja) => "オンライン",
                (_, Locale::En) => "online",
            };
            let mut m = mail(
                "meeting_scheduled",
                Some(case.id),
                &person.email,
                person.locale,
                context! { number => case.number, name => person.name, expert => expert_name,
                starts_at => desk_time(starts_at, person.locale),
                duration => duration_minutes, mode => mode_label, video_url => video_url,
                link => self.case_link(case.id) },
            );
            m.calendar = Some(ics.clone());
            self.queue(conn, m, now)?;
        }
        Ok(())
    }

    /// RFC 5545 VEVENT with a stable UID, so a re-sent invitation updates the
    /// same calendar entry.
    #[allow(clippy::too_many_arguments)]
    fn calendar(
        &self,
        case: &CaseRow,
        meeting_id: i64,
        starts_at: i64,
        duration_minutes: i32,
        mode: &str,
        video_url: Option<&str>,
        attendees: &[&Contact],
        now: i64,
    ) -> String {
        let start: DateTime<Utc> = clock::to_datetime(starts_at);
        let end = start + chrono::Duration::minutes(i64::from(duration_minutes));
        let mut event = Event::new();
        event
            .uid(&format!("meeting-{meeting_id}@medesk"))
            .timestamp(clock::to_datetime(now))
            .starts(start)
            .ends(end)
            .summary(&format!("[{}] medesk 面談 / meeting", case.number))
            .location(match video_url {
                // An online meeting takes place at its link.
                Some(url) if mode != "onsite" => url,
                _ if mode == "onsite" => "onsite",
                _ => "online",
            })
            .append_property(
                Property::new("ORGANIZER", format!("mailto:{}", self.from_address)).done(),
            );
        if let Some(url) = video_url {
            event
                .url(url)
                .description(&format!("ビデオ通話 / Video call: {url}"));
        }
        for person in attendees {
            event.append_multi_property(
                Property::new("ATTENDEE", format!("mailto:{}", person.email))
                    .add_parameter("CN", &person.name)
                    .add_parameter("ROLE", "REQ-PARTICIPANT")
                    .done(),
            );
        }
        let mut calendar = Calendar::new();
        calendar.append_property(("METHOD", "REQUEST"));
        calendar.push(event.done());
        calendar.done().to_string()
    }

    /// An invitation to join an organisation, in the inviter's language:
    /// a link to the registration page with the token in it, and the token
    /// itself for API clients.
    #[allow(clippy::too_many_arguments)]
    pub fn invitation(
        &self,
        conn: &mut AnyConnection,
        locale: Locale,
        recipient: &str,
        inviter: &str,
        organization: &str,
        token: &str,
        expires_at: i64,
        now: i64,
    ) -> DbResult<()> {
        let m = mail(
            "invitation",
            None,
            recipient,
            locale,
            context! { inviter, organization, token,
            expires_at => desk_time(expires_at, locale), link => self.register_link(token) },
        );
        self.queue(conn, m, now)
    }

    /// Tells the other side of a new message (`domain::notice`), except
    /// those `told` otherwise (its author; the supporter whose information
    /// request it answers, who gets `applicant_replied`): at once
    /// after a quiet quarter hour, else in the one mail that goes when the
    /// quarter hour ends and counts every message that arrived meanwhile.
    /// Each person's notice row is locked while this decides, so two
    /// writers never both mail.
    pub fn message_posted(
        &self,
        conn: &mut AnyConnection,
        case: &CaseRow,
        audience: Audience,
        told: &[i64],
        now: i64,
    ) -> DbResult<()> {
        let people = case_people(conn, case, audience)?;
        for user_id in notice::recipients(audience, &people, told) {
            let row = notices::lock(conn, case.id, user_id)?;
            let Some(person) = contact(conn, Some(user_id))? else {
                continue;
            };
            let mut plan = notice::plan(row.notice(), now);
            if let Plan::Join { due_at, messages } = plan {
                let joined = self.message_notice(case, &person, messages);
                if let Some(waiting) = row.outbox_id
                    && outbox::rewrite_waiting(conn, waiting, &joined)?
                {
                    notices::set(conn, case.id, user_id, Notice { due_at, messages }, waiting)?;
                    continue;
                }
                // A worker took the waiting mail already (its clock is
                // ahead): it went at `due_at`, so this message waits for
                // the next quarter hour.
                plan = Plan::Later {
                    due_at: due_at + notice::QUIET_MICROS,
                };
            }
            let (due_at, messages) = (plan.due_at(now), plan.messages());
            let m = self.message_notice(case, &person, messages);
            let id = outbox::enqueue_due(conn, &m, now, due_at)?;
            notices::set(conn, case.id, user_id, Notice { due_at, messages }, id)?;
        }
        Ok(())
    }

    /// The notice of `messages` new messages: number, count and link, never
    /// their text.
    fn message_notice(&self, case: &CaseRow, person: &Contact, messages: i32) -> NewMail {
        mail(
            "message_posted",
            Some(case.id),
            &person.email,
            person.locale,
            context! { number => case.number, name => person.name, messages => messages,
            link => self.case_link(case.id) },
        )
    }

    /// Tells every supporter that a case waits for triage too long.
    pub fn triage_overdue(
        &self,
        conn: &mut AnyConnection,
        case: &CaseRow,
        days: u32,
        now: i64,
    ) -> DbResult<()> {
        let mails = to_every_supporter(conn, "triage_overdue", Some(case.id), |_| {
            context! { number => case.number, title => case.title, days => days,
            link => self.case_link(case.id) }
        })?;
        outbox::enqueue_all(conn, &mails, now)?;
        Ok(())
    }

    // ------------------------------------------------------------ Open Hours

    /// The Open Hours page, where an applicant sees and cancels bookings.
    fn open_hours_link(&self) -> String {
        format!("{}/open-hours", self.base_url)
    }

    /// The desk's day view of a booking's day.
    fn open_hours_day_link(&self, booking: &BookingRow) -> String {
        let day = clock::to_datetime(booking.starts_at)
            .with_timezone(&crate::domain::case::desk_offset())
            .date_naive();
        format!("{}/desk/open-hours?date={day}", self.base_url)
    }

    /// The booking's calendar entry: `REQUEST` when booked, `CANCEL` of the
    /// same UID when cancelled (RFC 5546), so the applicant's calendar
    /// updates the one entry.
    fn open_hours_calendar(
        &self,
        booking: &BookingRow,
        applicant: &Contact,
        method: &str,
        now: i64,
    ) -> String {
        let mut event = Event::new();
        event
            .uid(&format!("open-hours-{}@medesk", booking.id))
            .timestamp(clock::to_datetime(now))
            .starts(clock::to_datetime(booking.starts_at))
            .ends(clock::to_datetime(booking.ends_at))
            .summary(&format!("MEDISO Open Hours: {}", booking.topic))
            .location("online")
            .append_property(
                Property::new("ORGANIZER", format!("mailto:{}", self.from_address)).done(),
            )
            .append_multi_property(
                Property::new("ATTENDEE", format!("mailto:{}", applicant.email))
                    .add_parameter("CN", &applicant.name)
                    .add_parameter("ROLE", "REQ-PARTICIPANT")
                    .done(),
            );
        if method == "CANCEL" {
            event.status(icalendar::EventStatus::Cancelled);
            // A cancellation supersedes the invitation (RFC 5546 3.2.5).
            event.sequence(1);
        } else {
            event.sequence(0);
        }
        let mut calendar = Calendar::new();
        calendar.append_property(("METHOD", method));
        calendar.push(event.done());
        calendar.done().to_string()
    }

    fn booking_context(&self, booking: &BookingRow, person: &Contact) -> minijinja::Value {
        context! { name => person.name, topic => booking.topic,
        starts_at => desk_time(booking.starts_at, person.locale),
        link => self.open_hours_link() }
    }

    /// The applicant gets the booking with an invitation (.ics); every
    /// supporter is told.
    pub fn open_hours_booked(
        &self,
        conn: &mut AnyConnection,
        booking: &crate::desk::open_hours::Booking,
        now: i64,
    ) -> DbResult<()> {
        self.open_hours_change(conn, booking, "open_hours_booked", "REQUEST", now)
    }

    /// The applicant gets the cancellation of the calendar entry (.ics
    /// CANCEL, same UID); every supporter is told.
    pub fn open_hours_cancelled(
        &self,
        conn: &mut AnyConnection,
        booking: &crate::desk::open_hours::Booking,
        now: i64,
    ) -> DbResult<()> {
        self.open_hours_change(conn, booking, "open_hours_cancelled", "CANCEL", now)
    }

    fn open_hours_change(
        &self,
        conn: &mut AnyConnection,
        booking: &crate::desk::open_hours::Booking,
        kind: &'static str,
        method: &str,
        now: i64,
    ) -> DbResult<()> {
        let row = &booking.row;
        let mut mails = Vec::new();
        if let Some(applicant) = contact(conn, Some(row.applicant_id))? {
            let mut m = mail(
                kind,
                row.case_id,
                &applicant.email,
                applicant.locale,
                self.booking_context(row, &applicant),
            );
            m.calendar = Some(self.open_hours_calendar(row, &applicant, method, now));
            mails.push(m);
        }
        let desk_kind = if method == "CANCEL" {
            "open_hours_cancelled_desk"
        } else {
            "open_hours_booked_desk"
        };
        let codes = row.category_codes();
        mails.extend(to_every_supporter(
            conn,
            desk_kind,
            row.case_id,
            |locale| {
                context! { organization => booking.organization_name,
                applicant => booking.applicant_name, topic => row.topic,
                starts_at => desk_time(row.starts_at, locale),
                categories => categories_label(&codes, locale),
                link => self.open_hours_day_link(row) }
            },
        )?);
        outbox::enqueue_all(conn, &mails, now)
    }

    /// The reminder of a booking, queued to go at `due_at` (the business
    /// day before); its outbox id, so a cancellation can take it back.
    pub fn open_hours_reminder(
        &self,
        conn: &mut AnyConnection,
        booking: &crate::desk::open_hours::Booking,
        now: i64,
        due_at: i64,
    ) -> DbResult<i64> {
        let row = &booking.row;
        let Some(applicant) = contact(conn, Some(row.applicant_id))? else {
            return Ok(0);
        };
        let m = mail(
            OPEN_HOURS_REMINDER,
            row.case_id,
            &applicant.email,
            applicant.locale,
            self.booking_context(row, &applicant),
        );
        outbox::enqueue_due(conn, &m, now, due_at)
    }

    /// Takes back a booking's reminder that no worker has taken yet. By id
    /// and kind: outbox ids can come back once the highest row is deleted,
    /// and a reused id is never another kind of mail's to withdraw.
    pub fn withdraw_open_hours_reminder(
        &self,
        conn: &mut AnyConnection,
        mail_id: i64,
    ) -> DbResult<bool> {
        outbox::withdraw_waiting(conn, mail_id, OPEN_HOURS_REMINDER)
    }
}

/// The kind of a booking's reminder mail (and its template).
const OPEN_HOURS_REMINDER: &str = "open_hours_reminder";
