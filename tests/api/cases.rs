//! Cases, as API.md's Cases section and PRODUCT.md's roles and lifecycle pin
//! them: intake, who sees what, the lifecycle through HTTP, optimistic
//! concurrency, the timeline, messages, listing, the triage queue and the
//! access log.

use std::collections::HashSet;

use chrono::{DateTime, Datelike, FixedOffset};
use futures_util::future::join_all;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Backend, PASSWORD, TestApp, User, encode, error_fields, ids, intake, items, json_body, kinds,
    problem, triage_body, walk_pages,
};
use crate::mailbox::{token_in, wait_for_mail};

on_both_backends!(
    // intake
    applicant_files_a_case_and_reads_it_back_verbatim,
    desk_staff_file_cases_on_behalf_of_an_applicant,
    experts_managers_and_strangers_cannot_file_cases,
    intake_validation_names_each_bad_field_and_stores_nothing,
    an_unknown_code_is_answered_with_the_allowed_ones,
    case_numbers_stay_unique_under_concurrent_intake,
    intakes_arriving_together_each_file_their_own_case,
    // who sees what
    another_organisations_case_is_not_found_and_leaks_nothing,
    reads_arriving_together_each_get_their_own_case,
    applicants_list_only_their_organisations_cases,
    teammates_see_and_answer_their_organisations_cases,
    managers_are_refused_every_case_endpoint,
    experts_see_no_unassigned_cases,
    // lifecycle
    claiming_moves_a_new_case_to_triage,
    triage_routes_the_case,
    triage_validation_refuses_bad_input_and_changes_nothing,
    triage_keeps_the_applicants_choice_beside_the_confirmed_one,
    an_answered_information_request_resumes_where_the_case_was,
    the_desk_closes_with_an_outcome,
    applicants_withdraw_their_own_cases,
    a_supporter_reopens_a_closed_case,
    applicants_cannot_claim_or_triage,
    impossible_transitions_are_conflicts_listing_the_allowed_actions,
    // concurrency
    simultaneous_claims_let_exactly_one_supporter_win,
    a_stale_if_match_is_refused_and_changes_nothing,
    a_malformed_if_match_is_a_bad_request,
    // timeline and messages
    the_timeline_lists_every_change_oldest_first,
    applicants_write_and_read_only_public_messages,
    message_bodies_are_validated,
    // listing
    listing_filters_by_status_effective_product_type_and_category,
    text_search_is_for_desk_staff,
    list_limit_must_be_between_1_and_100,
    pages_follow_each_other_newest_first_without_gaps_or_duplicates,
    each_caller_lists_the_desk_as_they_read_each_case_and_sees_changes_at_once,
    each_member_lists_their_organisation_as_they_read_each_case_and_sees_changes_at_once,
    // desk views
    the_triage_queue_lists_untriaged_cases_oldest_first,
    desk_reads_are_recorded_in_the_access_log,
    a_repeated_listing_is_logged_once_a_minute_and_every_case_read_each_time,
);

// ---------------------------------------------------------------- helpers

/// An id no case has.
fn missing_id() -> Value {
    json!(999_999_999)
}

/// An id as a query-string value.
fn raw(id: &Value) -> String {
    match id {
        Value::String(s) => encode(s),
        other => other.to_string(),
    }
}

fn etag(response: &Response) -> String {
    response
        .headers()
        .get("etag")
        .expect("an ETag header")
        .to_str()
        .unwrap()
        .to_owned()
}

fn strings(array: &Value) -> Vec<String> {
    array
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {array}"))
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}

fn time(value: &Value) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a time string"))
        .unwrap_or_else(|e| panic!("{value} is not RFC 3339: {e}"))
}

/// `MD-YYYY-NNNNN`, the year being the received date's on the desk's
/// calendar (Asia/Tokyo).
fn assert_case_number(case: &Value) {
    let number = case["number"].as_str().expect("number");
    let parts: Vec<&str> = number.split('-').collect();
    assert_eq!(parts.len(), 3, "{number}");
    assert_eq!(parts[0], "MD", "{number}");
    assert!(
        parts[1].len() == 4 && parts[1].chars().all(|c| c.is_ascii_digit()),
        "{number}"
    );
    assert!(
        parts[2].len() >= 5 && parts[2].chars().all(|c| c.is_ascii_digit()),
        "{number}"
    );
    let tokyo = FixedOffset::east_opt(9 * 3600).unwrap();
    let year = time(&case["received_at"]).with_timezone(&tokyo).year();
    assert_eq!(parts[1], year.to_string(), "{number}");
}

/// An intake with these fields replaced.
fn intake_with(fields: Value) -> Value {
    let mut body = intake();
    for (key, value) in fields.as_object().expect("an object") {
        body[key] = value.clone();
    }
    body
}

/// A 409 problem, with its `allowed_actions`.
async fn conflict(response: Response) -> (Value, Vec<String>) {
    let body = problem(response, StatusCode::CONFLICT).await;
    assert_eq!(body["type"], "/problems/conflict");
    let allowed = strings(&body["allowed_actions"]);
    (body, allowed)
}

/// Status, version and timeline length: what must not move when a write is refused.
async fn snapshot(app: &TestApp, token: &str, id: &Value) -> (Value, Value, usize, usize) {
    let case = app.case(token, id).await;
    (
        case["status"].clone(),
        case["version"].clone(),
        app.event_items(token, id).await.len(),
        app.message_items(token, id).await.len(),
    )
}

/// A case of `applicant` that `supporter` has triaged along route `direct`.
async fn case_in_consultation(app: &TestApp, applicant: &User, supporter: &User) -> Value {
    let case = app.new_case(&applicant.token).await;
    let case = app.triaged(&supporter.token, &case["id"], "direct").await;
    assert_eq!(case["status"], "in_consultation");
    case
}

// ---------------------------------------------------------------- intake

