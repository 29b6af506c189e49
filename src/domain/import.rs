//! Import of historical cases from CSV: the file format and the row rules,
//! in plain Rust. The whole file is checked before anything is stored, and
//! every bad line is reported with its line number. The checks read the file
//! as a stream and keep only where each record is; the records are read back
//! from the file in batches when they are stored.
//!
//! Format (docs/statistics.md): a header row naming the columns
//! `received_on,product_type,categories,organization,title,status,outcome`
//! (any order), UTF-8 with or without a BOM, then one case per record.

use std::collections::HashMap;
use std::io::{self, BufRead, Read, Seek};

use chrono::NaiveDate;

use super::account::parse_display_name;
use super::case::{desk_offset, parse_title};
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

/// Every outcome but `duplicate`: a case closed as a duplicate names the
/// case it duplicates (`domain::duplicate`), which a row of a file cannot
/// (imported cases get their ids and numbers as they are stored), and
/// medesk keeps no duplicate without its original.
pub fn parse_outcome(raw: &str) -> Result<Outcome, String> {
    if raw.trim().is_empty() {
        return Err("is required: a closed case has an outcome".to_owned());
    }
    match Outcome::from_label_or_code(raw) {
        Ok(Outcome::Duplicate) => Err(DUPLICATE_NOT_IMPORTED.to_owned()),
        parsed => parsed.map_err(|e| e.to_string()),
    }
}

/// Why an imported row may not be a duplicate.
pub const DUPLICATE_NOT_IMPORTED: &str = "duplicate cannot be imported: a case closed as a \
     duplicate names the case it duplicates, which a row cannot; leave the row out (the \
     statistics leave duplicates out by default) or close it as a duplicate in medesk";

/// What a file that is not UTF-8 is told, on the line of its first bad byte.
const NOT_UTF8: &str = "is not UTF-8 text (save the file as CSV UTF-8)";

/// Read-back buffer: small, because records are read back in received
/// order, one seek each when the file is not sorted by date.
const READ_BACK_BUFFER: usize = 2 * 1024;

/// Where the columns are: `COLUMNS` name → field index.
type Columns = HashMap<&'static str, usize>;

/// A checked record: where it starts and what orders it.
#[derive(Debug, Clone, Copy)]
struct Place {
    received_on: NaiveDate,
    line: u64,
    /// Offset of the record in the CSV text (after any byte-order mark).
    byte: u64,
}

/// An import file whose every record passed the checks. It holds where
/// each record is, not the records: [`CheckedFile::read_in_batches`] reads
/// them back from the file, in received order, a batch at a time, so memory
/// stays bounded whatever the file's size.
#[derive(Debug)]
pub struct CheckedFile {
    columns: Columns,
    /// Every record, by received date, then by line.
    places: Vec<Place>,
    /// Bytes before the CSV text: 3 for a byte-order mark, else 0.
    skipped: u64,
    today: NaiveDate,
}

impl CheckedFile {
    /// Cases in the file.
    pub fn len(&self) -> usize {
        self.places.len()
    }

    /// Never true: a file without cases does not pass the checks.
    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    /// The cases, parsed again from `file` (the bytes that were checked), in
    /// received order (records of one day in file order), `rows` at a time.
    /// An error means the file no longer holds what was checked.
    pub fn read_in_batches<'a, F: Read + Seek + 'a>(
        &'a self,
        file: F,
        rows: usize,
    ) -> impl Iterator<Item = io::Result<Vec<ImportedCase>>> + 'a {
        let mut records = Records::new(io::BufReader::with_capacity(READ_BACK_BUFFER, file));
        let mut record = Record::default();
        self.places.chunks(rows.max(1)).map(move |batch| {
            batch
                .iter()
                .map(|place| {
                    // Records that follow one another in the file are read
                    // on; any other is sought.
                    records.skip_blank_lines()?;
                    if records.byte != place.byte {
                        records
                            .input
                            .seek(io::SeekFrom::Start(self.skipped + place.byte))?;
                        records.restart_at(place.byte, place.line);
                    }
                    let read = records.read(&mut record)?;
                    read.then(|| parse_row(place.line, &record, &self.columns, self.today).ok())
                        .flatten()
                        .filter(|case| case.received_on == place.received_on)
                        .ok_or_else(|| {
                            io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!("line {} no longer reads as it was checked", place.line),
                            )
                        })
                })
                .collect()
        })
    }
}

/// CSV records (RFC 4180; a line ends at CRLF, LF or CR) with the physical
/// line and the offset where each starts. The csv crate's record positions
/// are where the previous record ended: before any blank lines, and after a
/// CRLF on the previous line, which made every line number of a CRLF file
/// (Excel's) one too small.
struct Records<R> {
    input: R,
    core: csv_core::Reader,
    /// Offset of the next byte of `input`, and the line it is on.
    byte: u64,
    line: u64,
}

