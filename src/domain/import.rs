//! Import of historical cases from CSV: the file format and the row rules,
//! in plain Rust. The whole file is checked before anything is stored, and
//! every bad line is reported with its line number.
//!
//! Format (docs/statistics.md): a header row naming the columns
//! `received_on,product_type,categories,organization,title,status,outcome`
//! (any order), UTF-8 with or without a BOM, then one case per record.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::account::parse_display_name;
use super::case::{TITLE_MAX_CHARS, desk_offset, parse_text};
use super::vocabulary::{CaseStatus, Category, Outcome, ProductType};

/// The columns of an import file, in the documented order.
pub const COLUMNS: [&str; 7] = [
    "received_on",
    "product_type",
    "categories",
    "organization",
    "title",
    "status",
    "outcome",
];

pub const ORGANIZATION_MAX_CHARS: usize = 200;

/// One validated row: a closed historical case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedCase {
    /// Physical line of the record in the file (the header is line 1).
    pub line: u64,
    pub received_on: NaiveDate,
    pub product_type: ProductType,
    /// At least one, no duplicates, in `Category::ALL` order.
    pub categories: Vec<Category>,
    pub organization: String,
    pub title: String,
    pub status: CaseStatus,
    pub outcome: Outcome,
}

/// What is wrong with one line (or the file, line 0 / header line 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: u64,
    /// A column name, `header`, or `body` for the file as a whole.
    pub field: String,
    pub message: String,
}

