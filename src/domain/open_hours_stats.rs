//! Open Hours in the statistics (issue 18): bookings, attendance and
//! conversion to cases per month and category, in plain Rust.
//!
//! The database hands over the live bookings of a range (cancelled ones are
//! not counted); this module buckets them by the month of their slot on
//! the desk calendar (JST) and by each category they name, and writes the
//! CSV. A booking naming no category counts under `none`; one naming two
//! counts in both (as the category table counts cases), so the categories
//! of a month add up to more than its bookings. See docs/statistics.md.

use std::collections::BTreeMap;

use super::case::desk_date;
use super::statistics::{CsvHeaders, UTF8_BOM, month_key};
use super::vocabulary::{Category, Lang, UnknownCode};

/// The code of the bucket of bookings that name no category.
pub const NO_CATEGORY: &str = "none";

/// One live booking as the statistics see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingFacts {
    /// When its slot starts (Unix microseconds).
    pub starts_at: i64,
    /// Category codes, comma-separated as stored (empty: none named).
    pub categories: String,
    /// Marked attended (`Some(true)`), no-show (`Some(false)`), or not yet.
    pub attended: Option<bool>,
    /// Linked to a case (turned into one, or booked for one).
    pub has_case: bool,
}

/// Which bucket a booking counts in: a category, or none named (last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Category(Category),
    None,
}

impl Bucket {
    /// Every bucket in table order: the categories as PRODUCT.md lists
    /// them, then `none`.
    pub fn all() -> impl Iterator<Item = Bucket> {
        Category::ALL
            .into_iter()
            .map(Bucket::Category)
            .chain(std::iter::once(Bucket::None))
    }

    /// Its place in table order.
    fn index(self) -> usize {
        match self {
            Bucket::Category(c) => Category::ALL
                .iter()
                .position(|a| *a == c)
                .expect("every category is in ALL"),
            Bucket::None => Category::ALL.len(),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Category(c) => c.as_str(),
            Bucket::None => NO_CATEGORY,
        }
    }

    pub fn label(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (Bucket::Category(c), lang) => c.label(lang),
            (Bucket::None, Lang::Ja) => "分野なし",
            (Bucket::None, Lang::En) => "No category",
        }
    }
}

/// The counts of one cell (or of a total).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenHoursCounts {
    /// Live bookings.
    pub bookings: i64,
    pub attended: i64,
    pub no_show: i64,
    /// Neither marked attended nor no-show yet.
    pub unmarked: i64,
    /// Linked to a case.
    pub cases: i64,
}

impl OpenHoursCounts {
    fn add(&mut self, booking: &BookingFacts) {
        self.bookings += 1;
        match booking.attended {
            Some(true) => self.attended += 1,
            Some(false) => self.no_show += 1,
            None => self.unmarked += 1,
        }
        if booking.has_case {
            self.cases += 1;
        }
    }
}

/// One month and bucket with at least one booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonthRow {
    /// `YYYY-MM` of the slot's start in JST.
    pub month: String,
    pub bucket: Bucket,
    pub counts: OpenHoursCounts,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenHoursTable {
    /// Months ascending, then buckets in table order; only cells with a
    /// booking (a range of years stays short).
    pub months: Vec<MonthRow>,
    /// Per bucket over the whole range, every bucket present, table order.
    pub totals: Vec<(Bucket, OpenHoursCounts)>,
    /// Every booking once, whatever its categories.
    pub total: OpenHoursCounts,
}

/// The buckets a booking counts in: each category it names once, or none.
fn buckets(codes: &str) -> Result<Vec<Bucket>, UnknownCode> {
    let mut buckets = Vec::new();
    for code in codes.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let bucket = Bucket::Category(code.parse()?);
        if !buckets.contains(&bucket) {
            buckets.push(bucket);
        }
    }
    if buckets.is_empty() {
        buckets.push(Bucket::None);
    }
    Ok(buckets)
}