/// One record's fields: `text` holds them one after the other, `ends[i]`
/// is where field `i` ends.
#[derive(Debug, Default)]
struct Record {
    line: u64,
    byte: u64,
    text: Vec<u8>,
    ends: Vec<usize>,
    fields: usize,
}

impl Record {
    fn len(&self) -> usize {
        self.fields
    }

    /// Field `i` as text (fields are checked to be UTF-8 before they are read).
    fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends[..self.fields].get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(std::str::from_utf8(&self.text[start..end]).unwrap_or_default())
    }

    fn iter(&self) -> impl Iterator<Item = &str> {
        (0..self.fields).filter_map(|i| self.get(i))
    }
}

impl<R: BufRead> Records<R> {
    fn new(input: R) -> Self {
        Self {
            input,
            core: csv_core::Reader::new(),
            byte: 0,
            line: 1,
        }
    }

    /// Reads on from `byte` on `line` (after `input` was sought there).
    fn restart_at(&mut self, byte: u64, line: u64) {
        self.core.reset();
        self.byte = byte;
        self.line = line;
    }

    /// Moves past line ends up to the next record (or the end of input); the
    /// CSV reader would skip them as blank lines too.
    fn skip_blank_lines(&mut self) -> io::Result<()> {
        loop {
            let buf = self.input.fill_buf()?;
            let blank = buf
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            let more = blank > 0 && blank == buf.len();
            self.line += newlines(&buf[..blank]);
            self.byte += blank as u64;
            self.input.consume(blank);
            if !more {
                return Ok(());
            }
        }
    }

    /// The next record into `record`; false at the end of input.
    fn read(&mut self, record: &mut Record) -> io::Result<bool> {
        use csv_core::ReadRecordResult;
        self.skip_blank_lines()?;
        record.line = self.line;
        record.byte = self.byte;
        if record.text.is_empty() {
            record.text.resize(1024, 0);
            record.ends.resize(16, 0);
        }
        let (mut written, mut ended) = (0, 0);
        loop {
            let buf = self.input.fill_buf()?;
            let (result, read, wrote, ends) =
                self.core
                    .read_record(buf, &mut record.text[written..], &mut record.ends[ended..]);
            self.line += newlines(&buf[..read]);
            self.byte += read as u64;
            self.input.consume(read);
            written += wrote;
            ended += ends;
            match result {
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => record.text.resize(record.text.len() * 2, 0),
                ReadRecordResult::OutputEndsFull => record.ends.resize(record.ends.len() * 2, 0),
                ReadRecordResult::Record => {
                    record.fields = ended;
                    return Ok(true);
                }
                ReadRecordResult::End => {
                    record.fields = 0;
                    return Ok(false);
                }
            }
        }
    }
}

/// Checks an import file as it is read, record by record, keeping only
/// where each good record is and every problem found. Ok(Ok) only when every
/// row is valid; Ok(Err) lists every problem by line (or only the first
/// byte that is not UTF-8, as then nothing else can be read reliably). Err is
/// a failure to read `input` itself.
pub fn check_cases_csv<R: Read>(
    input: R,
    today: NaiveDate,
) -> io::Result<Result<CheckedFile, Vec<LineError>>> {
    let (text, skipped) = without_bom(input)?;
    let mut records = Records::new(io::BufReader::new(Utf8Lines::new(text)));
    let mut record = Record::default();
    let mut header: Option<Result<(Columns, usize), Vec<LineError>>> = None;
    let mut places = Vec::new();
    let mut errors = Vec::new();
    loop {
        let read = records.read(&mut record)?;
        if let Some(line) = records.input.get_ref().first_bad_line() {
            return Ok(Err(vec![LineError::new(line, "body", NOT_UTF8)]));
        }
        if !read {
            break;
        }
        let line = record.line;
        let (columns, width) = match &header {
            None => {
                header = Some(column_positions(&record).map(|c| (c, record.len())));
                continue;
            }
            // A bad header ends the checks; reading on only looks for bytes
            // that are not UTF-8, which would be the one problem reported.
            Some(Err(_)) => continue,
            Some(Ok(header)) => header,
        };
        if record.iter().all(|field| field.trim().is_empty()) {
            continue; // blank lines, or rows of empty cells Excel leaves behind
        }
        if record.len() != *width {
            errors.push(LineError::new(
                line,
                "body",
                format!("has {} fields; the header has {width}", record.len()),
            ));
        } else {
            match parse_row(line, &record, columns, today) {
                Ok(case) if errors.is_empty() => places.push(Place {
                    received_on: case.received_on,
                    line,
                    byte: record.byte,
                }),
                Ok(_) => {}
                Err(mut problems) => errors.append(&mut problems),
            }
        }
        if !errors.is_empty() && !places.is_empty() {
            places = Vec::new(); // nothing will be stored: keep only the problems
        }
    }
    let (columns, _) = match header {
        None => return Ok(Err(vec![LineError::new(1, "header", "the file is empty")])),
        Some(Err(errors)) => return Ok(Err(errors)),
        Some(Ok(header)) => header,
    };
    if places.is_empty() && errors.is_empty() {
        errors.push(LineError::new(
            2,
            "body",
            "the file has no cases after the header",
        ));
    }
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    places.sort_by_key(|place| (place.received_on, place.line));
    Ok(Ok(CheckedFile {
        columns,
        places,
        skipped,
        today,
    }))
}

