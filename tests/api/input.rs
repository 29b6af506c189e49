//! Input that issue 16 found misreported or wrongly accepted: request-body
//! errors that name the field and say what is wrong (type, size, encoding),
//! and names that cannot show what is stored (nothing visible, or
//! bidirectional controls that reorder the display) — refused in every name
//! field, with nothing stored; emoji and Japanese kept as typed.

use reqwest::{Response, StatusCode};
use serde_json::json;

use crate::expert_helpers::expert_profile;
use crate::helpers::{
    Backend, PASSWORD, TestApp, error_fields, intake, json_body, problem, random_suffix,
};

on_both_backends!(
    a_field_of_the_wrong_type_is_named_by_its_path,
    an_oversized_body_is_told_the_limit,
    a_body_that_is_not_utf8_is_told_so,
    names_without_a_visible_character_are_refused_everywhere,
    names_with_bidirectional_controls_are_refused_everywhere,
    emoji_and_japanese_names_are_kept_as_typed,
);

/// "医療機器" in Shift_JIS: not UTF-8.
const SHIFT_JIS: &[u8] = b"\x88\xe3\x97\xc3\x8b@\x8a\xed";
const ZERO_WIDTH: &str = "\u{200B}\u{200C}\u{200D}\u{2060}\u{FEFF}";
/// Displays as "Acme Labs" followed by "cba" reversed: "Acme Labsabc".
const OVERRIDE: &str = "Acme Labs\u{202E}cba";

/// The one field error of a 422: `(field, message)`.
async fn the_error(response: Response) -> (String, String) {
    let refused = problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error_fields(&refused).len(), 1, "{refused}");
    (
        refused["errors"][0]["field"].as_str().unwrap().to_owned(),
        refused["errors"][0]["message"].as_str().unwrap().to_owned(),
    )
}

async fn case_count(app: &TestApp, admin: &str) -> usize {
    json_body(app.list_cases(admin, "limit=100").await, StatusCode::OK).await["items"]
        .as_array()
        .expect("items")
        .len()
}

async fn a_field_of_the_wrong_type_is_named_by_its_path(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let applicant = app.applicant("Typed Startup").await;

    let mut body = intake();
    body["title"] = json!(5);
    assert_eq!(
        the_error(app.submit_case(&applicant.token, &body).await).await,
        ("title".into(), "expected a string, found a number".into())
    );
    // The issue's body as it was sent: `{"title":5}`.
    assert_eq!(
        the_error(
            app.submit_case(&applicant.token, &json!({"title": 5}))
                .await
        )
        .await,
        ("title".into(), "expected a string, found a number".into())
    );
    let mut body = intake();
    body["organization"]["name"] = json!(true);
    assert_eq!(
        the_error(app.submit_case(&applicant.token, &body).await).await,
        (
            "organization.name".into(),
            "expected a string, found a boolean".into()
        )
    );
    let mut body = intake();
    body["categories"] = json!("regulatory");
    assert_eq!(
        the_error(app.submit_case(&applicant.token, &body).await).await,
        (
            "categories".into(),
            "expected an array, found a string".into()
        )
    );
    // Inside a list of objects, the index too.
    let mut profile = expert_profile("Typed Expert");
    profile["expertise"] = json!([{"category": "regulatory", "level": "high"}]);
    let (field, message) = the_error(app.create_expert(&admin, &profile).await).await;
    assert_eq!(field, "expertise[0].level");
    assert!(message.contains("found a string"), "{message}");
    assert_eq!(case_count(&app, &admin).await, 0);
}

async fn an_oversized_body_is_told_the_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let applicant = app.applicant("Large Startup").await;
    let mut body = intake();
    body["description"] = json!("字".repeat(100_000));
    let refused = problem(
        app.submit_case(&applicant.token, &body).await,
        StatusCode::PAYLOAD_TOO_LARGE,
    )
    .await;
    let detail = refused["detail"].as_str().unwrap();
    assert!(
        detail.contains("at most 256 KiB (262144 bytes)"),
        "{detail}"
    );
    assert_eq!(refused["max_bytes"], 262_144);
    assert_eq!(case_count(&app, &admin).await, 0);
}

