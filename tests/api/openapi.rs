//! Facts the OpenAPI document must keep (the contract test in
//! tests/contract runs schemathesis against it; these catch the regressions
//! in `cargo test`). The document does not depend on the backend.

use medesk::http::openapi::ApiDoc;
use serde_json::Value;
use utoipa::OpenApi;

const METHODS: [&str; 5] = ["get", "put", "post", "delete", "patch"];

fn document() -> Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap()
}

/// `(label, operation)` for every operation.
fn operations(doc: &Value) -> Vec<(String, &Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                all.push((format!("{} {path}", method.to_uppercase()), operation));
            }
        }
    }
    assert!(all.len() > 40, "only {} operations", all.len());
    all
}

/// Follows a `$ref` (`#/components/…`) once.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str() {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').expect("local reference");
            doc.pointer(pointer)
                .unwrap_or_else(|| panic!("{reference} does not resolve"))
        }
        None => value,
    }
}

fn response<'a>(doc: &'a Value, operation: &'a Value, status: &str) -> Option<&'a Value> {
    operation["responses"].get(status).map(|r| resolve(doc, r))
}

fn every_ref(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                found.push(reference.clone());
            }
            map.values().for_each(|v| every_ref(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| every_ref(v, found)),
        _ => {}
    }
}

#[test]
fn every_reference_resolves() {
    let doc = document();
    let mut references = Vec::new();
    every_ref(&doc, &mut references);
    assert!(!references.is_empty());
    for reference in references {
        let pointer = reference.strip_prefix('#').expect("local reference");
        assert!(
            doc.pointer(pointer).is_some(),
            "{reference} does not resolve"
        );
    }
}

#[test]
fn every_error_response_is_a_problem_document() {
    let doc = document();
    for (label, operation) in operations(&doc) {
        for (status, declared) in operation["responses"].as_object().unwrap() {
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            let declared = resolve(&doc, declared);
            let content = declared["content"].as_object().unwrap_or_else(|| {
                panic!("{label} {status} declares no body");
            });
            let types: Vec<&String> = content.keys().collect();
            assert_eq!(types, ["application/problem+json"], "{label} {status}");
            assert_eq!(
                content["application/problem+json"]["schema"]["$ref"],
                "#/components/schemas/Problem",
                "{label} {status}"
            );
            assert!(
                !declared["description"].as_str().unwrap().is_empty(),
                "{label} {status} has no description"
            );
        }
    }
}

#[test]
fn secured_operations_declare_401_and_503() {
    let doc = document();
    for (label, operation) in operations(&doc) {
        let secured = operation["security"]
            .as_array()
            .is_some_and(|s| !s.is_empty());
        assert_eq!(
            response(&doc, operation, "401").is_some(),
            secured || label.contains("/auth/login") || label.contains("/auth/refresh"),
            "{label}: 401 declared iff it needs a token (or checks credentials)"
        );
        if label.contains("/api/") {
            assert!(response(&doc, operation, "503").is_some(), "{label}: 503");
        }
    }
}

#[test]
fn operations_with_a_json_body_declare_its_failures() {
    let doc = document();
    for (label, operation) in operations(&doc) {
        let body = &operation["requestBody"];
        if body["required"] != true || body["content"].get("application/json").is_none() {
            continue;
        }
        for status in ["400", "413", "415", "422"] {
            assert!(
                response(&doc, operation, status).is_some(),
                "{label} does not declare {status}"
            );
        }
    }
    // A bad If-Match is a 400 too.
    let claim = &doc["paths"]["/api/v1/cases/{id}/claim"]["post"];
    assert!(response(&doc, claim, "400").is_some());
}

#[test]
fn lists_are_objects_with_items() {
    let doc = document();
    for (path, schema) in [
        ("/api/v1/experts", "ExpertList"),
        ("/api/v1/assignments", "QueueList"),
        ("/api/v1/cases/{id}/assignments", "CaseAssignmentList"),
        ("/api/v1/cases/{id}/meetings", "MeetingList"),
        ("/api/v1/cases", "CaseList"),
    ] {
        let ok = &doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"];
        assert_eq!(
            ok["schema"]["$ref"],
            format!("#/components/schemas/{schema}"),
            "GET {path}"
        );
        let list = &doc["components"]["schemas"][schema];
        assert_eq!(list["type"], "object", "{schema}");
        assert_eq!(list["properties"]["items"]["type"], "array", "{schema}");
        assert!(
            list["required"]
                .as_array()
                .unwrap()
                .contains(&Value::from("items")),
            "{schema}"
        );
    }
}

#[test]
fn parameters_are_bounded_and_never_null() {
    let doc = document();
    for (label, operation) in operations(&doc) {
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            let name = parameter["name"].as_str().unwrap();
            let schema = resolve(&doc, &parameter["schema"]);
            let text = schema.to_string();
            assert!(!text.contains("\"null\""), "{label} {name} allows null");
            if name == "limit" {
                assert_eq!(schema["minimum"], 1, "{label} limit");
                assert!(schema["maximum"].is_u64(), "{label} limit has no maximum");
            }
        }
    }
    let queue = &doc["paths"]["/api/v1/triage-queue"]["get"]["parameters"][0];
    assert_eq!(queue["schema"]["maximum"], 500);
}