/// The bytes of `R` after a possible byte-order mark: what was read ahead
/// to look for it, then the rest.
type AfterBom<R> = io::Chain<io::Cursor<Vec<u8>>, R>;

/// `input` without a leading UTF-8 byte-order mark, and how many bytes that
/// dropped (3 or 0).
fn without_bom<R: Read>(mut input: R) -> io::Result<(AfterBom<R>, u64)> {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let mut head = Vec::with_capacity(BOM.len());
    while head.len() < BOM.len() {
        let mut byte = [0; 1];
        if input.read(&mut byte)? == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let skipped = if head == BOM {
        head.clear();
        BOM.len() as u64
    } else {
        0
    };
    Ok((io::Cursor::new(head).chain(input), skipped))
}

/// Passes bytes through, counting lines, and notes the line of the first
/// byte that is not UTF-8 (a sequence may be split between two reads).
struct Utf8Lines<R> {
    inner: R,
    /// The line the next byte is on.
    line: u64,
    /// The start of a sequence the last read ended in the middle of.
    pending: Vec<u8>,
    bad_line: Option<u64>,
}

impl<R> Utf8Lines<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            line: 1,
            pending: Vec::with_capacity(4),
            bad_line: None,
        }
    }

    fn first_bad_line(&self) -> Option<u64> {
        self.bad_line
    }

    fn check(&mut self, mut bytes: &[u8]) {
        if bytes.is_empty() {
            // End of input: an unfinished sequence is not UTF-8.
            if !self.pending.is_empty() {
                self.bad_line = Some(self.line);
            }
            return;
        }
        // First finish the sequence the last read split.
        while !self.pending.is_empty() {
            let Some((&next, rest)) = bytes.split_first() else {
                return;
            };
            self.pending.push(next);
            bytes = rest;
            match std::str::from_utf8(&self.pending) {
                Ok(_) => self.pending.clear(),
                Err(error) if error.error_len().is_some() => {
                    self.bad_line = Some(self.line);
                    return;
                }
                Err(_) => {}
            }
        }
        let valid = match std::str::from_utf8(bytes) {
            Ok(_) => bytes.len(),
            Err(error) => {
                if error.error_len().is_some() {
                    self.bad_line = Some(self.line + newlines(&bytes[..error.valid_up_to()]));
                } else {
                    self.pending
                        .extend_from_slice(&bytes[error.valid_up_to()..]);
                }
                error.valid_up_to()
            }
        };
        self.line += newlines(&bytes[..valid]);
    }
}

fn newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}

impl<R: Read> Read for Utf8Lines<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        // (0 bytes into a buffer with room: the end of the input.)
        if self.bad_line.is_none() && !buf.is_empty() {
            self.check(&buf[..n]);
        }
        Ok(n)
    }
}

/// Where each known column is; every column once, no unknown ones.
fn column_positions(header: &Record) -> Result<Columns, Vec<LineError>> {
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
    result: Result<T, impl Into<String>>,
) -> Option<T> {
    result
        .map_err(|message| errors.push(LineError::new(line, field, message.into())))
        .ok()
}