async fn applicant_files_a_case_and_reads_it_back_verbatim(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("株式会社メドテック").await;
    let supporter = app.staff("supporter").await;
    let title = "  承認申請 \"quoted\" <b>bold</b> & 🚀  ";
    let description =
        "第一行\n<script>alert('x')</script>\r\n\t&amp; \\ 'single' 👩‍⚕️ 𠮷野家 «ü» \u{3000}末尾";
    let body = intake_with(json!({
        "title": title,
        "description": description,
        "product_type": "drug",
        "categories": ["reimbursement", "other", "regulatory", "ip_strategy"],
        "stage": "clinical",
        "language": "en",
        // Typing another organisation's name never moves the case there.
        "organization": {"name": "Someone Else Inc.", "kind": "startup"},
    }));

    let response = app.submit_case(&applicant.token, &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(etag(&response), "\"1\"");
    let case: Value = response.json().await.unwrap();
    assert_case_number(&case);
    assert!(
        case["number"].as_str().unwrap().ends_with("-00001"),
        "{}",
        case["number"]
    );
    assert!(case["id"].is_i64() || case["id"].is_string());
    assert_eq!(case["status"], "submitted");
    assert_eq!(case["version"], 1);
    assert_eq!(case["title"], title);
    assert_eq!(case["description"], description);
    assert_eq!(case["product_type"], "drug");
    assert_eq!(
        case["categories"],
        json!(["regulatory", "ip_strategy", "reimbursement", "other"])
    );
    assert_eq!(case["stage"], "clinical");
    assert_eq!(case["language"], "en");
    assert_eq!(case["organization"]["id"], applicant.organization_id);
    assert_eq!(case["organization"]["name"], "株式会社メドテック");
    for field in [
        "outcome",
        "priority",
        "confirmed_product_type",
        "confirmed_categories",
    ] {
        assert!(
            case.as_object().unwrap().contains_key(field),
            "{field} is present"
        );
        assert!(case[field].is_null(), "{field} is null before triage");
    }
    time(&case["received_at"]);
    time(&case["updated_at"]);

    // Read back by its applicant: the very same document, with its ETag.
    let response = app.get_case(&applicant.token, &case["id"]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(etag(&response), "\"1\"");
    let fetched: Value = response.json().await.unwrap();
    assert_eq!(fetched, case);

    // The desk reads the same text, byte for byte, in the same order.
    let desk = app.case(&supporter.token, &case["id"]).await;
    for field in [
        "id",
        "number",
        "title",
        "description",
        "categories",
        "product_type",
        "stage",
        "received_at",
        "version",
    ] {
        assert_eq!(desk[field], case[field], "{field}");
    }
    let listed = json_body(app.list_cases(&supporter.token, "").await, StatusCode::OK).await;
    assert_eq!(listed["items"][0]["title"], title);
    assert_eq!(listed["items"][0]["description"], description);
    assert_eq!(listed["items"][0]["categories"], case["categories"]);

    // The next case takes the next number.
    let second = app.new_case(&applicant.token).await;
    assert_case_number(&second);
    assert!(
        second["number"].as_str().unwrap().ends_with("-00002"),
        "{}",
        second["number"]
    );
    assert_ne!(second["id"], case["id"]);
}

async fn desk_staff_file_cases_on_behalf_of_an_applicant(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Phone-in Startup").await;
    let supporter = app.staff("supporter").await;
    let admin = app.staff("admin").await;

    let mut filed = Vec::new();
    for filer in [&supporter, &admin] {
        let body = intake_with(json!({"applicant_id": applicant.id}));
        let case = app.new_case_with(&filer.token, &body).await;
        assert_eq!(case["status"], "submitted");
        assert_eq!(case["organization"]["id"], applicant.organization_id);
        assert_eq!(case["organization"]["name"], "Phone-in Startup");
        // The applicant sees the case filed for it.
        assert_eq!(
            app.case(&applicant.token, &case["id"]).await["id"],
            case["id"]
        );
        filed.insert(0, case["id"].clone());
    }
    assert_eq!(app.listed_ids(&applicant.token, "").await, filed);

    // Without an applicant, or naming someone who is not one: 422.
    let not_applicants = [
        None,
        Some(supporter.id.clone()),
        Some(admin.id.clone()),
        Some(missing_id()),
    ];
    for applicant_id in not_applicants {
        let mut body = intake();
        if let Some(id) = &applicant_id {
            body["applicant_id"] = id.clone();
        }
        let refused = problem(
            app.submit_case(&supporter.token, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(
            error_fields(&refused),
            vec!["applicant_id"],
            "applicant_id {applicant_id:?}"
        );
    }
    // Nothing more was filed.
    assert_eq!(app.listed_ids(&supporter.token, "").await, filed);
}

async fn experts_managers_and_strangers_cannot_file_cases(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let body = intake_with(json!({"applicant_id": applicant.id}));
    for role in ["expert", "manager"] {
        let user = app.staff(role).await;
        let refused = problem(
            app.submit_case(&user.token, &body).await,
            StatusCode::FORBIDDEN,
        )
        .await;
        assert_eq!(refused["type"], "/problems/forbidden", "{role}");
    }
    let refused = problem(
        app.post("/api/v1/cases", None, &intake()).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(refused["type"], "/problems/unauthorized");
    problem(
        app.submit_case("not-a-token", &intake()).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    let supporter = app.staff("supporter").await;
    assert!(app.listed_ids(&supporter.token, "").await.is_empty());
}

/// A person who typed `samd` learns what to type instead, for every closed
/// vocabulary of the intake and of the case list's filters (issue 16).
async fn an_unknown_code_is_answered_with_the_allowed_ones(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let cases: [(&str, Value, &str, &[&str]); 5] = [
        (
            "product_type",
            json!("samd"),
            "product_type",
            &["drug", "medical_device", "regenerative", "other"],
        ),
        (
            "categories",
            json!(["astrology"]),
            "categories",
            &[
                "regulatory",
                "reimbursement",
                "ip_strategy",
                "international",
            ],
        ),
        ("stage", json!("prototype"), "stage", &["non_clinical"]),
        ("language", json!("fr"), "language", &["ja", "en"]),
        (
            "organization",
            json!({"kind": "corporation"}),
            "organization.kind",
            &["startup"],
        ),
    ];
    for (field, value, named, codes) in cases {
        let mut body = intake();
        body[field] = value;
        let refused = problem(
            app.submit_case(&applicant.token, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(error_fields(&refused), vec![named]);
        let message = refused["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("allowed: "), "{named}: {message}");
        for code in codes {
            assert!(message.contains(code), "{named} lists {code}: {message}");
        }
    }
    let response = app
        .client
        .get(app.url("/api/v1/cases?status=open"))
        .bearer_auth(&applicant.token)
        .send()
        .await
        .unwrap();
    let refused = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let message = refused["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("allowed: submitted, triage"), "{message}");
    assert!(app.listed_ids(&applicant.token, "").await.is_empty());
}

async fn intake_validation_names_each_bad_field_and_stores_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;

    let bad: Vec<(&str, Value, &str)> = vec![
        ("title", json!(""), "title"),
        ("title", json!("   "), "title"),
        ("title", json!("字".repeat(201)), "title"),
        ("description", json!(""), "description"),
        // 20,001 characters (60,003 bytes): the limit counts characters.
        ("description", json!("説".repeat(20_001)), "description"),
        ("categories", json!([]), "categories"),
        ("categories", json!(["astrology"]), "categories"),
        (
            "categories",
            json!(["regulatory", "regulatory"]),
            "categories",
        ),
        (
            "categories",
            json!(["marketing", "regulatory", "marketing"]),
            "categories",
        ),
        ("product_type", json!("pharma"), "product_type"),
        ("product_type", json!("医薬品 "), "product_type"),
        ("stage", json!("prototype"), "stage"),
        ("language", json!("fr"), "language"),
        (
            "organization",
            json!({"kind": "corporation"}),
            "organization.kind",
        ),
    ];
    for (field, value, expected) in bad {
        let mut body = intake();
        body[field] = value.clone();
        let shown: String = value.to_string().chars().take(40).collect();
        let refused = problem(
            app.submit_case(&applicant.token, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(refused["type"], "/problems/validation", "{field} = {shown}");
        assert_eq!(error_fields(&refused), vec![expected], "{field} = {shown}");
    }
    for field in [
        "title",
        "description",
        "product_type",
        "categories",
        "stage",
    ] {
        let mut body = intake();
        body.as_object_mut().unwrap().remove(field);
        let refused = problem(
            app.submit_case(&applicant.token, &body).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(error_fields(&refused), vec![field], "without {field}");
    }
    // Every problem at once.
    let refused = problem(
        app.submit_case(&applicant.token, &json!({})).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let mut fields = error_fields(&refused);
    fields.sort();
    assert_eq!(
        fields,
        vec![
            "categories",
            "description",
            "product_type",
            "stage",
            "title"
        ]
    );

    // None of the refused intakes was stored.
    assert!(app.listed_ids(&applicant.token, "").await.is_empty());
    let supporter = app.staff("supporter").await;
    assert!(app.listed_ids(&supporter.token, "").await.is_empty());
    assert!(
        items(json_body(app.triage_queue(&supporter.token).await, StatusCode::OK).await).is_empty()
    );

    // The limits are inclusive and count characters, not bytes.
    let body = intake_with(json!({
        "title": "字".repeat(200),
        "description": "説".repeat(20_000),
        "categories": ["other"],
    }));
    let case = app.new_case_with(&applicant.token, &body).await;
    assert_eq!(case["title"].as_str().unwrap().chars().count(), 200);
    assert_eq!(
        case["description"].as_str().unwrap().chars().count(),
        20_000
    );
    assert_eq!(
        app.listed_ids(&applicant.token, "").await,
        vec![case["id"].clone()]
    );
}

async fn case_numbers_stay_unique_under_concurrent_intake(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Busy Startup").await;
    let supporter = app.staff("supporter").await;
    let bodies: Vec<Value> = (0..20)
        .map(|n| intake_with(json!({"title": format!("同時受付 {n}")})))
        .collect();
    let responses = join_all(
        bodies
            .iter()
            .map(|body| app.submit_case(&applicant.token, body)),
    )
    .await;

    let mut numbers = HashSet::new();
    let mut case_ids = HashSet::new();
    for response in responses {
        let case = json_body(response, StatusCode::CREATED).await;
        assert_case_number(&case);
        assert_eq!(case["version"], 1);
        numbers.insert(case["number"].as_str().unwrap().to_owned());
        case_ids.insert(case["id"].to_string());
    }
    assert_eq!(numbers.len(), 20, "distinct numbers: {numbers:?}");
    assert_eq!(case_ids.len(), 20);

    let listed = json_body(
        app.list_cases(&supporter.token, "limit=100").await,
        StatusCode::OK,
    )
    .await;
    let listed_numbers: HashSet<String> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["number"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed_numbers, numbers);
}

/// Intakes of many applicants at once (on PostgreSQL gathered into one
/// statement, `db::cases::file_own`): each files its own case under its
/// own organisation's registered name, with its categories, its
/// `submitted` event, its mail and its statistics; an applicant who left
/// the organisation their session names files nothing, and the others
/// are not held up by it.
async fn intakes_arriving_together_each_file_their_own_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut applicants = Vec::new();
    for index in 0..6 {
        applicants.push(app.applicant(&format!("同時法人{index}")).await);
    }
    // The session of applicant 4 still names the organisation they left.
    let left = &applicants[4];
    app.execute_sql(&format!(
        "UPDATE users SET organization_id = {} WHERE id = {}",
        applicants[5].organization_id, left.id
    ))
    .await;
    let categories = [
        json!(["fundraising"]),
        json!(["regulatory", "ip_strategy", "international"]),
    ];
    let requests: Vec<(usize, Value)> = (0..applicants.len())
        .flat_map(|index| {
            categories.iter().enumerate().map(move |(n, categories)| {
                let mut body = intake_with(json!({
                    "title": format!("同時申請 {index}-{n}"),
                    "categories": categories,
                }));
                if n == 1 {
                    body["organization"] = json!({"name": "別名で入力", "kind": "academia"});
                }
                (index, body)
            })
        })
        .collect();
    let (app, tokens) = (&app, &applicants);
    let answers = join_all(requests.iter().map(|(index, body)| async move {
        let response = app.submit_case(&tokens[*index].token, body).await;
        (response.status(), response.json::<Value>().await.unwrap())
    }))
    .await;

    let mut numbers = HashSet::new();
    let mut filed_ids = Vec::new();
    for ((index, body), (status, answer)) in requests.iter().zip(&answers) {
        if *index == 4 {
            assert_eq!(*status, StatusCode::NOT_FOUND, "{answer}");
            assert!(!answer.to_string().contains("同時申請"), "{answer}");
            continue;
        }
        assert_eq!(*status, StatusCode::CREATED, "{answer}");
        assert_case_number(answer);
        assert!(numbers.insert(answer["number"].clone()), "{answer}");
        assert_eq!(answer["title"], body["title"]);
        assert_eq!(answer["categories"], body["categories"]);
        assert_eq!(answer["organization"]["name"], format!("同時法人{index}"));
        let kind = if body["organization"]["kind"] == "academia" {
            "academia"
        } else {
            "startup"
        };
        assert_eq!(answer["organization"]["kind"], kind, "{answer}");
        let applicant = &applicants[*index];
        assert_eq!(answer["organization"]["id"], applicant.organization_id);
        assert_eq!(&app.case(&applicant.token, &answer["id"]).await, answer);
        let events = app.event_items(&applicant.token, &answer["id"]).await;
        assert_eq!(kinds(&events), ["submitted"]);
        filed_ids.push(answer["id"].to_string());
    }
    assert_eq!(filed_ids.len(), 10);
    let filed = filed_ids.join(", ");
    assert_eq!(
        app.count_sql(&format!(
            "SELECT count(DISTINCT case_id) FROM outbox WHERE case_id IN ({filed})"
        ))
        .await,
        10,
        "every case queued its mail"
    );
    assert_eq!(
        app.count_sql(&format!(
            "SELECT count(*) FROM cases WHERE applicant_id = {}",
            left.id
        ))
        .await,
        0,
        "nothing filed for the applicant who left"
    );
    let check = app.statistics_folded().await;
    assert_eq!(check["consistent"], true, "{check}");
}

/// PostgreSQL takes a case's number in a statement of its own whose commit
/// does not wait for the disk (`db::cases::reserve_sequence`); the setting
/// must end with that statement, or the intake that follows on the same
/// pooled connection would commit without waiting for the disk either.
#[tokio::test]
async fn postgres_a_reserved_number_leaves_its_connection_committing_durably() {
    use diesel::{Connection, RunQueryDsl};
    #[derive(diesel::QueryableByName)]
    struct Setting {
        #[diesel(sql_type = diesel::sql_types::Text)]
        synchronous_commit: String,
    }
    let app = TestApp::spawn(Backend::Postgres).await;
    let url = app.database_url();
    tokio::task::spawn_blocking(move || {
        let mut conn = medesk::db::AnyConnection::establish(&url).unwrap();
        let reserve = |conn: &mut _| medesk::db::cases::reserve_sequence(conn, 2031).unwrap();
        assert_eq!(reserve(&mut conn), Some(1));
        assert_eq!(reserve(&mut conn), Some(2));
        let medesk::db::AnyConnection::Postgres(pg) = &mut conn else {
            unreachable!("a PostgreSQL app")
        };
        let setting: Setting = diesel::sql_query("SHOW synchronous_commit")
            .get_result(pg)
            .unwrap();
        assert_eq!(setting.synchronous_commit, "on");
    })
    .await
    .unwrap();
}

/// An applicant's id and their organisation's, as the store knows them.
fn ids_of(applicant: &User) -> (i64, i64) {
    (
        applicant.id.as_i64().unwrap(),
        applicant.organization_id.as_i64().unwrap(),
    )
}

/// A regulatory question `applicant_id` files for their organisation, as
/// PostgreSQL's gathered intake receives it.
fn own_filing(
    applicant_id: i64,
    organization_id: i64,
    title: &str,
    received_at: i64,
) -> medesk::db::cases::OwnFiling {
    medesk::db::cases::OwnFiling {
        applicant_id,
        organization_id,
        title: title.to_owned(),
        description: "承認申請の進め方を相談したい".to_owned(),
        product_type: "medical_device",
        stage: "non_clinical",
        language: "ja",
        organization_kind: None,
        categories: vec!["regulatory"],
        received_at,
    }
}

/// Gathered intakes received on both sides of New Year's midnight (the
/// desk's time, UTC+9) take their numbers from each year's own counter, in
/// the order they came, and a later intake continues each year's count; an
/// intake whose applicant left the organisation is filed under no number
/// another intake takes.
#[tokio::test]
async fn postgres_gathered_intakes_across_new_year_are_numbered_per_year() {
    use diesel::Connection;
    use medesk::db::cases::{OwnFiling, ReservedNumbers, file_own_together};
    let app = TestApp::spawn(Backend::Postgres).await;
    let applicant = app.applicant("Newyear KK").await;
    let (applicant_id, organization_id) = ids_of(&applicant);
    let url = app.database_url();
    let micros = |rfc3339: &str| {
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_micros()
    };
    let filing = move |title: &str, received_at: i64, organization_id: i64| {
        own_filing(applicant_id, organization_id, title, received_at)
    };
    let (late_2030, early_2031) = (
        micros("2030-12-31T23:59:30+09:00"),
        micros("2031-01-01T00:00:10+09:00"),
    );
    let numbers = tokio::task::spawn_blocking(move || {
        let mut conn = medesk::db::AnyConnection::establish(&url).unwrap();
        let mut reserved = ReservedNumbers::default();
        let mut numbers_of = |filings: &[OwnFiling]| -> Vec<Option<String>> {
            file_own_together(&mut conn, &mut reserved, filings)
                .unwrap()
                .into_iter()
                .map(|filed| filed.unwrap().map(|case| case.number))
                .collect()
        };
        let first = numbers_of(&[
            filing("old year, first", late_2030, organization_id),
            filing("new year, first", early_2031, organization_id),
            filing("not a member", early_2031, organization_id + 1_000),
            filing("old year, second", late_2030 + 1, organization_id),
        ]);
        let later = numbers_of(&[filing("new year, later", early_2031 + 5, organization_id)]);
        (first, later)
    })
    .await
    .unwrap();
    assert_eq!(
        numbers.0,
        [
            Some("MD-2030-00001".to_owned()),
            Some("MD-2031-00001".to_owned()),
            None,
            Some("MD-2030-00002".to_owned()),
        ]
    );
    // The refused intake took MD-2031-00002 (numbers may have gaps, never repeats).
    assert_eq!(numbers.1, [Some("MD-2031-00003".to_owned())]);
    assert_eq!(
        app.count_sql("SELECT count(*) FROM cases WHERE received_on LIKE '2031-%'")
            .await,
        2
    );
    assert_eq!(
        app.count_sql(
            "SELECT count(*) FROM cases WHERE received_on = '2030-12-31' \
             AND number LIKE 'MD-2030-%'"
        )
        .await,
        2
    );
}

/// Two instances' gatherers on one database (each with its reserved
/// numbers): a batch reserves a block for itself and seven more batches
/// of its size, a single intake takes the next of its block, the other
/// instance and the desk's own filings number from beyond every block, and
/// a batch that fails drops its gatherer's block, whose next intake then
/// numbers from the counter again.
#[tokio::test]
async fn postgres_gatherers_number_from_blocks_of_their_own() {
    use diesel::Connection;
    use medesk::db::cases::{OwnFiling, ReservedNumbers, file_own_together, reserve_sequence};
    let app = TestApp::spawn(Backend::Postgres).await;
    let applicant = app.applicant("Blocks KK").await;
    let (applicant_id, organization_id) = ids_of(&applicant);
    let received_at = chrono::DateTime::parse_from_rfc3339("2031-05-01T10:00:00+09:00")
        .unwrap()
        .timestamp_micros();
    let filings = move |titles: &[&str]| -> Vec<OwnFiling> {
        titles
            .iter()
            .map(|title| own_filing(applicant_id, organization_id, title, received_at))
            .collect()
    };
    let url = app.database_url();
    tokio::task::spawn_blocking(move || {
        let connect = || medesk::db::AnyConnection::establish(&url).unwrap();
        let (mut one, mut two) = (connect(), connect());
        let file = |conn: &mut medesk::db::AnyConnection,
                    reserved: &mut ReservedNumbers,
                    titles: &[&str]|
         -> Vec<Result<String, String>> {
            file_own_together(conn, reserved, &filings(titles))
                .unwrap()
                .into_iter()
                .map(|filed| match filed {
                    Ok(case) => Ok(case.expect("a member").number),
                    Err(error) => Err(error.to_string()),
                })
                .collect()
        };
        let ok = |numbers: &[&str]| -> Vec<Result<String, String>> {
            numbers.iter().map(|n| Ok(format!("MD-2031-{n}"))).collect()
        };
        let (mut first, mut second) = (ReservedNumbers::default(), ReservedNumbers::default());
        assert_eq!(
            file(&mut one, &mut first, &["a1", "a2"]),
            ok(&["00001", "00002"])
        );
        assert_eq!(
            file(&mut two, &mut second, &["b1", "b2", "b3"]),
            ok(&["00017", "00018", "00019"]),
            "the first instance holds 3 to 16"
        );
        assert_eq!(file(&mut one, &mut first, &["a3"]), ok(&["00003"]));
        assert_eq!(
            reserve_sequence(&mut one, 2031).unwrap(),
            Some(41),
            "the second instance holds 20 to 40"
        );

        // A number the first instance holds is taken meanwhile (as by a
        // restored backup): that filing fails alone, its neighbour is filed,
        // and the block is dropped.
        let medesk::db::AnyConnection::Postgres(pg) = &mut two else {
            unreachable!("a PostgreSQL app")
        };
        diesel::RunQueryDsl::execute(
            diesel::sql_query(
                "UPDATE cases SET number = 'MD-2031-00004' WHERE number = 'MD-2031-00001'",
            ),
            pg,
        )
        .unwrap();
        let refused = file(&mut one, &mut first, &["a4", "a4b"]);
        assert!(
            matches!(refused.as_slice(), [Err(_), Ok(n)] if n == "MD-2031-00005"),
            "MD-2031-00004 again: {refused:?}"
        );
        assert_eq!(file(&mut one, &mut first, &["a5"]), ok(&["00042"]));
        assert_eq!(file(&mut two, &mut second, &["b4"]), ok(&["00020"]));
    })
    .await
    .unwrap();
    assert_eq!(
        app.count_sql("SELECT count(*) FROM cases WHERE number LIKE 'MD-2031-%'")
            .await,
        9
    );
    assert_eq!(
        app.count_sql("SELECT count(DISTINCT number) FROM cases")
            .await,
        app.count_sql("SELECT count(*) FROM cases").await
    );
}

// ---------------------------------------------------------------- who sees what

/// Every per-case call a stranger might try: `(what, status, body)`.
async fn stranger_calls(app: &TestApp, token: &str, id: &Value) -> Vec<(String, u16, Value)> {
    let calls = vec![
        ("GET case", app.get_case(token, id).await),
        ("GET events", app.events(token, id).await),
        ("GET messages", app.messages(token, id).await),
        (
            "POST messages",
            app.post_message(token, id, &json!({"body": "見せて"}), None)
                .await,
        ),
        (
            "POST status",
            app.set_status(token, id, &json!({"status": "closed"}), None)
                .await,
        ),
        ("POST claim", app.claim(token, id, None).await),
        (
            "POST triage",
            app.triage(token, id, &triage_body("direct"), None).await,
        ),
    ];
    let mut answers = Vec::new();
    for (what, response) in calls {
        let status = response.status();
        let body = problem(response, status).await;
        answers.push((what.to_owned(), status.as_u16(), body));
    }
    answers
}

async fn another_organisations_case_is_not_found_and_leaks_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.applicant("Owner KK").await;
    let stranger = app.applicant("Stranger KK").await;
    let case = app
        .new_case_with(
            &owner.token,
            &intake_with(json!({"title": "極秘の新技術", "description": "未公開の特許情報"})),
        )
        .await;

    let on_case = stranger_calls(&app, &stranger.token, &case["id"]).await;
    let on_nothing = stranger_calls(&app, &stranger.token, &missing_id()).await;
    for (what, status, _) in &on_case {
        let expected = match what.as_str() {
            // Applicants may never claim or triage, whichever case: the role
            // check answers before (and independently of) the case lookup.
            "POST claim" | "POST triage" => 403,
            _ => 404,
        };
        assert_eq!(*status, expected, "{what}");
    }
    // Exactly what a case that does not exist gets: nothing tells them apart.
    assert_eq!(on_case, on_nothing);
    let leaked = serde_json::to_string(&on_case).unwrap();
    for secret in [
        "極秘",
        "未公開",
        case["number"].as_str().unwrap(),
        "Owner KK",
    ] {
        assert!(!leaked.contains(secret), "{secret} leaked: {leaked}");
    }

    // The stranger lists nothing, and the owner's case is untouched.
    assert!(app.listed_ids(&stranger.token, "").await.is_empty());
    let after = app.case(&owner.token, &case["id"]).await;
    assert_eq!(after["status"], "submitted");
    assert_eq!(after["version"], 1);
    assert_eq!(
        kinds(&app.event_items(&owner.token, &case["id"]).await),
        vec!["submitted"]
    );
    assert!(
        app.message_items(&owner.token, &case["id"])
            .await
            .is_empty()
    );
}

/// Reads that arrive together (on PostgreSQL gathered into one statement,
/// `db::gathered`) each get their own case exactly as a read alone shows
/// it, categories and duplicate links included; in the same burst a case
/// of another organisation, and one that does not exist, are not found and
/// a supporter sees every case.
async fn reads_arriving_together_each_get_their_own_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let supporter = app.staff("supporter").await;
    let mut filed: Vec<(User, Value)> = Vec::new();
    for index in 0..6 {
        let applicant = app.applicant(&format!("株式会社メドテック{index}")).await;
        let body = intake_with(json!({"title": format!("相談 {index}")}));
        let case = app.new_case_with(&applicant.token, &body).await;
        filed.push((applicant, case));
    }
    let (first, original) = filed[0].clone();
    let copy = app.new_case(&first.token).await;
    app.moved(
        &supporter.token,
        &copy["id"],
        json!({"status": "closed", "outcome": "duplicate", "duplicate_of": original["id"], "reason": "same request twice"}),
    )
    .await;
    filed.push((first, copy));
    let mut alone = Vec::new();
    for (applicant, case) in &filed {
        alone.push(app.case(&applicant.token, &case["id"]).await);
    }
    assert_eq!(alone[0]["duplicates"].as_array().map(Vec::len), Some(1));
    assert_eq!(alone[6]["duplicate_of"]["id"], original["id"]);

    // A case whose stored category this version does not know (written by
    // a newer one) cannot be read; it fails alone, not the burst.
    let unreadable = app.new_case(&filed[2].0.token).await;
    app.execute_sql(&format!(
        "UPDATE case_categories SET category = 'from_a_newer_version' \
         WHERE case_id = {0} AND category = (SELECT MIN(category) FROM case_categories WHERE case_id = {0})",
        unreadable["id"]
    ))
    .await;

    let (stranger, _) = &filed[1];
    let missing = missing_id();
    let app = &app;
    let answers = join_all(
        filed
            .iter()
            .flat_map(|(applicant, case)| {
                [
                    (applicant.token.as_str(), &case["id"]),
                    (applicant.token.as_str(), &case["id"]),
                    (supporter.token.as_str(), &case["id"]),
                ]
            })
            .chain([
                (stranger.token.as_str(), &original["id"]),
                (stranger.token.as_str(), &missing),
                (filed[2].0.token.as_str(), &unreadable["id"]),
            ])
            .map(|(token, id)| async move {
                let response = app.get_case(token, id).await;
                (response.status(), response.json::<Value>().await.unwrap())
            }),
    )
    .await;
    for (index, expected) in alone.iter().enumerate() {
        for (status, answer) in &answers[index * 3..index * 3 + 2] {
            assert_eq!(*status, StatusCode::OK);
            assert_eq!(answer, expected, "case {index} read in a burst");
        }
        let (status, staff_view) = &answers[index * 3 + 2];
        assert_eq!(*status, StatusCode::OK);
        assert_eq!(staff_view["id"], expected["id"]);
        assert_eq!(staff_view["categories"], expected["categories"]);
        assert_eq!(staff_view["duplicates"], expected["duplicates"]);
    }
    let not_found = &answers[alone.len() * 3..alone.len() * 3 + 2];
    assert_eq!(not_found[0].0, StatusCode::NOT_FOUND);
    assert_eq!(
        not_found[0], not_found[1],
        "a stranger cannot tell them apart"
    );
    let (status, problem) = &answers[alone.len() * 3 + 2];
    assert_eq!(*status, StatusCode::INTERNAL_SERVER_ERROR, "{problem}");
    assert!(
        !problem.to_string().contains("from_a_newer_version"),
        "{problem}"
    );
}

async fn applicants_list_only_their_organisations_cases(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let a = app.applicant("A Inc.").await;
    let b = app.applicant("B Inc.").await;
    let supporter = app.staff("supporter").await;
    let a1 = app.new_case(&a.token).await["id"].clone();
    let b1 = app.new_case(&b.token).await["id"].clone();
    let a2 = app.new_case(&a.token).await["id"].clone();

    assert_eq!(
        app.listed_ids(&a.token, "").await,
        vec![a2.clone(), a1.clone()]
    );
    assert_eq!(app.listed_ids(&b.token, "").await, vec![b1.clone()]);
    assert_eq!(
        app.listed_ids(&b.token, "status=submitted&category=regulatory")
            .await,
        vec![b1.clone()]
    );
    assert_eq!(
        app.listed_ids(&supporter.token, "").await,
        vec![a2.clone(), b1.clone(), a1.clone()]
    );

    // The desk's list is kept between reads (db::cases::list_page): a new
    // case and a changed one show at the next read all the same.
    let b2 = app.new_case(&b.token).await["id"].clone();
    app.claimed(&supporter.token, &a1).await;
    let listed = items(json_body(app.list_cases(&supporter.token, "").await, StatusCode::OK).await);
    assert_eq!(ids(&json!(listed)), vec![b2, a2, b1, a1.clone()]);
    assert_eq!(listed[3]["id"], a1);
    assert_eq!(listed[3]["status"], "triage");
}

/// Invites `email` into `owner`'s organisation and registers it with the
/// token from the invitation mail; returns the signed-in teammate.
async fn teammate_of(app: &TestApp, owner: &User, email: &str) -> User {
    let invited = app
        .post(
            &format!(
                "/api/v1/organizations/{}/invitations",
                raw(&owner.organization_id)
            ),
            Some(&owner.token),
            &json!({"email": email}),
        )
        .await;
    json_body(invited, StatusCode::CREATED).await;
    let mail = wait_for_mail(&app.mail_dir, email, |_| true).await;
    let joined = app
        .register(&json!({
            "email": email, "password": PASSWORD, "name": "Teammate", "locale": "ja",
            "invitation_token": token_in(&mail.text),
        }))
        .await;
    let user = json_body(joined, StatusCode::CREATED).await;
    assert_eq!(user["organization_id"], owner.organization_id);
    User {
        email: email.to_owned(),
        token: app.tokens(email, PASSWORD).await.0,
        id: user["id"].clone(),
        organization_id: user["organization_id"].clone(),
    }
}

async fn teammates_see_and_answer_their_organisations_cases(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let owner = app.applicant("Team KK").await;
    let supporter = app.staff("supporter").await;
    let teammate = teammate_of(&app, &owner, "teammate@team.example").await;
    let outsider = app.applicant("Team KK").await;

    let case = app.new_case(&owner.token).await;
    let id = &case["id"];
    assert_eq!(
        app.case(&teammate.token, id).await["number"],
        case["number"]
    );
    assert_eq!(app.listed_ids(&teammate.token, "").await, vec![id.clone()]);
    // Same organisation name, different organisation: nothing.
    problem(
        app.get_case(&outsider.token, id).await,
        StatusCode::NOT_FOUND,
    )
    .await;
    assert!(app.listed_ids(&outsider.token, "").await.is_empty());

    // The teammate's case is the owner's too, and either may answer the desk.
    let theirs = app.new_case(&teammate.token).await;
    assert_eq!(theirs["organization"]["id"], owner.organization_id);
    assert_eq!(
        app.listed_ids(&owner.token, "").await,
        vec![theirs["id"].clone(), id.clone()]
    );
    app.claimed(&supporter.token, id).await;
    app.moved(&supporter.token, id, json!({"status": "awaiting_info"}))
        .await;
    json_body(
        app.post_message(
            &teammate.token,
            id,
            &json!({"body": "代わりに回答します"}),
            None,
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(app.case(&owner.token, id).await["status"], "triage");
    let messages = app.message_items(&owner.token, id).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["author"]["id"], teammate.id);
}

async fn managers_are_refused_every_case_endpoint(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let manager = app.staff("manager").await;
    let case = app.new_case(&applicant.token).await;
    let id = &case["id"];
    let token = manager.token.as_str();

    let calls = vec![
        ("GET case", app.get_case(token, id).await),
        ("GET list", app.list_cases(token, "").await),
        ("GET events", app.events(token, id).await),
        ("GET messages", app.messages(token, id).await),
        (
            "POST messages",
            app.post_message(token, id, &json!({"body": "?"}), None)
                .await,
        ),
        ("POST claim", app.claim(token, id, None).await),
        (
            "POST triage",
            app.triage(token, id, &triage_body("direct"), None).await,
        ),
        (
            "POST status",
            app.set_status(
                token,
                id,
                &json!({"status": "closed", "outcome": "resolved"}),
                None,
            )
            .await,
        ),
        ("GET triage queue", app.triage_queue(token).await),
        ("GET access log", app.access_log(token, "").await),
    ];
    for (what, response) in calls {
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}");
        let body = problem(response, StatusCode::FORBIDDEN).await;
        assert!(
            !body.to_string().contains("医療機器の承認申請"),
            "{what} leaked the title"
        );
    }
    let after = app.case(&applicant.token, id).await;
    assert_eq!(after["version"], 1);
    assert!(app.message_items(&applicant.token, id).await.is_empty());
}

async fn experts_see_no_unassigned_cases(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let expert = app.staff("expert").await;
    let case = app.new_case(&applicant.token).await;
    let id = &case["id"];

    problem(app.get_case(&expert.token, id).await, StatusCode::NOT_FOUND).await;
    problem(app.events(&expert.token, id).await, StatusCode::NOT_FOUND).await;
    problem(app.messages(&expert.token, id).await, StatusCode::NOT_FOUND).await;
    problem(
        app.post_message(&expert.token, id, &json!({"body": "hello"}), None)
            .await,
        StatusCode::NOT_FOUND,
    )
    .await;
    problem(
        app.claim(&expert.token, id, None).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    let page = json_body(app.list_cases(&expert.token, "").await, StatusCode::OK).await;
    assert_eq!(page["items"], json!([]));
    assert!(page["next_cursor"].is_null());
    assert_eq!(app.case(&applicant.token, id).await["version"], 1);
}

// ---------------------------------------------------------------- lifecycle

async fn claiming_moves_a_new_case_to_triage(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    let case = app.new_case(&applicant.token).await;
    let id = &case["id"];

    let response = app.claim(&supporter.token, id, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(etag(&response), "\"2\"");
    let claimed: Value = response.json().await.unwrap();
    assert_eq!(claimed["status"], "triage");
    assert_eq!(claimed["version"], 2);
    assert_eq!(claimed["claimed_by"], supporter.id);
    assert_eq!(claimed["number"], case["number"]);
    assert!(strings(&claimed["allowed_actions"]).contains(&"triage".to_owned()));
    assert_eq!(app.case(&applicant.token, id).await["status"], "triage");

    // Claiming twice is a conflict that says what may be done instead.
    let (refused, allowed) = conflict(app.claim(&supporter.token, id, None).await).await;
    assert_eq!(refused["case_status"], "triage");
    assert!(!allowed.contains(&"claim".to_owned()), "{allowed:?}");
    assert!(allowed.contains(&"triage".to_owned()), "{allowed:?}");
    let now = app.case(&supporter.token, id).await;
    assert_eq!(strings(&now["allowed_actions"]), allowed);
    assert_eq!(now["version"], 2);
}

async fn triage_routes_the_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    let routes = [
        ("direct", "in_consultation", Value::Null),
        ("expert", "matching", Value::Null),
        ("open_hours", "in_consultation", Value::Null),
        ("refer", "closed", json!("referred")),
    ];
    for (route, status, outcome) in routes {
        let case = app.new_case(&applicant.token).await;
        app.claimed(&supporter.token, &case["id"]).await;
        let mut body = triage_body(route);
        body["priority"] = json!("urgent");
        let triaged = json_body(
            app.triage(&supporter.token, &case["id"], &body, None).await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(triaged["status"], status, "{route}");
        assert_eq!(triaged["outcome"], outcome, "{route}");
        assert_eq!(triaged["route"], route, "{route}");
        assert_eq!(triaged["priority"], "urgent", "{route}");
        assert_eq!(triaged["version"], 3, "{route}");
        let refer_to = if route == "refer" {
            json!("PMDA 相談窓口")
        } else {
            Value::Null
        };
        assert_eq!(triaged["refer_to"], refer_to, "{route}");
        // The applicant sees where its case went.
        let seen = app.case(&applicant.token, &case["id"]).await;
        assert_eq!(seen["status"], status, "{route}");
        assert_eq!(seen["outcome"], outcome, "{route}");
    }
}

async fn triage_validation_refuses_bad_input_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    let unclaimed = app.new_case(&applicant.token).await;
    let case = app.new_case(&applicant.token).await;
    let id = &case["id"];
    app.claimed(&supporter.token, id).await;
    let before = snapshot(&app, &supporter.token, id).await;

    let mut without_refer_to = triage_body("refer");
    without_refer_to.as_object_mut().unwrap().remove("refer_to");
    let mut refer_to_elsewhere = triage_body("direct");
    refer_to_elsewhere["refer_to"] = json!("PMDA");
    let mut empty_refer_to = triage_body("refer");
    empty_refer_to["refer_to"] = json!("  ");
    let mut long_note = triage_body("direct");
    long_note["note"] = json!("注".repeat(5_001));
    let all_wrong = json!({
        "priority": "asap", "product_type": "pharma",
        "categories": ["regulatory", "regulatory"], "route": "elsewhere",
    });
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (without_refer_to, vec!["refer_to"]),
        (refer_to_elsewhere, vec!["refer_to"]),
        (empty_refer_to, vec!["refer_to"]),
        (long_note, vec!["note"]),
        (
            json!({}),
            vec!["categories", "priority", "product_type", "route"],
        ),
        (
            all_wrong,
            vec!["categories", "priority", "product_type", "route"],
        ),
        (
            json!({"priority": "low", "product_type": "drug", "categories": [], "route": "direct"}),
            vec!["categories"],
        ),
    ];
    for (body, expected) in cases {
        let refused = problem(
            app.triage(&supporter.token, id, &body, None).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        let mut fields = error_fields(&refused);
        fields.sort();
        assert_eq!(fields, expected, "{body}");
    }
    assert_eq!(snapshot(&app, &supporter.token, id).await, before);
    assert!(app.case(&supporter.token, id).await["priority"].is_null());

    // Triage needs a claimed case: the refusal points to `claim`.
    let (refused, allowed) = conflict(
        app.triage(
            &supporter.token,
            &unclaimed["id"],
            &triage_body("direct"),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(refused["case_status"], "submitted");
    assert!(allowed.contains(&"claim".to_owned()), "{allowed:?}");
    assert!(!allowed.contains(&"triage".to_owned()), "{allowed:?}");
}

async fn triage_keeps_the_applicants_choice_beside_the_confirmed_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    let case = app
        .new_case_with(
            &applicant.token,
            &intake_with(
                json!({"product_type": "drug", "categories": ["marketing", "regulatory"]}),
            ),
        )
        .await;
    let id = &case["id"];
    app.claimed(&supporter.token, id).await;
    let body = json!({
        "priority": "high", "product_type": "medical_device",
        "categories": ["reimbursement", "regulatory", "international"],
        "route": "direct", "note": "SaMD として扱う",
    });
    let triaged = json_body(
        app.triage(&supporter.token, id, &body, None).await,
        StatusCode::OK,
    )
    .await;
    for seen in [
        triaged,
        app.case(&supporter.token, id).await,
        app.case(&applicant.token, id).await,
    ] {
        assert_eq!(seen["product_type"], "drug");
        assert_eq!(seen["categories"], json!(["regulatory", "marketing"]));
        assert_eq!(seen["confirmed_product_type"], "medical_device");
        assert_eq!(
            seen["confirmed_categories"],
            json!(["regulatory", "international", "reimbursement"])
        );
        assert_eq!(seen["priority"], "high");
    }
}

async fn an_answered_information_request_resumes_where_the_case_was(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;

    // (how the case gets there, where it is before the question)
    for route in [None, Some("expert"), Some("direct")] {
        let case = app.new_case(&applicant.token).await;
        let id = &case["id"];
        let before = match route {
            None => app.claimed(&supporter.token, id).await,
            Some(route) => app.triaged(&supporter.token, id, route).await,
        };
        let was = before["status"].as_str().unwrap().to_owned();

        let asked = app
            .moved(
                &supporter.token,
                id,
                json!({"status": "awaiting_info", "reason": "売上計画を教えてください"}),
            )
            .await;
        assert_eq!(asked["status"], "awaiting_info", "from {was}");

        // A desk message is no answer.
        json_body(
            app.post_message(
                &supporter.token,
                id,
                &json!({"body": "催促", "visibility": "applicant"}),
                None,
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(
            app.case(&supporter.token, id).await["status"],
            "awaiting_info"
        );

        // The applicant's message is, and the case goes back where it was.
        json_body(
            app.post_message(
                &applicant.token,
                id,
                &json!({"body": "計画を添付します"}),
                None,
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
        let resumed = app.case(&applicant.token, id).await;
        assert_eq!(resumed["status"], was.as_str(), "resumed to {was}");

        let events = app.event_items(&applicant.token, id).await;
        let asked_event = events
            .iter()
            .find(|e| e["kind"] == "info_requested")
            .expect("an info_requested event");
        assert_eq!(asked_event["from"], was.as_str());
        assert_eq!(asked_event["to"], "awaiting_info");
        assert_eq!(asked_event["detail"]["reason"], "売上計画を教えてください");
        let replied = events.last().unwrap();
        assert_eq!(replied["kind"], "applicant_replied");
        assert_eq!(replied["from"], "awaiting_info");
        assert_eq!(replied["to"], was.as_str());
        assert_eq!(replied["actor"]["id"], applicant.id);
    }
}

async fn the_desk_closes_with_an_outcome(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    let case = case_in_consultation(&app, &applicant, &supporter).await;
    let id = &case["id"];
    let before = snapshot(&app, &supporter.token, id).await;

    for (body, field) in [
        (json!({"status": "closed"}), "outcome"),
        (json!({"status": "closed", "outcome": "done"}), "outcome"),
        (
            json!({"status": "finished", "outcome": "resolved"}),
            "status",
        ),
        (json!({"outcome": "resolved"}), "status"),
    ] {
        let refused = problem(
            app.set_status(&supporter.token, id, &body, None).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(error_fields(&refused), vec![field], "{body}");
    }
    assert_eq!(snapshot(&app, &supporter.token, id).await, before);

    let closed = app
        .moved(
            &supporter.token,
            id,
            json!({"status": "closed", "outcome": "resolved", "reason": "助言で解決"}),
        )
        .await;
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["outcome"], "resolved");
    let seen = app.case(&applicant.token, id).await;
    assert_eq!(seen["status"], "closed");
    assert_eq!(seen["outcome"], "resolved");
    let last = app.event_items(&applicant.token, id).await.pop().unwrap();
    assert_eq!(last["kind"], "closed");
    assert_eq!(last["from"], "in_consultation");
    assert_eq!(last["to"], "closed");
    assert_eq!(last["detail"]["outcome"], "resolved");
    assert_eq!(last["actor"]["id"], supporter.id);

    // A closed case can only be reopened.
    let (_, allowed) = conflict(
        app.set_status(
            &supporter.token,
            id,
            &json!({"status": "closed", "outcome": "out_of_scope"}),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(allowed, vec!["reopen"]);
    assert_eq!(app.case(&supporter.token, id).await["outcome"], "resolved");
}

async fn applicants_withdraw_their_own_cases(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    let fresh = app.new_case(&applicant.token).await;
    let busy = case_in_consultation(&app, &applicant, &supporter).await;

    let withdrawn = app
        .moved(&applicant.token, &fresh["id"], json!({"status": "closed"}))
        .await;
    assert_eq!(withdrawn["status"], "closed");
    assert_eq!(withdrawn["outcome"], "withdrawn");
    let withdrawn = app
        .moved(
            &applicant.token,
            &busy["id"],
            json!({"status": "closed", "outcome": "withdrawn", "reason": "自社で対応します"}),
        )
        .await;
    assert_eq!(withdrawn["status"], "closed");
    assert_eq!(withdrawn["outcome"], "withdrawn");
    let last = app
        .event_items(&supporter.token, &busy["id"])
        .await
        .pop()
        .unwrap();
    assert_eq!(last["kind"], "withdrawn");
    assert_eq!(last["from"], "in_consultation");
    assert_eq!(last["actor"]["id"], applicant.id);

    // Once closed, there is nothing left to withdraw.
    let (refused, allowed) = conflict(
        app.set_status(
            &applicant.token,
            &fresh["id"],
            &json!({"status": "closed"}),
            None,
        )
        .await,
    )
    .await;
    assert_eq!(refused["case_status"], "closed");
    assert!(allowed.is_empty(), "{allowed:?}");

    // An applicant may not close its case as anything but withdrawn.
    let other = app.new_case(&applicant.token).await;
    let response = app
        .set_status(
            &applicant.token,
            &other["id"],
            &json!({"status": "closed", "outcome": "resolved"}),
            None,
        )
        .await;
    let status = response.status();
    assert!(status.is_client_error(), "{status}");
    problem(response, status).await;
    assert_eq!(
        app.case(&applicant.token, &other["id"]).await["status"],
        "submitted"
    );
}

async fn a_supporter_reopens_a_closed_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    let case = case_in_consultation(&app, &applicant, &supporter).await;
    let id = &case["id"];
    app.moved(
        &supporter.token,
        id,
        json!({"status": "closed", "outcome": "resolved"}),
    )
    .await;

    // The applicant may not reopen.
    let reopen = json!({"status": "in_consultation", "reason": "追加の相談"});
    problem(
        app.set_status(&applicant.token, id, &reopen, None).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(app.case(&applicant.token, id).await["status"], "closed");

    let reopened = app.moved(&supporter.token, id, reopen.clone()).await;
    assert_eq!(reopened["status"], "in_consultation");
    assert!(reopened["outcome"].is_null(), "{}", reopened["outcome"]);
    let seen = app.case(&applicant.token, id).await;
    assert_eq!(seen["status"], "in_consultation");
    assert!(seen["outcome"].is_null());
    let last = app.event_items(&supporter.token, id).await.pop().unwrap();
    assert_eq!(last["kind"], "reopened");
    assert_eq!(last["from"], "closed");
    assert_eq!(last["to"], "in_consultation");
    assert_eq!(last["detail"]["reason"], "追加の相談");

    // Reopening a case that is not closed is a conflict.
    let (refused, allowed) =
        conflict(app.set_status(&supporter.token, id, &reopen, None).await).await;
    assert_eq!(refused["case_status"], "in_consultation");
    assert!(!allowed.contains(&"reopen".to_owned()), "{allowed:?}");
    assert!(allowed.contains(&"close".to_owned()), "{allowed:?}");
}

async fn applicants_cannot_claim_or_triage(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    let case = app.new_case(&applicant.token).await;
    let id = &case["id"];
    let before = snapshot(&app, &applicant.token, id).await;

    for response in [
        app.claim(&applicant.token, id, None).await,
        app.triage(&applicant.token, id, &triage_body("direct"), None)
            .await,
        // Asking for `triage` by status is a claim too.
        app.set_status(&applicant.token, id, &json!({"status": "triage"}), None)
            .await,
    ] {
        let refused = problem(response, StatusCode::FORBIDDEN).await;
        assert_eq!(refused["type"], "/problems/forbidden");
    }
    assert_eq!(snapshot(&app, &applicant.token, id).await, before);

    // Nor triage a claimed case.
    app.claimed(&supporter.token, id).await;
    problem(
        app.triage(&applicant.token, id, &triage_body("direct"), None)
            .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(app.case(&applicant.token, id).await["status"], "triage");
}

async fn impossible_transitions_are_conflicts_listing_the_allowed_actions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    let case = app.new_case(&applicant.token).await;
    let id = &case["id"];
    let allowed_now = strings(&app.case(&supporter.token, id).await["allowed_actions"]);
    assert_eq!(allowed_now, vec!["claim", "close", "withdraw"]);

    for target in ["in_consultation", "matching", "awaiting_info", "submitted"] {
        let (refused, allowed) = conflict(
            app.set_status(&supporter.token, id, &json!({"status": target}), None)
                .await,
        )
        .await;
        assert_eq!(refused["case_status"], "submitted", "{target}");
        assert_eq!(allowed, allowed_now, "{target}");
    }
    assert_eq!(app.case(&supporter.token, id).await["version"], 1);

    // In matching, the lifecycle offers other ways out.
    let matching = app.new_case(&applicant.token).await;
    app.triaged(&supporter.token, &matching["id"], "expert")
        .await;
    let (_, allowed) = conflict(
        app.set_status(
            &supporter.token,
            &matching["id"],
            &json!({"status": "triage"}),
            None,
        )
        .await,
    )
    .await;
    for action in ["request_info", "start_consultation", "close"] {
        assert!(
            allowed.contains(&action.to_owned()),
            "{action}: {allowed:?}"
        );
    }
    assert!(!allowed.contains(&"claim".to_owned()), "{allowed:?}");
    // ... such as handling it directly after all.
    let direct = app
        .moved(
            &supporter.token,
            &matching["id"],
            json!({"status": "in_consultation"}),
        )
        .await;
    assert_eq!(direct["status"], "in_consultation");
}

// ---------------------------------------------------------------- concurrency

async fn simultaneous_claims_let_exactly_one_supporter_win(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let first = app.staff("supporter").await;
    let second = app.staff("supporter").await;
    for _ in 0..3 {
        let case = app.new_case(&applicant.token).await;
        let id = &case["id"];
        let (a, b) = tokio::join!(
            app.claim(&first.token, id, None),
            app.claim(&second.token, id, None)
        );
        let mut statuses = [a.status().as_u16(), b.status().as_u16()];
        statuses.sort();
        assert_eq!(statuses, [200, 409]);
        let winner = if a.status() == StatusCode::OK {
            &first
        } else {
            &second
        };
        let loser = if a.status() == StatusCode::OK { b } else { a };
        problem(loser, StatusCode::CONFLICT).await;

        let now = app.case(&first.token, id).await;
        assert_eq!(now["status"], "triage");
        assert_eq!(now["version"], 2);
        assert_eq!(now["claimed_by"], winner.id);
        let events = app.event_items(&first.token, id).await;
        assert_eq!(kinds(&events), vec!["submitted", "claimed"]);
        assert_eq!(events[1]["actor"]["id"], winner.id);
    }
}

async fn a_stale_if_match_is_refused_and_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    let case = app.new_case(&applicant.token).await;
    let id = &case["id"];
    let token = supporter.token.as_str();

    // The current version is accepted.
    let claimed = json_body(app.claim(token, id, Some("\"1\"")).await, StatusCode::OK).await;
    assert_eq!(claimed["version"], 2);
    let before = snapshot(&app, token, id).await;

    // Someone still holding version 1 is refused, whatever the write.
    let stale = Some("\"1\"");
    let writes = vec![
        ("claim", app.claim(token, id, stale).await),
        (
            "triage",
            app.triage(token, id, &triage_body("direct"), stale).await,
        ),
        (
            "status",
            app.set_status(
                token,
                id,
                &json!({"status": "closed", "outcome": "resolved"}),
                stale,
            )
            .await,
        ),
        (
            "message",
            app.post_message(
                token,
                id,
                &json!({"body": "stale", "visibility": "internal"}),
                stale,
            )
            .await,
        ),
        (
            "applicant's withdrawal",
            app.set_status(&applicant.token, id, &json!({"status": "closed"}), stale)
                .await,
        ),
    ];
    for (what, response) in writes {
        let refused = problem(response, StatusCode::PRECONDITION_FAILED).await;
        assert_eq!(refused["type"], "/problems/stale-version", "{what}");
    }
    let after = app.case(token, id).await;
    assert_eq!(snapshot(&app, token, id).await, before);
    assert!(after["priority"].is_null());
    assert_eq!(after["updated_at"], claimed["updated_at"]);

    // With the current version, bare or weak, writes go through.
    let triaged = json_body(
        app.triage(token, id, &triage_body("direct"), Some("\"2\""))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(triaged["version"], 3);
    json_body(
        app.post_message(
            token,
            id,
            &json!({"body": "current", "visibility": "internal"}),
            Some("W/\"3\""),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let response = app
        .set_status(token, id, &json!({"status": "awaiting_info"}), Some("*"))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let tag = etag(&response);
    let asked: Value = response.json().await.unwrap();
    assert_eq!(tag, format!("\"{}\"", asked["version"]));
    assert!(asked["version"].as_i64().unwrap() > 3);
}

async fn a_malformed_if_match_is_a_bad_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    let case = app.new_case(&applicant.token).await;
    let id = &case["id"];
    for value in ["abc", "\"v1\"", "1, 2", "\"\""] {
        let refused = problem(
            app.claim(&supporter.token, id, Some(value)).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert_eq!(refused["type"], "/problems/malformed-request", "{value}");
    }
    let refused = problem(
        app.post_message(&applicant.token, id, &json!({"body": "x"}), Some("latest"))
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert_eq!(refused["status"], 400);
    let now = app.case(&supporter.token, id).await;
    assert_eq!(now["status"], "submitted");
    assert_eq!(now["version"], 1);
    assert!(app.message_items(&supporter.token, id).await.is_empty());
}

// ---------------------------------------------------------------- timeline

async fn the_timeline_lists_every_change_oldest_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    let case = app.new_case(&applicant.token).await;
    let id = &case["id"];
    let note = "内部メモ: 競合他社の顧問先";
    let internal = "内部のみ: 価格設定に懸念";

    app.claimed(&supporter.token, id).await;
    let mut body = triage_body("direct");
    body["note"] = json!(note);
    json_body(
        app.triage(&supporter.token, id, &body, None).await,
        StatusCode::OK,
    )
    .await;
    for (text, visibility) in [
        (internal, "internal"),
        ("面談日程をご提案します", "applicant"),
    ] {
        json_body(
            app.post_message(
                &supporter.token,
                id,
                &json!({"body": text, "visibility": visibility}),
                None,
            )
            .await,
            StatusCode::CREATED,
        )
        .await;
    }
    app.moved(&supporter.token, id, json!({"status": "awaiting_info"}))
        .await;
    json_body(
        app.post_message(&applicant.token, id, &json!({"body": "回答します"}), None)
            .await,
        StatusCode::CREATED,
    )
    .await;

    let desk = app.event_items(&supporter.token, id).await;
    assert_eq!(
        kinds(&desk),
        vec![
            "submitted",
            "claimed",
            "triaged",
            "note",
            "message",
            "message",
            "info_requested",
            "message",
            "applicant_replied",
        ]
    );
    let event_ids: Vec<i64> = desk.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(
        event_ids.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {event_ids:?}"
    );
    for event in &desk {
        time(&event["at"]);
        assert!(event["detail"].is_object(), "{event}");
    }
    let (submitted, claimed, triaged, note_event) = (&desk[0], &desk[1], &desk[2], &desk[3]);
    assert_eq!(submitted["actor"]["id"], applicant.id);
    assert_eq!(submitted["actor"]["role"], "applicant");
    assert_eq!(submitted["to"], "submitted");
    assert_eq!(submitted["detail"]["number"], case["number"]);
    assert_eq!(claimed["actor"]["id"], supporter.id);
    assert_eq!(claimed["actor"]["role"], "supporter");
    assert_eq!(claimed["actor"]["name"], "supporter");
    assert_eq!(claimed["from"], "submitted");
    assert_eq!(claimed["to"], "triage");
    assert_eq!(triaged["from"], "triage");
    assert_eq!(triaged["to"], "in_consultation");
    assert_eq!(triaged["detail"]["route"], "direct");
    assert_eq!(triaged["detail"]["priority"], "normal");
    assert_eq!(note_event["detail"]["note"], note);
    assert!(desk[4]["from"].is_null() && desk[4]["to"].is_null());
    assert_eq!(desk[4]["detail"]["visibility"], "internal");

    // The applicant's timeline leaves out the desk side: the triage note and
    // the internal message.
    let public = app.event_items(&applicant.token, id).await;
    assert_eq!(
        kinds(&public),
        vec![
            "submitted",
            "claimed",
            "triaged",
            "message",
            "info_requested",
            "message",
            "applicant_replied",
        ]
    );
    let shown = serde_json::to_string(&public).unwrap();
    assert!(!shown.contains(note), "the note leaked: {shown}");
    assert!(!shown.contains("\"internal\""), "{shown}");
    let messages = serde_json::to_string(&app.message_items(&applicant.token, id).await).unwrap();
    assert!(!messages.contains(internal), "{messages}");
}

// ---------------------------------------------------------------- messages

async fn applicants_write_and_read_only_public_messages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    let admin = app.staff("admin").await;
    let case = app.new_case(&applicant.token).await;
    let id = &case["id"];

    let refused = problem(
        app.post_message(
            &applicant.token,
            id,
            &json!({"body": "内緒で", "visibility": "internal"}),
            None,
        )
        .await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(refused["type"], "/problems/forbidden");
    assert!(app.message_items(&supporter.token, id).await.is_empty());

    let post = |token: &str, body: Value| {
        let token = token.to_owned();
        let app = &app;
        async move {
            json_body(
                app.post_message(&token, id, &body, None).await,
                StatusCode::CREATED,
            )
            .await
        }
    };
    let text = "質問です <b>\"引用\"</b> & 🙏\n二行目";
    let question = post(&applicant.token, json!({"body": text})).await;
    assert_eq!(question["visibility"], "applicant");
    assert_eq!(question["body"], text);
    assert_eq!(question["author"]["id"], applicant.id);
    assert_eq!(question["author"]["role"], "applicant");
    time(&question["at"]);
    let explicit = post(
        &applicant.token,
        json!({"body": "補足", "visibility": "applicant"}),
    )
    .await;
    assert_eq!(explicit["visibility"], "applicant");
    // Staff say who reads each message (a missing visibility: see
    // notifications.rs); internal ones stay on the desk side.
    let internal = post(
        &supporter.token,
        json!({"body": "社内検討メモ", "visibility": "internal"}),
    )
    .await;
    assert_eq!(internal["visibility"], "internal");
    assert_eq!(internal["author"]["role"], "supporter");
    let answer = post(
        &supporter.token,
        json!({"body": "回答します", "visibility": "applicant"}),
    )
    .await;
    assert_eq!(answer["visibility"], "applicant");

    let everything = vec![
        question["id"].clone(),
        explicit["id"].clone(),
        internal["id"].clone(),
        answer["id"].clone(),
    ];
    for staff in [&supporter, &admin] {
        let seen = app.message_items(&staff.token, id).await;
        assert_eq!(ids(&json!(seen)), everything);
    }
    let public = app.message_items(&applicant.token, id).await;
    assert_eq!(
        ids(&json!(public)),
        vec![
            question["id"].clone(),
            explicit["id"].clone(),
            answer["id"].clone(),
        ]
    );
    assert_eq!(public[0]["body"], text);
    assert!(public.iter().all(|m| m["visibility"] == "applicant"));
}

async fn message_bodies_are_validated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    let case = app.new_case(&applicant.token).await;
    let id = &case["id"];

    let bad = [
        (json!({"visibility": "internal"}), "body"),
        (json!({"body": "", "visibility": "internal"}), "body"),
        (json!({"body": " \n\t ", "visibility": "applicant"}), "body"),
        (
            json!({"body": "字".repeat(20_001), "visibility": "internal"}),
            "body",
        ),
        (
            json!({"body": "ok", "visibility": "everyone"}),
            "visibility",
        ),
    ];
    for (body, field) in bad {
        let shown: String = body.to_string().chars().take(40).collect();
        let refused = problem(
            app.post_message(&supporter.token, id, &body, None).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(error_fields(&refused), vec![field], "{shown}");
    }
    assert!(app.message_items(&supporter.token, id).await.is_empty());
    assert_eq!(app.case(&supporter.token, id).await["version"], 1);

    let longest = "字".repeat(20_000);
    let message = json_body(
        app.post_message(&applicant.token, id, &json!({"body": longest}), None)
            .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(message["body"], longest.as_str());
}

// ---------------------------------------------------------------- listing

async fn listing_filters_by_status_effective_product_type_and_category(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    let file = |fields: Value| {
        let app = &app;
        let token = applicant.token.clone();
        async move { app.new_case_with(&token, &intake_with(fields)).await["id"].clone() }
    };
    let a = file(json!({"product_type": "drug", "categories": ["regulatory"]})).await;
    let b = file(json!({"product_type": "drug", "categories": ["marketing"]})).await;
    let c =
        file(json!({"product_type": "regenerative", "categories": ["ip_strategy", "regulatory"]}))
            .await;
    // b is triaged as a medical device about reimbursement; c is only claimed.
    app.claimed(&supporter.token, &b).await;
    let confirm = json!({
        "priority": "normal", "product_type": "medical_device",
        "categories": ["reimbursement"], "route": "direct",
    });
    json_body(
        app.triage(&supporter.token, &b, &confirm, None).await,
        StatusCode::OK,
    )
    .await;
    app.claimed(&supporter.token, &c).await;

    let expectations: Vec<(&str, Vec<&Value>)> = vec![
        ("", vec![&c, &b, &a]),
        ("status=submitted", vec![&a]),
        ("status=triage", vec![&c]),
        ("status=in_consultation", vec![&b]),
        ("status=closed", vec![]),
        // The effective product type and categories: confirmed once triaged.
        ("product_type=drug", vec![&a]),
        ("product_type=medical_device", vec![&b]),
        ("product_type=regenerative", vec![&c]),
        ("category=marketing", vec![]),
        ("category=reimbursement", vec![&b]),
        ("category=regulatory", vec![&c, &a]),
        ("category=ip_strategy", vec![&c]),
        ("status=submitted&category=regulatory", vec![&a]),
        ("product_type=drug&category=marketing", vec![]),
    ];
    for user in [&supporter, &applicant] {
        for (query, expected) in &expectations {
            let expected: Vec<Value> = expected.iter().map(|v| (*v).clone()).collect();
            assert_eq!(
                app.listed_ids(&user.token, query).await,
                expected,
                "{query} as {}",
                user.email
            );
        }
    }

    for (query, field) in [
        ("status=open", "status"),
        ("product_type=pharma", "product_type"),
        ("category=astrology", "category"),
    ] {
        let refused = problem(
            app.list_cases(&supporter.token, query).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(error_fields(&refused), vec![field], "{query}");
    }
}

async fn text_search_is_for_desk_staff(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    let file = |title: &str, description: &str| {
        let body = intake_with(json!({"title": title, "description": description}));
        let app = &app;
        let token = applicant.token.clone();
        async move { app.new_case_with(&token, &body).await["id"].clone() }
    };
    let strategy = file("Reimbursement STRATEGY 相談", "保険収載の戦略").await;
    let dilution = file("資金調達", "シリーズAで100%の希薄化を懸念").await;
    let plain = file("海外展開", "FDA 510(k) の相談").await;

    for (q, expected) in [
        ("strategy", vec![&strategy]),
        ("Reimbursement strategy", vec![&strategy]),
        ("希薄化", vec![&dilution]),
        ("相談", vec![&plain, &strategy]),
        // LIKE wildcards are plain characters.
        ("%", vec![&dilution]),
        ("_", vec![]),
        ("510(k)", vec![&plain]),
        ("nothing like this", vec![]),
    ] {
        let expected: Vec<Value> = expected.into_iter().cloned().collect();
        let query = format!("q={}", encode(q));
        assert_eq!(
            app.listed_ids(&supporter.token, &query).await,
            expected,
            "q={q}"
        );
    }
    assert_eq!(
        app.listed_ids(
            &supporter.token,
            &format!("q={}&status=submitted", encode("希薄化"))
        )
        .await,
        vec![dilution.clone()]
    );

    let refused = problem(
        app.list_cases(&applicant.token, "q=strategy").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error_fields(&refused), vec!["q"]);
}

async fn list_limit_must_be_between_1_and_100(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    let older = app.new_case(&applicant.token).await["id"].clone();
    let newer = app.new_case(&applicant.token).await["id"].clone();

    for limit in ["0", "101", "-1"] {
        let refused = problem(
            app.list_cases(&supporter.token, &format!("limit={limit}"))
                .await,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
        assert_eq!(error_fields(&refused), vec!["limit"], "limit={limit}");
    }
    problem(
        app.list_cases(&supporter.token, "limit=many").await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;

    let one = json_body(
        app.list_cases(&supporter.token, "limit=1").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(ids(&one["items"]), vec![newer.clone()]);
    assert!(one["next_cursor"].is_string());
    let hundred = json_body(
        app.list_cases(&supporter.token, "limit=100").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(ids(&hundred["items"]), vec![newer, older]);
    assert!(hundred["next_cursor"].is_null());
}

/// The desk-wide list written once is sent again only to the same caller
/// and only until a case changes: every caller's list shows each case
/// exactly as that caller reads it, actions included, before and after a
/// claim.
async fn each_caller_lists_the_desk_as_they_read_each_case_and_sees_changes_at_once(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Listed KK").await;
    let supporter = app.staff("supporter").await;
    let other_supporter = app.staff("supporter").await;
    let admin = app.staff("admin").await;
    let first = app.new_case(&applicant.token).await;
    let second = app.new_case(&applicant.token).await;
    let callers = [&supporter, &other_supporter, &admin, &applicant];

    let listed = [&second["id"], &first["id"]];
    lists_as_each_reads(&app, &callers, &listed, &Value::Null).await;
    app.claimed(&supporter.token, &first["id"]).await;
    lists_as_each_reads(&app, &callers, &listed, &supporter.id).await;
    let after = app.case(&admin.token, &first["id"]).await;
    assert_eq!(after["status"], "triage");
}

/// An organisation's list written once is sent again only to the same
/// member and only until a case changes: two members of one organisation
/// and a member of another each list exactly their organisation's cases as
/// they read each one, before and after a filing and a claim.
async fn each_member_lists_their_organisation_as_they_read_each_case_and_sees_changes_at_once(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let owner = app.applicant("Listed KK").await;
    let teammate = teammate_of(&app, &owner, "teammate@listed.example").await;
    let outsider = app.applicant("Other KK").await;
    let supporter = app.staff("supporter").await;
    let first = app.new_case(&owner.token).await["id"].clone();
    let theirs = app.new_case(&outsider.token).await["id"].clone();

    let members = [&owner, &teammate];
    lists_as_each_reads(&app, &members, &[&first], &Value::Null).await;
    lists_as_each_reads(&app, &[&outsider], &[&theirs], &Value::Null).await;

    // The teammate files: both members' lists show it at the next read,
    // the outsider's is unchanged.
    let second = app.new_case(&teammate.token).await["id"].clone();
    lists_as_each_reads(&app, &members, &[&second, &first], &Value::Null).await;
    lists_as_each_reads(&app, &[&outsider], &[&theirs], &Value::Null).await;

    // The desk claims the first case: its new status shows at once.
    app.claimed(&supporter.token, &first).await;
    lists_as_each_reads(&app, &members, &[&second, &first], &Value::Null).await;
    let listed = items(json_body(app.list_cases(&owner.token, "").await, StatusCode::OK).await);
    assert_eq!(listed[1]["status"], "triage");
}

/// Each caller's list (the desk's for staff, their organisation's for an
/// applicant), twice (the second answer may be the one written before),
/// holds `listed` exactly as the caller reads each case; staff see the
/// oldest claimed by `claimed_by`.
async fn lists_as_each_reads(
    app: &TestApp,
    callers: &[&User],
    listed: &[&Value],
    claimed_by: &Value,
) {
    let expected: Vec<Value> = listed.iter().map(|id| (*id).clone()).collect();
    for caller in callers {
        for _ in 0..2 {
            let items =
                items(json_body(app.list_cases(&caller.token, "").await, StatusCode::OK).await);
            assert_eq!(ids(&json!(items)), expected, "{}", caller.email);
            for item in &items {
                assert_eq!(item, &app.case(&caller.token, &item["id"]).await);
            }
            if caller.organization_id.is_null() {
                assert_eq!(&items[items.len() - 1]["claimed_by"], claimed_by);
            }
        }
    }
}

async fn pages_follow_each_other_newest_first_without_gaps_or_duplicates(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    let mut filed = Vec::new();
    for _ in 0..7 {
        filed.push(app.new_case(&applicant.token).await["id"].clone());
    }
    let newest_first: Vec<Value> = filed.iter().rev().cloned().collect();

    for user in [&supporter, &applicant] {
        let pages = walk_pages(&app, &user.token, "limit=3").await;
        let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![3, 3, 1], "{}", user.email);
        let all: Vec<Value> = pages.into_iter().flatten().collect();
        assert_eq!(all, newest_first, "{}", user.email);
    }

    // A case filed between two pages does not shift the pages that follow.
    let first = json_body(
        app.list_cases(&supporter.token, "limit=3").await,
        StatusCode::OK,
    )
    .await;
    app.new_case(&applicant.token).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = json_body(
        app.list_cases(
            &supporter.token,
            &format!("limit=3&cursor={}", encode(cursor)),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(ids(&second["items"]), newest_first[3..6].to_vec());

    // Filters and cursor combine.
    let page = walk_pages(&app, &supporter.token, "limit=2&status=submitted").await;
    assert_eq!(page.into_iter().flatten().count(), 8);

    for cursor in ["garbage", "12.x", "1.2.3", "-"] {
        let response = app
            .list_cases(&supporter.token, &format!("cursor={}", encode(cursor)))
            .await;
        let refused = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(error_fields(&refused), vec!["cursor"], "cursor={cursor}");
    }
}

// ---------------------------------------------------------------- desk views

async fn the_triage_queue_lists_untriaged_cases_oldest_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Queue KK").await;
    let supporter = app.staff("supporter").await;
    let a = app.new_case(&applicant.token).await;
    let b = app.new_case(&applicant.token).await;
    let c = app.new_case(&applicant.token).await;

    let queue = items(json_body(app.triage_queue(&supporter.token).await, StatusCode::OK).await);
    assert_eq!(
        ids(&json!(queue)),
        vec![a["id"].clone(), b["id"].clone(), c["id"].clone()]
    );
    for (item, case) in queue.iter().zip([&a, &b, &c]) {
        assert_eq!(item["number"], case["number"]);
        assert_eq!(item["status"], "submitted");
        let age = item["age_seconds"]
            .as_i64()
            .unwrap_or_else(|| panic!("age_seconds: {item}"));
        assert!(age >= 0, "{item}");
    }

    // Claimed but not yet triaged: still in the queue. Triaged or withdrawn: gone.
    app.claimed(&supporter.token, &b["id"]).await;
    // Both statuses in one order, cut at the limit (b is claimed, a and c not).
    for (limit, expected) in [(1, vec![&a]), (2, vec![&a, &b]), (3, vec![&a, &b, &c])] {
        let response = app
            .get(
                &format!("/api/v1/triage-queue?limit={limit}"),
                Some(&supporter.token),
            )
            .await;
        let queue = items(json_body(response, StatusCode::OK).await);
        let expected: Vec<Value> = expected.iter().map(|case| case["id"].clone()).collect();
        assert_eq!(ids(&json!(queue)), expected, "limit={limit}");
        // The claim shows at once: not the answer written before it.
        if let Some(claimed) = queue.get(1) {
            assert_eq!(claimed["claimed_by"], supporter.id, "limit={limit}");
            assert_eq!(claimed["status"], "triage", "limit={limit}");
        }
        assert_eq!(queue[0]["claimed_by"], Value::Null, "limit={limit}");
    }
    // The same queue asked for again is the same, claim included.
    let again = items(json_body(app.triage_queue(&supporter.token).await, StatusCode::OK).await);
    assert_eq!(again[1]["claimed_by"], supporter.id);
    app.triaged(&supporter.token, &a["id"], "direct").await;
    app.moved(&applicant.token, &c["id"], json!({"status": "closed"}))
        .await;
    let queue = items(json_body(app.triage_queue(&supporter.token).await, StatusCode::OK).await);
    assert_eq!(ids(&json!(queue)), vec![b["id"].clone()]);
    assert_eq!(queue[0]["status"], "triage");

    let admin = app.admin_token().await;
    assert_eq!(
        app.triage_queue(&admin).await.status(),
        StatusCode::OK,
        "admins may do everything a supporter may"
    );
    let applicant_refused = problem(
        app.triage_queue(&applicant.token).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(!applicant_refused.to_string().contains("Queue KK"));
    for role in ["expert", "manager"] {
        let user = app.staff(role).await;
        problem(app.triage_queue(&user.token).await, StatusCode::FORBIDDEN).await;
    }
}

async fn a_repeated_listing_is_logged_once_a_minute_and_every_case_read_each_time(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    let other = app.staff("supporter").await;
    let admin = app.staff("admin").await;
    let case = app.new_case(&applicant.token).await;

    for _ in 0..3 {
        json_body(app.triage_queue(&supporter.token).await, StatusCode::OK).await;
        json_body(app.list_cases(&supporter.token, "").await, StatusCode::OK).await;
        app.case(&supporter.token, &case["id"]).await;
    }
    json_body(app.triage_queue(&other.token).await, StatusCode::OK).await;

    let log = |user: &User| {
        let query = format!("case_id={}&user_id={}", raw(&case["id"]), raw(&user.id));
        let app = &app;
        let token = admin.token.clone();
        async move { items(json_body(app.access_log(&token, &query).await, StatusCode::OK).await) }
    };
    let entries = log(&supporter).await;
    let count = |what: &str| entries.iter().filter(|e| e["what"] == what).count();
    assert_eq!(count("triage_queue"), 1, "{entries:?}");
    assert_eq!(count("list"), 1, "{entries:?}");
    assert_eq!(
        count("case"),
        3,
        "every read of the case itself: {entries:?}"
    );
    let others = log(&other).await;
    assert_eq!(
        others
            .iter()
            .filter(|e| e["what"] == "triage_queue")
            .count(),
        1,
        "another person's listing is logged: {others:?}"
    );
}

async fn desk_reads_are_recorded_in_the_access_log(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let applicant = app.applicant("Org").await;
    let supporter = app.staff("supporter").await;
    let admin = app.staff("admin").await;
    let first = app.new_case(&applicant.token).await;
    let second = app.new_case(&applicant.token).await;

    // The applicant reads its own case: not logged.
    app.case(&applicant.token, &first["id"]).await;
    app.event_items(&applicant.token, &first["id"]).await;
    app.message_items(&applicant.token, &first["id"]).await;
    // The supporter reads one case: logged.
    app.case(&supporter.token, &first["id"]).await;

    let log = |query: String| {
        let app = &app;
        let token = admin.token.clone();
        async move { items(json_body(app.access_log(&token, &query).await, StatusCode::OK).await) }
    };
    let by_case = log(format!("case_id={}", raw(&first["id"]))).await;
    assert!(!by_case.is_empty());
    assert!(
        by_case.iter().all(|e| e["case_id"] == first["id"]),
        "{by_case:?}"
    );
    let read: Vec<&Value> = by_case
        .iter()
        .filter(|e| e["user_id"] == supporter.id)
        .collect();
    assert_eq!(read.len(), 1, "{by_case:?}");
    let entry = read[0];
    assert_eq!(entry["what"], "case");
    assert_eq!(entry["case_number"], first["number"]);
    assert_eq!(entry["user_email"], supporter.email.as_str());
    assert_eq!(entry["user_role"], "supporter");
    assert!(time(&entry["at"]) >= time(&first["received_at"]), "{entry}");
    assert!(
        by_case.iter().all(|e| e["user_id"] != applicant.id),
        "applicant reads are not logged: {by_case:?}"
    );
    assert!(
        log(format!("user_id={}", raw(&applicant.id)))
            .await
            .is_empty(),
        "applicant reads are not logged"
    );

    // Filters: by user, and by user and case together.
    app.case(&supporter.token, &second["id"]).await;
    let by_supporter = log(format!("user_id={}", raw(&supporter.id))).await;
    assert!(by_supporter.iter().all(|e| e["user_id"] == supporter.id));
    let cases: HashSet<String> = by_supporter
        .iter()
        .map(|e| e["case_id"].to_string())
        .collect();
    assert_eq!(
        cases,
        HashSet::from([first["id"].to_string(), second["id"].to_string()])
    );
    let both = log(format!(
        "case_id={}&user_id={}",
        raw(&second["id"]),
        raw(&supporter.id)
    ))
    .await;
    assert_eq!(both.len(), 1, "{both:?}");
    assert_eq!(both[0]["case_id"], second["id"]);
    assert_eq!(both[0]["what"], "case");
    assert!(
        log(format!("case_id={}", raw(&missing_id())))
            .await
            .is_empty()
    );

    // Only admins read the log.
    for user in [&supporter, &applicant] {
        problem(app.access_log(&user.token, "").await, StatusCode::FORBIDDEN).await;
    }
    problem(
        app.get("/api/v1/admin/access-log", None).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}