async fn a_body_that_is_not_utf8_is_told_so(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let applicant = app.applicant("Encoded Startup").await;
    let mut bytes = br#"{"title": ""#.to_vec();
    bytes.extend_from_slice(SHIFT_JIS);
    bytes.extend_from_slice(br#"", "description": "x"}"#);

    let send = |content_type: &'static str, bytes: Vec<u8>| {
        app.client
            .post(app.url("/api/v1/cases"))
            .bearer_auth(&applicant.token)
            .header("content-type", content_type)
            .body(bytes)
            .send()
    };
    let refused = problem(
        send("application/json", bytes.clone()).await.unwrap(),
        StatusCode::BAD_REQUEST,
    )
    .await;
    let detail = refused["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("request bodies must be UTF-8 encoded"),
        "{detail}"
    );
    assert!(detail.contains("byte 12 is not"), "{detail}");

    // A body declared to be Shift_JIS is refused for its charset, even when
    // its bytes happen to be ASCII.
    let ascii = serde_json::to_vec(&intake()).unwrap();
    for content_type in [
        "application/json; charset=shift_jis",
        "application/json; charset=Shift_JIS",
    ] {
        let refused = problem(
            send(content_type, ascii.clone()).await.unwrap(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        )
        .await;
        let detail = refused["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("request bodies must be UTF-8 encoded"),
            "{detail}"
        );
    }
    assert_eq!(case_count(&app, &admin).await, 0);
    // UTF-8 named explicitly is fine.
    json_body(
        send("application/json; charset=UTF-8", ascii)
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
}

/// Every name field, refused for `bad`, and nothing stored.
async fn refused_in_every_name_field(backend: Backend, bad: &str, says: &str) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let check = |(field, message): (String, String), expected: &str| {
        assert_eq!(field, expected, "{message}");
        assert!(message.starts_with(says), "{expected}: {message}");
    };

    // Registration: the person and the new organisation.
    for (field, name, organization) in [
        ("name", bad, "Valid Startup"),
        ("organization", "Valid Name", bad),
    ] {
        let email = format!("bad-{}@startup.example", random_suffix());
        let body = json!({"email": email, "password": PASSWORD, "name": name,
                          "organization": organization, "locale": "ja"});
        check(the_error(app.register(&body).await).await, field);
        problem(app.login(&email, PASSWORD).await, StatusCode::UNAUTHORIZED).await;
    }

    // A user the admin creates.
    let email = format!("bad-{}@desk.example", random_suffix());
    let body = json!({"email": email, "password": PASSWORD, "name": bad,
                      "role": "supporter", "locale": "en"});
    check(
        the_error(app.create_user(&admin, &body).await).await,
        "name",
    );
    problem(app.login(&email, PASSWORD).await, StatusCode::UNAUTHORIZED).await;

    // An expert: created, and changed.
    for field in ["name", "affiliation"] {
        let mut profile = expert_profile("Valid Expert");
        profile[field] = json!(bad);
        check(
            the_error(app.create_expert(&admin, &profile).await).await,
            field,
        );
        problem(
            app.login(profile["email"].as_str().unwrap(), PASSWORD)
                .await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    let mut conflicted = expert_profile("Valid Expert");
    conflicted["conflicts"] = json!(["Fine Corp", bad]);
    check(
        the_error(app.create_expert(&admin, &conflicted).await).await,
        "conflicts",
    );
    let expert = json_body(
        app.create_expert(&admin, &expert_profile("Kept Expert"))
            .await,
        StatusCode::CREATED,
    )
    .await;
    for field in ["name", "affiliation"] {
        check(
            the_error(
                app.update_expert(&admin, &expert["id"], &json!({ field: bad }))
                    .await,
            )
            .await,
            field,
        );
    }
    let stored = json_body(app.get_expert(&admin, &expert["id"]).await, StatusCode::OK).await;
    assert_eq!(stored["name"], "Kept Expert");
    assert_eq!(stored["affiliation"], expert["affiliation"]);
    let registry = json_body(app.list_experts(&admin).await, StatusCode::OK).await;
    assert_eq!(registry["items"].as_array().unwrap().len(), 1);

    // Filing: the organisation named in the intake, and the title.
    let applicant = app.applicant("Filing Startup").await;
    let mut body = intake();
    body["organization"]["name"] = json!(bad);
    check(
        the_error(app.submit_case(&applicant.token, &body).await).await,
        "organization.name",
    );
    let mut body = intake();
    body["title"] = json!(bad);
    check(
        the_error(app.submit_case(&applicant.token, &body).await).await,
        "title",
    );
    assert_eq!(case_count(&app, &admin).await, 0);
}

async fn names_without_a_visible_character_are_refused_everywhere(backend: Backend) {
    refused_in_every_name_field(backend, ZERO_WIDTH, "must contain a visible character").await;
}

async fn names_with_bidirectional_controls_are_refused_everywhere(backend: Backend) {
    refused_in_every_name_field(
        backend,
        OVERRIDE,
        "must not contain the bidirectional control character U+202E",
    )
    .await;
}

async fn emoji_and_japanese_names_are_kept_as_typed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token().await;
    let name = "山田 花子 🌸";
    let organization = "👩\u{200D}💻 メドテック株式会社";
    let email = format!("kept-{}@startup.example", random_suffix());
    json_body(
        app.register(&json!({"email": email, "password": PASSWORD, "name": name,
                             "organization": organization, "locale": "ja"}))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let token = app.tokens(&email, PASSWORD).await.0;
    let me = json_body(app.me(&token).await, StatusCode::OK).await;
    assert_eq!(me["name"], name);

    let mut body = intake();
    body["title"] = json!("承認申請の相談 🚀（クラスⅡ）");
    let case = app.new_case_with(&token, &body).await;
    assert_eq!(case["title"], "承認申請の相談 🚀（クラスⅡ）");
    assert_eq!(case["organization"]["name"], organization, "{case}");

    let mut profile = expert_profile("専門家 太郎 👨\u{200D}⚕\u{FE0F}");
    profile["affiliation"] = json!("ＭＥＤ法律事務所");
    let expert = json_body(
        app.create_expert(&admin, &profile).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(expert["name"], "専門家 太郎 👨\u{200D}⚕\u{FE0F}");
    assert_eq!(expert["affiliation"], "ＭＥＤ法律事務所");
}