/// Counts live bookings by month (JST) and bucket. A category code the
/// vocabulary does not know is an error: dropping it would make the table
/// inexact.
pub fn open_hours_table(
    bookings: impl IntoIterator<Item = BookingFacts>,
) -> Result<OpenHoursTable, UnknownCode> {
    // Keyed by the bucket's place, so the map's order is the table's.
    let mut cells: BTreeMap<(String, usize), (Bucket, OpenHoursCounts)> = BTreeMap::new();
    let mut per_bucket = [OpenHoursCounts::default(); Category::ALL.len() + 1];
    let mut total = OpenHoursCounts::default();
    for booking in bookings {
        let month = month_key(desk_date(booking.starts_at));
        for bucket in buckets(&booking.categories)? {
            cells
                .entry((month.clone(), bucket.index()))
                .or_insert((bucket, OpenHoursCounts::default()))
                .1
                .add(&booking);
            per_bucket[bucket.index()].add(&booking);
        }
        total.add(&booking);
    }
    Ok(OpenHoursTable {
        months: cells
            .into_iter()
            .map(|((month, _), (bucket, counts))| MonthRow {
                month,
                bucket,
                counts,
            })
            .collect(),
        totals: Bucket::all()
            .map(|bucket| (bucket, per_bucket[bucket.index()]))
            .collect(),
        total,
    })
}