fn parse_row(
    line: u64,
    record: &Record,
    columns: &Columns,
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
        parse_title(field("title").trim()).map(|t| t.trim().to_owned()),
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

    #[test]
    fn a_duplicate_is_not_imported_by_code_or_label() {
        for raw in ["duplicate", "重複", " duplicate "] {
            assert_eq!(
                parse_outcome(raw),
                Err(DUPLICATE_NOT_IMPORTED.to_owned()),
                "{raw:?}"
            );
        }
        assert_eq!(parse_outcome("取り下げ"), Ok(Outcome::Withdrawn));
        assert!(
            parse_outcome("dup")
                .unwrap_err()
                .ends_with("no_response, duplicate")
        );
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 27).unwrap()
    }

    const HEADER: &str = "received_on,product_type,categories,organization,title,status,outcome\n";

    /// The whole file checked and read back as the import stores it (in
    /// batches of 2, to cross batch ends).
    fn parse_cases_csv(body: &[u8], today: NaiveDate) -> Result<Vec<ImportedCase>, Vec<LineError>> {
        let checked = check_cases_csv(body, today).expect("a slice reads")?;
        let batches: Vec<Vec<ImportedCase>> = checked
            .read_in_batches(io::Cursor::new(body), 2)
            .collect::<io::Result<_>>()
            .expect("the checked bytes read back");
        assert!(batches.iter().all(|b| b.len() <= 2));
        Ok(batches.concat())
    }

    /// Hands out one byte per read, as a slow upload might.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((&byte, rest)), Some(slot)) => {
                    *slot = byte;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

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
    fn reads_the_cases_back_in_received_order() {
        let body = "\u{FEFF}title,outcome,status,organization,categories,product_type,received_on\r\n\
                    third,resolved,closed,Org,marketing,drug,2021-03-03\r\n\
                    \r\n\
                    first,resolved,closed,Org,marketing,drug,2019-01-01\r\n\
                    ,,,,,,\r\n\
                    \"second,\r\nof two lines\",resolved,closed,Org,other,drug,2020-02-02\r\n\
                    also first,resolved,closed,株式会社,知財戦略,drug,2019-01-01\r\n\
                    fourth,resolved,closed,Org,other,drug,2022-04-04";
        let expected = [
            ("first", 4),
            ("also first", 8),
            ("second,\r\nof two lines", 6),
            ("third", 2),
            ("fourth", 9),
        ];
        let cases = parse_cases_csv(body.as_bytes(), today()).unwrap();
        let found: Vec<(&str, u64)> = cases.iter().map(|c| (c.title.as_str(), c.line)).collect();
        assert_eq!(found, expected);
        assert_eq!(cases[1].organization, "株式会社");

        // The same from a stream that arrives a byte at a time.
        let checked = check_cases_csv(Trickle(body.as_bytes()), today())
            .unwrap()
            .unwrap();
        assert_eq!(checked.len(), 5);
        let again: Vec<ImportedCase> = checked
            .read_in_batches(io::Cursor::new(body.as_bytes()), 1_000)
            .flat_map(Result::unwrap)
            .collect();
        assert_eq!(again, cases);
    }

    #[test]
    fn lines_are_where_records_start_after_crlf_and_blank_lines() {
        let body = "received_on,product_type,categories,organization,title,status,outcome\r\n\
                    \r\n\
                    2018-02-05,drug,regulatory,Acme,ok,closed,resolved\r\n\
                    \r\n\
                    \r\n\
                    2018-02-30,drug,regulatory,Acme,bad date,closed,resolved\r\n\
                    2018-02-05,drug,regulatory,Acme,\"two\r\nlines\",open,resolved\r\n\
                    2018-02-05,pharma,regulatory,Acme,bad product,closed,resolved\n\
                    \n\
                    2018-02-05,drug,regulatory,Acme,no outcome,closed,\r";
        let errors = parse_cases_csv(body.as_bytes(), today()).unwrap_err();
        let found: Vec<(u64, &str)> = errors.iter().map(|e| (e.line, e.field.as_str())).collect();
        assert_eq!(
            found,
            [
                (6, "received_on"),
                (7, "status"),
                (9, "product_type"),
                (11, "outcome")
            ]
        );
    }

    #[test]
    fn finds_the_first_byte_that_is_not_utf8_however_it_arrives() {
        let check = |body: &[u8]| -> Vec<Vec<(u64, String)>> {
            let whole = check_cases_csv(body, today()).unwrap();
            let trickled = check_cases_csv(Trickle(body), today()).unwrap();
            [whole, trickled]
                .into_iter()
                .map(|result| {
                    result
                        .unwrap_err()
                        .into_iter()
                        .map(|e| (e.line, e.field))
                        .collect()
                })
                .collect()
        };
        let body_line = |line| vec![vec![(line, "body".to_owned())]; 2];
        let mut body = HEADER.as_bytes().to_vec();
        body.extend_from_slice(
            "2018-02-05,drug,regulatory,株式会社,bad row,open,resolved\n".as_bytes(),
        );
        body.extend_from_slice(
            b"2018-02-05,drug,regulatory,\"two\nlines \xE3\x81\",t,closed,resolved\n",
        );
        body.extend_from_slice(b"2018-02-05,drug,regulatory,\xFF,t,closed,resolved\n");
        // The bad sequence is on line 4 (inside a quoted field's second line);
        // the row error on line 2 is not reported.
        assert_eq!(check(&body), body_line(4));

        // A sequence cut short by the end of the file.
        let mut body = HEADER.as_bytes().to_vec();
        body.extend_from_slice(b"2018-02-05,drug,regulatory,Acme,t,closed,resolved\n\xE3\x81");
        assert_eq!(check(&body), body_line(3));

        // It outranks a bad header.
        let body = b"date,product_type\n\n\xC3(\n";
        assert_eq!(check(body), body_line(3));
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