impl LineError {
    fn new(line: u64, field: &str, message: impl Into<String>) -> Self {
        Self {
            line,
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// The received time stored for an imported record: midnight of its
/// received date on the desk calendar (so the desk date is that day).
pub fn received_at_micros(received_on: NaiveDate) -> i64 {
    received_on
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_local_timezone(desk_offset())
        .single()
        .expect("a fixed offset is unambiguous")
        .timestamp_micros()
}

/// Received dates: `2018-02-05`, also `2018/02/05` and `2018/2/5` as
/// spreadsheets write them. Never after `today` (these are past cases).
pub fn parse_received_on(raw: &str, today: NaiveDate) -> Result<NaiveDate, String> {
    let raw = raw.trim();
    let separator = if raw.contains('/') { '/' } else { '-' };
    let parts: Vec<&str> = raw.split(separator).collect();
    let parsed = match parts.as_slice() {
        [y, m, d]
            if y.len() == 4
                && (1..=2).contains(&m.len())
                && (1..=2).contains(&d.len())
                && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit())) =>
        {
            NaiveDate::from_ymd_opt(
                y.parse().unwrap_or(0),
                m.parse().unwrap_or(0),
                d.parse().unwrap_or(0),
            )
        }
        _ => None,
    };
    let date = parsed.ok_or_else(|| format!("is not a date YYYY-MM-DD: {raw:?}"))?;
    if date > today {
        return Err(format!("{date} is in the future"));
    }
    Ok(date)
}

/// `regulatory;知財戦略`: codes or Japanese labels separated by `;` (or the
/// full-width `；`); empty pieces (a trailing `;`) are ignored.
pub fn parse_import_categories(raw: &str) -> Result<Vec<Category>, String> {
    let mut categories = Vec::new();
    for piece in raw.split([';', '；']) {
        if piece.trim().is_empty() {
            continue;
        }
        let category = Category::from_label_or_code(piece).map_err(|e| e.to_string())?;
        if categories.contains(&category) {
            return Err(format!("lists {:?} twice", piece.trim()));
        }
        categories.push(category);
    }
    if categories.is_empty() {
        return Err("must name at least one category".to_owned());
    }
    categories.sort();
    Ok(categories)
}

/// Imported cases are closed historical records: status empty or `closed`
/// (`終了`), and an outcome (code or Japanese label) as every closed case has.
pub fn parse_status(raw: &str) -> Result<CaseStatus, String> {
    if raw.trim().is_empty() {
        return Ok(CaseStatus::Closed);
    }
    match CaseStatus::from_label_or_code(raw) {
        Ok(CaseStatus::Closed) => Ok(CaseStatus::Closed),
        Ok(other) => Err(format!(
            "imported cases are closed historical records; {other:?} is not closed \
             (leave it empty or write closed)"
        )),
        Err(e) => Err(e.to_string()),
    }
}

pub fn parse_outcome(raw: &str) -> Result<Outcome, String> {
    if raw.trim().is_empty() {
        return Err("is required: a closed case has an outcome".to_owned());
    }
    Outcome::from_label_or_code(raw).map_err(|e| e.to_string())
}

/// Reads and checks a whole import file. Ok only when every row is valid;
/// otherwise every problem found, by line.
pub fn parse_cases_csv(body: &[u8], today: NaiveDate) -> Result<Vec<ImportedCase>, Vec<LineError>> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if let Err(error) = std::str::from_utf8(body) {
        let line = 1 + body[..error.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count() as u64;
        return Err(vec![LineError::new(
            line,
            "body",
            "is not UTF-8 text (save the file as CSV UTF-8)",
        )]);
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut records = reader.records();

    let header = match records.next() {
        None => return Err(vec![LineError::new(1, "header", "the file is empty")]),
        Some(Err(e)) => return Err(vec![LineError::new(1, "header", e.to_string())]),
        Some(Ok(header)) => header,
    };
    let columns = column_positions(&header)?;

    let mut cases = Vec::new();
    let mut errors = Vec::new();
    for record in records {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map_or(0, |p| p.line());
                errors.push(LineError::new(
                    line,
                    "body",
                    format!("unreadable CSV: {error}"),
                ));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(|field| field.trim().is_empty()) {
            continue; // blank lines, or rows of empty cells Excel leaves behind
        }
        if record.len() != header.len() {
            errors.push(LineError::new(
                line,
                "body",
                format!(
                    "has {} fields; the header has {}",
                    record.len(),
                    header.len()
                ),
            ));
            continue;
        }
        match parse_row(line, &record, &columns, today) {
            Ok(case) => cases.push(case),
            Err(mut problems) => errors.append(&mut problems),
        }
    }
    if cases.is_empty() && errors.is_empty() {
        errors.push(LineError::new(
            2,
            "body",
            "the file has no cases after the header",
        ));
    }
    if errors.is_empty() {
        Ok(cases)
    } else {
        Err(errors)
    }
}

/// Where each known column is; every column once, no unknown ones.
fn column_positions(
    header: &csv::StringRecord,
) -> Result<HashMap<&'static str, usize>, Vec<LineError>> {
    let mut positions = HashMap::new();
    let mut errors = Vec::new();
    for (i, name) in header.iter().enumerate() {
        let name = name.trim();
        match COLUMNS.iter().find(|c| c.eq_ignore_ascii_case(name)) {
            Some(column) if positions.insert(*column, i).is_some() => {
                errors.push(LineError::new(1, "header", format!("names {column} twice")));
            }
            Some(_) => {}
            None => errors.push(LineError::new(
                1,
                "header",
                format!("unknown column {name:?}; expected {}", COLUMNS.join(",")),
            )),
        }
    }
    for column in COLUMNS {
        if !positions.contains_key(column) {
            errors.push(LineError::new(
                1,
                "header",
                format!("lacks the column {column}; expected {}", COLUMNS.join(",")),
            ));
        }
    }
    if errors.is_empty() {
        Ok(positions)
    } else {
        Err(errors)
    }
}

/// The value, or the problem recorded under `field` on `line`.
fn keep<T>(
    errors: &mut Vec<LineError>,
    line: u64,
    field: &str,
    result: Result<T, String>,
) -> Option<T> {
    result
        .map_err(|message| errors.push(LineError::new(line, field, message)))
        .ok()
}

fn parse_row(
    line: u64,
    record: &csv::StringRecord,
    columns: &HashMap<&'static str, usize>,
    today: NaiveDate,
) -> Result<ImportedCase, Vec<LineError>> {
    let field = |name: &str| record.get(columns[name]).unwrap_or_default();
    let mut errors = Vec::new();
    let received_on = keep(
        &mut errors,
        line,
        "received_on",
        parse_received_on(field("received_on"), today),
    );
    let product_type = keep(
        &mut errors,
        line,
        "product_type",
        ProductType::from_label_or_code(field("product_type")).map_err(|e| e.to_string()),
    );
    let categories = keep(
        &mut errors,
        line,
        "categories",
        parse_import_categories(field("categories")),
    );
    let organization = keep(
        &mut errors,
        line,
        "organization",
        parse_display_name(field("organization"), ORGANIZATION_MAX_CHARS),
    );
    let title = keep(
        &mut errors,
        line,
        "title",
        parse_text(field("title").trim(), TITLE_MAX_CHARS).map(|t| t.trim().to_owned()),
    );
    let status = keep(&mut errors, line, "status", parse_status(field("status")));
    let outcome = keep(
        &mut errors,
        line,
        "outcome",
        parse_outcome(field("outcome")),
    );
    match (
        received_on,
        product_type,
        categories,
        organization,
        title,
        status,
        outcome,
    ) {
        (
            Some(received_on),
            Some(product_type),
            Some(categories),
            Some(organization),
            Some(title),
            Some(status),
            Some(outcome),
        ) => Ok(ImportedCase {
            line,
            received_on,
            product_type,
            categories,
            organization,
            title,
            status,
            outcome,
        }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 27).unwrap()
    }

    const HEADER: &str = "received_on,product_type,categories,organization,title,status,outcome\n";

    fn parse(rows: &str) -> Result<Vec<ImportedCase>, Vec<LineError>> {
        parse_cases_csv(format!("{HEADER}{rows}").as_bytes(), today())
    }

    #[test]
    fn reads_codes_and_japanese_labels() {
        let cases = parse(
            "2018-02-05,drug,regulatory;ip_strategy,Acme,\"Title, with comma\",closed,resolved\n\
             2019/3/1,医療機器,保険収載；法規制対応;,株式会社メドテック,承認申請,終了,他機関紹介\n\
             2020-01-01,other,other,Org,\"Multi\nline title\",,withdrawn\n",
        )
        .unwrap();
        assert_eq!(cases.len(), 3);
        assert_eq!(cases[0].line, 2);
        assert_eq!(cases[0].title, "Title, with comma");
        assert_eq!(
            cases[0].categories,
            vec![Category::Regulatory, Category::IpStrategy]
        );
        assert_eq!(cases[1].product_type, ProductType::MedicalDevice);
        assert_eq!(
            cases[1].categories,
            vec![Category::Regulatory, Category::Reimbursement]
        );
        assert_eq!(cases[1].received_on.to_string(), "2019-03-01");
        assert_eq!(cases[1].outcome, Outcome::Referred);
        assert_eq!(cases[2].status, CaseStatus::Closed);
        assert_eq!(cases[2].line, 4);
    }

    #[test]
    fn tolerates_bom_crlf_blank_lines_and_column_order() {
        let body = "\u{FEFF}title,outcome,status,organization,categories,product_type,received_on\r\n\
                    t,resolved,closed,Org,marketing,drug,2020-02-02\r\n\
                    \r\n\
                    ,,,,,,\r\n";
        let cases = parse_cases_csv(body.as_bytes(), today()).unwrap();
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].categories, vec![Category::Marketing]);
    }

    #[test]
    fn reports_every_bad_line_with_its_number() {
        let errors = parse(
            "2018-02-05,drug,regulatory,Acme,ok,closed,resolved\n\
             2018-02-30,drug,regulatory,Acme,bad date,closed,resolved\n\
             2018-02-05,pharma,regulatory,Acme,bad product,closed,resolved\n\
             2018-02-05,drug,astrology,Acme,bad category,closed,resolved\n\
             2018-02-05,drug,regulatory,Acme,,closed,resolved\n\
             2018-02-05,drug,regulatory,Acme,open,submitted,resolved\n\
             2018-02-05,drug,regulatory,Acme,no outcome,closed,\n\
             2030-01-01,drug,regulatory;regulatory,,future,closed,resolved\n\
             2018-02-05,drug\n",
        )
        .unwrap_err();
        let found: Vec<(u64, &str)> = errors.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(
            found,
            vec![
                (3, "received_on"),
                (4, "product_type"),
                (5, "categories"),
                (6, "title"),
                (7, "status"),
                (8, "outcome"),
                (9, "received_on"),
                (9, "categories"),
                (9, "organization"),
                (10, "body"),
            ]
        );
        assert!(errors[2].message.contains("astrology"), "{:?}", errors[2]);
    }

    #[test]
    fn header_must_name_every_column_once() {
        let errors = parse_cases_csv(b"received_on,product,categories\n", today()).unwrap_err();
        assert!(errors.iter().all(|e| e.line == 1 && e.field == "header"));
        assert!(errors.iter().any(|e| e.message.contains("\"product\"")));
        assert!(
            errors
                .iter()
                .any(|e| e.message.contains("lacks the column title"))
        );
        assert!(parse_cases_csv(b"", today()).is_err());
        assert_eq!(parse("").unwrap_err()[0].field, "body");
    }

    #[test]
    fn refuses_text_that_is_not_utf8() {
        let mut body = HEADER.as_bytes().to_vec();
        body.extend_from_slice(b"2018-02-05,drug,regulatory,\x82\xa0,t,closed,resolved\n");
        let errors = parse_cases_csv(&body, today()).unwrap_err();
        assert_eq!(errors[0].line, 2);
        assert_eq!(errors[0].field, "body");
    }

    #[test]
    fn imported_cases_are_received_at_desk_midnight() {
        let day = NaiveDate::from_ymd_opt(2018, 2, 5).unwrap();
        let micros = received_at_micros(day);
        assert_eq!(crate::domain::case::desk_date(micros), day);
        assert_eq!(
            crate::domain::case::desk_date(micros - 1),
            day.pred_opt().unwrap()
        );
    }

    #[test]
    fn received_dates() {
        let ok = |s: &str| parse_received_on(s, today()).map(|d| d.to_string());
        assert_eq!(ok("2018-02-05").unwrap(), "2018-02-05");
        assert_eq!(ok(" 2018/2/5 ").unwrap(), "2018-02-05");
        assert_eq!(ok("2026-11-27").unwrap(), "2026-11-27");
        for bad in [
            "2026-11-28",
            "18-02-05",
            "2018-02",
            "2018-02/05",
            "05/02/2018",
            "",
        ] {
            assert!(ok(bad).is_err(), "{bad:?}");
        }
    }
}