/// The table as CSV for Excel: BOM, CRLF, one line per month and bucket,
/// then one total line per bucket (month `total`), then the total of every
/// booking once (bucket `all`).
pub fn open_hours_csv(table: &OpenHoursTable, headers: CsvHeaders) -> Vec<u8> {
    let header: [&str; 7] = match headers {
        CsvHeaders::Codes => [
            "month", "category", "bookings", "attended", "no_show", "unmarked", "cases",
        ],
        CsvHeaders::Labels(Lang::Ja) => {
            ["月", "相談分野", "予約", "出席", "欠席", "未記録", "相談化"]
        }
        CsvHeaders::Labels(Lang::En) => [
            "Month",
            "Category",
            "Bookings",
            "Attended",
            "No-show",
            "Not marked",
            "Cases",
        ],
    };
    let (total_label, all_label) = match headers {
        CsvHeaders::Codes => ("total", "all"),
        CsvHeaders::Labels(Lang::Ja) => ("合計", "すべて"),
        CsvHeaders::Labels(Lang::En) => ("Total", "All"),
    };
    let bucket_name = |bucket: Bucket| match headers {
        CsvHeaders::Codes => bucket.as_str(),
        CsvHeaders::Labels(lang) => bucket.label(lang),
    };
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(UTF8_BOM.to_vec());
    writer
        .write_record(header)
        .expect("writing CSV to memory cannot fail");
    let mut write = |first: &str, second: &str, c: &OpenHoursCounts| {
        let numbers = [c.bookings, c.attended, c.no_show, c.unmarked, c.cases];
        let mut record = vec![first.to_owned(), second.to_owned()];
        record.extend(numbers.iter().map(i64::to_string));
        writer
            .write_record(&record)
            .expect("writing CSV to memory cannot fail");
    };
    for row in &table.months {
        write(&row.month, bucket_name(row.bucket), &row.counts);
    }
    for (bucket, counts) in &table.totals {
        write(total_label, bucket_name(*bucket), counts);
    }
    write(total_label, all_label, &table.total);
    writer
        .into_inner()
        .expect("flushing CSV to memory cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// Microseconds of a JST wall-clock time.
    fn jst(y: i32, m: u32, d: u32, h: u32) -> i64 {
        super::super::case::desk_offset()
            .with_ymd_and_hms(y, m, d, h, 0, 0)
            .unwrap()
            .timestamp_micros()
    }

    fn booking(
        starts_at: i64,
        categories: &str,
        attended: Option<bool>,
        case: bool,
    ) -> BookingFacts {
        BookingFacts {
            starts_at,
            categories: categories.to_owned(),
            attended,
            has_case: case,
        }
    }

    fn counts(
        bookings: i64,
        attended: i64,
        no_show: i64,
        unmarked: i64,
        cases: i64,
    ) -> OpenHoursCounts {
        OpenHoursCounts {
            bookings,
            attended,
            no_show,
            unmarked,
            cases,
        }
    }

    #[test]
    fn counts_by_jst_month_and_each_category_named() {
        let table = open_hours_table([
            // 2026-12-31 10:00 JST is 01:00 UTC the same day; 2027-01-01
            // 00:30 JST is still 2026 in UTC: months go by JST.
            booking(
                jst(2026, 12, 31, 10),
                "regulatory,ip_strategy",
                Some(true),
                true,
            ),
            booking(jst(2026, 12, 1, 11), "regulatory", Some(false), false),
            booking(jst(2027, 1, 1, 0) + 30 * 60_000_000, "", None, false),
            booking(jst(2027, 1, 4, 10), "ip_strategy,ip_strategy", None, true),
        ])
        .unwrap();
        let cells: Vec<(&str, &str, OpenHoursCounts)> = table
            .months
            .iter()
            .map(|r| (r.month.as_str(), r.bucket.as_str(), r.counts))
            .collect();
        assert_eq!(
            cells,
            vec![
                ("2026-12", "regulatory", counts(2, 1, 1, 0, 1)),
                ("2026-12", "ip_strategy", counts(1, 1, 0, 0, 1)),
                ("2027-01", "ip_strategy", counts(1, 0, 0, 1, 1)),
                ("2027-01", "none", counts(1, 0, 0, 1, 0)),
            ]
        );
        assert_eq!(table.totals.len(), Category::ALL.len() + 1);
        assert_eq!(
            table.totals[0],
            (
                Bucket::Category(Category::Regulatory),
                counts(2, 1, 1, 0, 1)
            )
        );
        let ip = Bucket::Category(Category::IpStrategy);
        assert_eq!(
            table.totals.iter().find(|(b, _)| *b == ip).unwrap().1,
            counts(2, 1, 0, 1, 2)
        );
        assert_eq!(
            table.totals.last().unwrap(),
            &(Bucket::None, counts(1, 0, 0, 1, 0))
        );
        // Each booking once in the total, though one named two categories.
        assert_eq!(table.total, counts(4, 1, 1, 2, 2));
    }

    #[test]
    fn no_booking_gives_zero_totals_for_every_bucket() {
        let table = open_hours_table([]).unwrap();
        assert!(table.months.is_empty());
        assert_eq!(table.total, OpenHoursCounts::default());
        let codes: Vec<&str> = table.totals.iter().map(|(b, _)| b.as_str()).collect();
        assert_eq!(codes.first(), Some(&"regulatory"));
        assert_eq!(codes.last(), Some(&"none"));
        assert!(
            table
                .totals
                .iter()
                .all(|(_, c)| *c == OpenHoursCounts::default())
        );
    }

    #[test]
    fn an_unknown_category_is_an_error() {
        let error = open_hours_table([booking(0, "astrology", None, false)]).unwrap_err();
        assert_eq!(error.value, "astrology");
    }

    #[test]
    fn csv_has_bom_crlf_rows_and_totals_in_the_chosen_language() {
        let table =
            open_hours_table([booking(jst(2026, 12, 7, 10), "marketing", Some(true), true)])
                .unwrap();
        let csv = open_hours_csv(&table, CsvHeaders::Codes);
        assert!(csv.starts_with(UTF8_BOM));
        let text = std::str::from_utf8(&csv[UTF8_BOM.len()..]).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "month,category,bookings,attended,no_show,unmarked,cases"
        );
        assert_eq!(lines[1], "2026-12,marketing,1,1,0,0,1");
        assert_eq!(lines[2], "total,regulatory,0,0,0,0,0");
        assert_eq!(lines[3], "total,marketing,1,1,0,0,1");
        assert_eq!(lines[11], "total,none,0,0,0,0,0");
        assert_eq!(lines[12], "total,all,1,1,0,0,1");
        assert_eq!(lines[13], "", "ends with CRLF");
        assert_eq!(lines.len(), 14);

        let ja = open_hours_csv(&table, CsvHeaders::Labels(Lang::Ja));
        let text = std::str::from_utf8(&ja[UTF8_BOM.len()..]).unwrap();
        assert!(
            text.starts_with(
                "月,相談分野,予約,出席,欠席,未記録,相談化\r\n2026-12,マーケティング,1,"
            )
        );
        assert!(text.ends_with("合計,すべて,1,1,0,0,1\r\n"));
    }
}