#[test]
fn expert_registration_can_be_satisfied() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    let create = &schemas["CreateExpertRequest"];
    assert_eq!(create["type"], "object");
    let mut required: Vec<&str> = create["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    required.sort_unstable();
    assert_eq!(required, ["email", "expertise", "name"]);
    // The document's body has exactly the fields the handler reads.
    let mut documented: Vec<&String> = create["properties"].as_object().unwrap().keys().collect();
    let mut read: Vec<&String> = schemas["ProfileInput"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    let extra = ["email".to_owned(), "password".to_owned()];
    read.extend(&extra);
    documented.sort();
    read.sort();
    assert_eq!(documented, read);
    let level = &schemas["Expertise"]["properties"]["level"];
    assert_eq!(
        (&level["minimum"], &level["maximum"]),
        (&1.into(), &3.into())
    );
}

#[test]
fn vocabulary_schemas_list_the_codes_the_server_accepts() {
    use medesk::domain::vocabulary::{Category, ProductType};
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    let codes = |name: &str| -> Vec<String> {
        schemas[name]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} has no enum"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    for code in codes("ProductType") {
        assert!(code.parse::<ProductType>().is_ok(), "{code}");
    }
    for code in codes("Category") {
        assert!(code.parse::<Category>().is_ok(), "{code}");
    }
    assert_eq!(codes("Category").len(), Category::ALL.len());
}

#[test]
fn a_new_case_links_to_what_can_be_done_with_it() {
    let doc = document();
    let created = &doc["paths"]["/api/v1/cases"]["post"]["responses"]["201"];
    let claim = &created["links"]["claim"];
    assert_eq!(claim["operationId"], "claim");
    assert_eq!(claim["parameters"]["id"], "$response.body#/id");
    assert_eq!(
        claim["parameters"]["header.If-Match"],
        "$response.header.ETag"
    );
    assert!(claim.get("operation_id").is_none());
    let operation_ids: Vec<String> = operations(&doc)
        .iter()
        .filter_map(|(_, op)| op["operationId"].as_str().map(str::to_owned))
        .collect();
    let mut linked = 0;
    for (_, operation) in operations(&doc) {
        for response in operation["responses"].as_object().unwrap().values() {
            for link in response["links"]
                .as_object()
                .into_iter()
                .flat_map(|l| l.values())
            {
                let target = link["operationId"].as_str().unwrap();
                assert!(operation_ids.iter().any(|id| id == target), "{target}");
                linked += 1;
            }
        }
    }
    assert!(linked >= 20, "{linked} links");
    // A new booking leads to its cancellation, attendance and case; a new
    // assignment (created under a case) to its answers.
    let booked = &doc["paths"]["/api/v1/open-hours/bookings"]["post"]["responses"]["201"]["links"];
    for target in [
        "cancel_booking",
        "record_attendance",
        "open_case",
        "get_booking",
    ] {
        assert_eq!(booked[target]["operationId"], target, "{booked}");
        assert_eq!(booked[target]["parameters"]["id"], "$response.body#/id");
    }
    let assigned =
        &doc["paths"]["/api/v1/cases/{id}/assignments"]["post"]["responses"]["201"]["links"];
    assert_eq!(assigned["accept"]["operationId"], "accept", "{assigned}");
}

#[test]
fn open_hours_operations_declare_every_answer() {
    let doc = document();
    let statuses = |path: &str, method: &str| -> Vec<String> {
        let operation = &doc["paths"][path][method];
        let mut found: Vec<String> = operation["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path} is documented"))
            .keys()
            .cloned()
            .collect();
        found.sort();
        found
    };
    let slots = "/api/v1/open-hours/slots";
    let bookings = "/api/v1/open-hours/bookings";
    for (path, method, expected) in [
        (slots, "get", vec!["200", "401", "422", "503"]),
        (
            "/api/v1/open-hours/slots/{id}",
            "put",
            vec![
                "200", "400", "401", "403", "404", "409", "413", "415", "422", "503",
            ],
        ),
        (
            bookings,
            "post",
            vec![
                "201", "400", "401", "403", "409", "413", "415", "422", "503",
            ],
        ),
        (bookings, "get", vec!["200", "401", "403", "422", "503"]),
        (
            "/api/v1/open-hours/bookings/{id}",
            "get",
            vec!["200", "401", "403", "404", "503"],
        ),
        (
            "/api/v1/open-hours/bookings/{id}/cancel",
            "post",
            vec!["200", "401", "403", "404", "409", "422", "503"],
        ),
        (
            "/api/v1/open-hours/bookings/{id}/case",
            "post",
            vec!["201", "401", "403", "404", "409", "422", "503"],
        ),
        (
            "/api/v1/holidays/{date}",
            "put",
            vec![
                "200", "201", "400", "401", "403", "404", "413", "415", "422", "503",
            ],
        ),
        (
            "/api/v1/holidays/{date}",
            "delete",
            vec!["204", "401", "403", "404", "503"],
        ),
        ("/api/v1/holidays", "get", vec!["200", "401", "503"]),
    ] {
        assert_eq!(statuses(path, method), expected, "{method} {path}");
    }
    let booking = &doc["paths"][bookings]["post"];
    assert_eq!(booking["tags"], serde_json::json!(["open-hours"]));
    let conflict = response(&doc, booking, "409").unwrap();
    assert!(
        conflict["description"]
            .as_str()
            .unwrap()
            .contains("slot_full")
    );
}
