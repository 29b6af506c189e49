//! The README's desk day ("A desk day, step by step"), replayed block by
//! block: what a newcomer copies from the README works as written.

use std::collections::HashMap;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

on_both_backends!(the_readme_desk_day_works_as_written);

const README: &str = include_str!("../../README.md");

/// One ```http block of the walkthrough.
#[derive(Debug)]
struct Step {
    who: String,
    keep: Vec<(String, String)>,
    method: Method,
    path: String,
    body: Option<String>,
}

fn steps() -> Vec<Step> {
    let start = README
        .find("## A desk day, step by step")
        .expect("the README has the walkthrough");
    let section = &README[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    let mut steps = Vec::new();
    for block in section.split("```http\n").skip(1) {
        let block = &block[..block.find("```").expect("a closed block")];
        let mut who = None;
        let mut keep = Vec::new();
        let mut lines = block.lines().peekable();
        while let Some(line) = lines.peek().copied().filter(|l| l.starts_with('#')) {
            lines.next();
            if let Some(rest) = line.strip_prefix("# as ") {
                who = Some(rest.trim().to_owned());
            } else if let Some(rest) = line.strip_prefix("# keep ") {
                let (name, pointer) = rest.split_once('=').expect("keep NAME = /pointer");
                keep.push((name.trim().to_owned(), pointer.trim().to_owned()));
            }
        }
        let request = lines.next().expect("a request line");
        let (method, path) = request.split_once(' ').expect("METHOD PATH");
        let body: String = lines.collect::<Vec<_>>().join("\n");
        steps.push(Step {
            who: who.unwrap_or_else(|| panic!("{request}: no `# as …` line")),
            keep,
            method: method.parse().expect("an HTTP method"),
            path: path.trim().to_owned(),
            body: (!body.trim().is_empty()).then_some(body),
        });
    }
    steps
}

/// Replaces `{name}` by kept values: raw in paths, as JSON in bodies.
fn fill(text: &str, kept: &HashMap<String, Value>, in_body: bool) -> String {
    let mut text = text.to_owned();
    for (name, value) in kept {
        let shown = match (value, in_body) {
            (Value::String(s), false) => s.clone(),
            (value, _) => value.to_string(),
        };
        text = text.replace(&format!("{{{name}}}"), &shown);
    }
    text
}

async fn the_readme_desk_day_works_as_written(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("MEDESK_ADMIN_EMAIL", "admin@desk.example"),
            ("MEDESK_ADMIN_PASSWORD", "a long passphrase"),
        ],
    )
    .await;
    let steps = steps();
    assert!(
        steps.len() >= 20,
        "the walkthrough has {} steps",
        steps.len()
    );
    let mut kept: HashMap<String, Value> = HashMap::new();
    let mut answers = Vec::new();
    for step in &steps {
        let path = fill(&step.path, &kept, false);
        let mut request = app.client.request(step.method.clone(), app.url(&path));
        if step.who != "nobody" {
            let token = kept
                .get(&step.who)
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{path}: nobody kept a token as {}", step.who));
            request = request.bearer_auth(token);
        }
        if let Some(body) = &step.body {
            let body: Value = serde_json::from_str(&fill(body, &kept, true))
                .unwrap_or_else(|e| panic!("{path}: the README's body is not JSON: {e}"));
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(
            status.is_success(),
            "{} {path} as {}: {status} {text}",
            step.method,
            step.who
        );
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        for (name, pointer) in &step.keep {
            let value = answer
                .pointer(pointer)
                .unwrap_or_else(|| panic!("{path}: no {pointer} in {answer}"))
                .clone();
            kept.insert(name.clone(), value);
        }
        answers.push((step.method.clone(), path, answer));
    }

    // Where the day ended.
    let case = &kept["case"];
    let supporter = kept["supporter"].as_str().unwrap();
    let closed = app.case(supporter, case).await;
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["outcome"], "resolved");
    let (_, _, plan) = answers
        .iter()
        .rev()
        .find(|(method, path, _)| method == Method::GET && path.ends_with("/support-plan"))
        .expect("the founder read the plan");
    assert_eq!(plan["current"]["kind"], "plan");
    assert_eq!(
        plan["revisions"].as_array().map(Vec::len),
        Some(1),
        "the founder reads the current plan only, not the expert's proposal: {plan}"
    );
    let (_, _, table) = answers.last().unwrap();
    assert_eq!(table["total"]["cases"], json!(1));
    assert_eq!(table["total"]["counts"]["regulatory"], json!(1));
    let founder = kept["founder"].as_str().unwrap();
    let messages = app.message_items(founder, case).await;
    assert_eq!(messages.len(), 2, "{messages:?}");
}
