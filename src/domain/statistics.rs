//! Statistics for program managers, in plain Rust: the category table
//! (counts and half-up percentages, exact integer arithmetic), its CSV form,
//! trend buckets, medians and the business-day rule of the pipeline.
//!
//! Everything here works on counts the database already aggregated; see
//! docs/statistics.md for the definitions.

use chrono::{Datelike, Duration, NaiveDate};

use super::calendar::BusinessCalendar;
use super::vocabulary::{Category, Lang, ProductType, UnknownCode};

/// Product types and categories as table indices (their `ALL` order).
fn product_index(product_type: ProductType) -> usize {
    ProductType::ALL
        .iter()
        .position(|p| *p == product_type)
        .expect("every product type is in ALL")
}

fn category_index(category: Category) -> usize {
    Category::ALL
        .iter()
        .position(|c| *c == category)
        .expect("every category is in ALL")
}

/// `count / total` as a whole percentage, rounded half up, in exact integer
/// arithmetic: `floor((200·count + total) / (2·total))`. 0 when `total` is 0.
pub fn percent_half_up(count: i64, total: i64) -> i64 {
    if total <= 0 {
        return 0;
    }
    (200 * count + total).div_euclid(2 * total)
}

/// One value per category, in `Category::ALL` order; serialises as an object
/// keyed by category code in that order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PerCategory(pub [i64; Category::ALL.len()]);

impl PerCategory {
    pub fn get(&self, category: Category) -> i64 {
        self.0[category_index(category)]
    }

    pub fn iter(&self) -> impl Iterator<Item = (Category, i64)> + '_ {
        Category::ALL.into_iter().zip(self.0)
    }
}

impl serde::Serialize for PerCategory {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (category, value) in self.iter() {
            map.serialize_entry(category.as_str(), &value)?;
        }
        map.end()
    }
}

/// Case counts per product type and per (product type, category), as summed
/// from the rollups (or recounted from the cases).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CategoryCounts {
    cases: [i64; ProductType::ALL.len()],
    categories: [PerCategory; ProductType::ALL.len()],
}

impl CategoryCounts {
    pub fn add_cases(&mut self, product_type: ProductType, cases: i64) {
        self.cases[product_index(product_type)] += cases;
    }

    pub fn add_category(&mut self, product_type: ProductType, category: Category, cases: i64) {
        self.categories[product_index(product_type)].0[category_index(category)] += cases;
    }

    /// From database rows of codes: `(product_type, cases)` and
    /// `(product_type, category, cases)`. A code the vocabulary does not know
    /// is an error: silently dropping it would make the table inexact.
    pub fn from_rows(
        cases: impl IntoIterator<Item = (String, i64)>,
        categories: impl IntoIterator<Item = (String, String, i64)>,
    ) -> Result<Self, UnknownCode> {
        let mut counts = Self::default();
        for (product_type, n) in cases {
            counts.add_cases(product_type.parse()?, n);
        }
        for (product_type, category, n) in categories {
            counts.add_category(product_type.parse()?, category.parse()?, n);
        }
        Ok(counts)
    }

    pub fn cases(&self, product_type: ProductType) -> i64 {
        self.cases[product_index(product_type)]
    }

    /// Takes away `other`'s counts cell by cell: the counts of a subset of
    /// the cases (those closed as duplicates) leave the counts of the rest.
    pub fn subtract(&mut self, other: &CategoryCounts) {
        for (mine, theirs) in self.cases.iter_mut().zip(other.cases) {
            *mine -= theirs;
        }
        for (mine, theirs) in self.categories.iter_mut().zip(other.categories) {
            for (m, t) in mine.0.iter_mut().zip(theirs.0) {
                *m -= t;
            }
        }
    }

    pub fn count(&self, product_type: ProductType, category: Category) -> i64 {
        self.categories[product_index(product_type)].get(category)
    }

    /// The published table: a row per product type in `ALL` order, every
    /// category present, and the total row.
    pub fn table(&self) -> CategoryTable {
        let rows: Vec<TableRow> = ProductType::ALL
            .into_iter()
            .map(|p| {
                TableRow::new(
                    Some(p),
                    self.cases[product_index(p)],
                    self.categories[product_index(p)],
                )
            })
            .collect();
        let mut total_counts = PerCategory::default();
        for row in &rows {
            for (i, value) in row.counts.0.iter().enumerate() {
                total_counts.0[i] += value;
            }
        }
        let total_cases = rows.iter().map(|r| r.cases).sum();
        CategoryTable {
            total: TableRow::new(None, total_cases, total_counts),
            rows,
        }
    }
}

/// A line of the category table; `product_type` is None on the total row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRow {
    pub product_type: Option<ProductType>,
    pub cases: i64,
    pub counts: PerCategory,
    /// `counts / cases`, rounded half up (multiple answers: no sum to 100).
    pub percents: PerCategory,
}

impl TableRow {
    fn new(product_type: Option<ProductType>, cases: i64, counts: PerCategory) -> Self {
        let mut percents = PerCategory::default();
        for (i, count) in counts.0.iter().enumerate() {
            percents.0[i] = percent_half_up(*count, cases);
        }
        Self {
            product_type,
            cases,
            counts,
            percents,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryTable {
    pub rows: Vec<TableRow>,
    pub total: TableRow,
}

// ---------------------------------------------------------------- CSV

/// How the CSV export names its columns and rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvHeaders {
    /// API codes (`regulatory`, `medical_device`): stable for scripts.
    Codes,
    /// Human labels in a language (`法規制対応`, `医療機器`).
    Labels(Lang),
}

/// The UTF-8 byte-order mark: without it Excel reads UTF-8 as the local
/// code page and garbles Japanese.
pub const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The category table as CSV: BOM, CRLF line ends, one column per category
/// count followed by its percentage column, the total row last.
pub fn category_csv(table: &CategoryTable, headers: CsvHeaders) -> Vec<u8> {
    let (product_header, cases_header, total_label) = match headers {
        CsvHeaders::Codes => ("product_type", "cases", "total"),
        CsvHeaders::Labels(Lang::Ja) => ("製品種別", "相談件数", "合計"),
        CsvHeaders::Labels(Lang::En) => ("Product type", "Cases", "Total"),
    };
    let mut header = vec![product_header.to_owned(), cases_header.to_owned()];
    for category in Category::ALL {
        match headers {
            CsvHeaders::Codes => {
                header.push(category.as_str().to_owned());
                header.push(format!("{}_percent", category.as_str()));
            }
            CsvHeaders::Labels(lang) => {
                header.push(category.label(lang).to_owned());
                header.push(format!("{} (%)", category.label(lang)));
            }
        }
    }
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(UTF8_BOM.to_vec());
    let write = |writer: &mut csv::Writer<Vec<u8>>, record: Vec<String>| {
        writer
            .write_record(&record)
            .expect("writing CSV to memory cannot fail");
    };
    write(&mut writer, header);
    for row in table.rows.iter().chain(std::iter::once(&table.total)) {
        let name = match (row.product_type, headers) {
            (None, _) => total_label.to_owned(),
            (Some(p), CsvHeaders::Codes) => p.as_str().to_owned(),
            (Some(p), CsvHeaders::Labels(lang)) => p.label(lang).to_owned(),
        };
        let mut record = vec![name, row.cases.to_string()];
        for ((_, count), (_, percent)) in row.counts.iter().zip(row.percents.iter()) {
            record.push(count.to_string());
            record.push(percent.to_string());
        }
        write(&mut writer, record);
    }
    writer
        .into_inner()
        .expect("flushing CSV to memory cannot fail")
}

// ---------------------------------------------------------------- dates

/// `YYYY-MM-DD`, strictly (the API's date format).
pub fn parse_date(raw: &str) -> Result<NaiveDate, String> {
    let valid_shape = raw.len() == 10
        && raw.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    valid_shape
        .then(|| NaiveDate::parse_from_str(raw, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| format!("must be a date YYYY-MM-DD (got {raw:?})"))
}

/// How a range of received dates is summed: whole months from the monthly
/// rollups, the partial months at either end from the daily ones. Any range
/// then reads at most ~120 month rows and ~60 day rows per cell kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangePlan {
    /// Inclusive `YYYY-MM` bounds of the whole months, if the range holds any.
    pub months: Option<(String, String)>,
    /// Inclusive `YYYY-MM-DD` bounds of the day spans (at most two).
    pub days: Vec<(String, String)>,
}

impl RangePlan {
    /// Whether the range holds `day` (`YYYY-MM-DD`): for a case not yet in
    /// the rollups, counted beside them.
    pub fn covers(&self, day: &str) -> bool {
        // ISO dates and months compare as text in calendar order.
        let in_months = self.months.as_ref().is_some_and(|(first, last)| {
            let month = day.get(..7).unwrap_or(day);
            first.as_str() <= month && month <= last.as_str()
        });
        in_months
            || self
                .days
                .iter()
                .any(|(from, to)| from.as_str() <= day && day <= to.as_str())
    }
}

/// `YYYY-MM` of a day (the monthly rollups' key).
pub fn month_key(day: NaiveDate) -> String {
    format!("{:04}-{:02}", day.year(), day.month())
}

pub fn plan_range(from: NaiveDate, to: NaiveDate) -> RangePlan {
    let month_start = |d: NaiveDate| d.with_day(1).expect("every month has a 1st");
    let first_whole = if from.day() == 1 {
        from
    } else {
        month_start(from)
            .checked_add_months(chrono::Months::new(1))
            .expect("date in range")
    };
    let is_month_end = |d: NaiveDate| d.succ_opt().is_none_or(|next| next.day() == 1);
    let last_whole_end = if is_month_end(to) {
        to
    } else {
        month_start(to) - Duration::days(1)
    };
    if from > to || first_whole > last_whole_end {
        return RangePlan {
            months: None,
            days: if from > to {
                Vec::new()
            } else {
                vec![(from.to_string(), to.to_string())]
            },
        };
    }
    let mut days = Vec::new();
    if from < first_whole {
        days.push((
            from.to_string(),
            (first_whole - Duration::days(1)).to_string(),
        ));
    }
    if to > last_whole_end {
        days.push((
            (last_whole_end + Duration::days(1)).to_string(),
            to.to_string(),
        ));
    }
    RangePlan {
        months: Some((month_key(first_whole), month_key(last_whole_end))),
        days,
    }
}

/// The first day of a rollup key: a day `YYYY-MM-DD` or a month `YYYY-MM`.
pub fn period_start(key: &str) -> Result<NaiveDate, String> {
    if key.len() == 7 {
        parse_date(&format!("{key}-01"))
    } else {
        parse_date(key)
    }
}

/// Trend granularity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Month,
    Year,
}

impl std::str::FromStr for Interval {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "month" => Ok(Interval::Month),
            "year" => Ok(Interval::Year),
            other => Err(format!("must be month or year (got {other:?})")),
        }
    }
}

/// At most this many periods in one trend answer (a century of months).
pub const MAX_TREND_PERIODS: usize = 1200;

impl Interval {
    /// The period a day falls in: `2018-02` or `2018`.
    pub fn period(self, day: NaiveDate) -> String {
        match self {
            Interval::Month => format!("{:04}-{:02}", day.year(), day.month()),
            Interval::Year => format!("{:04}", day.year()),
        }
    }

    /// Every period from the one holding `from` to the one holding `to`,
    /// ascending, so empty periods are present with zeros.
    pub fn periods(self, from: NaiveDate, to: NaiveDate) -> Result<Vec<String>, String> {
        if from > to {
            return Ok(Vec::new());
        }
        let months = |d: NaiveDate| i64::from(d.year()) * 12 + i64::from(d.month0());
        let count = match self {
            Interval::Month => months(to) - months(from) + 1,
            Interval::Year => i64::from(to.year() - from.year()) + 1,
        };
        if count > MAX_TREND_PERIODS as i64 {
            return Err(format!(
                "spans {count} periods; at most {MAX_TREND_PERIODS} per request"
            ));
        }
        let start = months(from);
        Ok((0..count)
            .map(|i| match self {
                Interval::Month => {
                    let m = start + i;
                    format!("{:04}-{:02}", m.div_euclid(12), m.rem_euclid(12) + 1)
                }
                Interval::Year => format!("{:04}", i64::from(from.year()) + i),
            })
            .collect())
    }
}

/// Cases per period and product type, in `periods` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrendPoint {
    pub period: String,
    /// Indexed like `ProductType::ALL`.
    pub cases: [i64; ProductType::ALL.len()],
}

impl TrendPoint {
    pub fn total(&self) -> i64 {
        self.cases.iter().sum()
    }
}

/// Buckets daily case counts (`(day, product_type, cases)`) into periods.
pub fn trend(
    periods: &[String],
    interval: Interval,
    daily: impl IntoIterator<Item = (NaiveDate, ProductType, i64)>,
) -> Vec<TrendPoint> {
    let mut points: Vec<TrendPoint> = periods
        .iter()
        .map(|period| TrendPoint {
            period: period.clone(),
            cases: [0; ProductType::ALL.len()],
        })
        .collect();
    for (day, product_type, cases) in daily {
        let period = interval.period(day);
        // Periods are sorted and fixed-width, so binary search finds them.
        if let Ok(i) = periods.binary_search(&period) {
            points[i].cases[product_index(product_type)] += cases;
        }
    }
    points
}

// ---------------------------------------------------------------- medians

/// Where the median sits among `n` sorted values: `(offset, count)` of the
/// one (odd `n`) or two (even `n`) middle values. None when `n` is 0.
pub fn median_window(n: i64) -> Option<(i64, i64)> {
    match n {
        n if n <= 0 => None,
        n if n % 2 == 1 => Some((n / 2, 1)),
        n => Some((n / 2 - 1, 2)),
    }
}

/// The median from the middle value(s) that `median_window` points at: the
/// value itself, or the mean of the two, rounded down.
pub fn median_of_middle(middle: &[i64]) -> Option<i64> {
    match middle {
        [one] => Some(*one),
        [a, b] => Some(a + (b - a).div_euclid(2)),
        _ => None,
    }
}

/// The median of unsorted values (what the database computes in parts).
pub fn median(values: &[i64]) -> Option<i64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let (offset, count) = median_window(sorted.len() as i64)?;
    median_of_middle(&sorted[offset as usize..(offset + count) as usize])
}

// ---------------------------------------------------------------- overdue triage

/// A case received on `received` is overdue for triage on `today` when its
/// due day (`days` business days later) has passed: `today > due`. This is
/// the rule of the supporters' overdue reminder, with the same calendar.
pub fn is_overdue(
    calendar: &BusinessCalendar,
    received: NaiveDate,
    today: NaiveDate,
    days: u32,
) -> bool {
    today > calendar.add_business_days(received, days)
}

/// Cases received strictly before this day are overdue on `today`: the
/// `days`th business day before `today` (`today` itself when 0). A query can
/// compare received dates with it directly.
pub fn overdue_cutoff(calendar: &BusinessCalendar, today: NaiveDate, days: u32) -> NaiveDate {
    let mut current = today;
    let mut left = days;
    while left > 0 {
        current -= Duration::days(1);
        if calendar.is_business_day(current) {
            left -= 1;
        }
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;
    use Category as C;
    use ProductType as P;

    /// PRODUCT.md's published table: cases, then the nine category counts.
    const PUBLISHED: [(P, i64, [i64; 9]); 4] = [
        (P::Drug, 249, [111, 53, 85, 98, 62, 60, 41, 38, 54]),
        (
            P::MedicalDevice,
            494,
            [285, 161, 170, 159, 126, 106, 108, 141, 118],
        ),
        (P::Regenerative, 90, [50, 18, 29, 31, 21, 14, 13, 11, 19]),
        (P::Other, 205, [79, 65, 44, 58, 42, 31, 33, 21, 57]),
    ];

    fn published_counts() -> CategoryCounts {
        let mut counts = CategoryCounts::default();
        for (p, cases, per_category) in PUBLISHED {
            counts.add_cases(p, cases);
            for (c, n) in C::ALL.into_iter().zip(per_category) {
                counts.add_category(p, c, n);
            }
        }
        counts
    }

    #[test]
    fn percent_rounds_half_up_exactly() {
        assert_eq!(percent_half_up(111, 249), 45); // 44.58
        assert_eq!(percent_half_up(1, 8), 13); // 12.5 → 13
        assert_eq!(percent_half_up(1, 200), 1); // 0.5 → 1
        assert_eq!(percent_half_up(1, 201), 0); // 0.497 → 0
        assert_eq!(percent_half_up(3, 8), 38); // 37.5 → 38
        assert_eq!(percent_half_up(0, 10), 0);
        assert_eq!(percent_half_up(10, 10), 100);
        assert_eq!(percent_half_up(5, 0), 0);
        assert_eq!(percent_half_up(0, 0), 0);
        // Large counts stay exact (no float rounding at .5 boundaries).
        assert_eq!(percent_half_up(500_000_001, 1_000_000_000), 50);
        assert_eq!(percent_half_up(5_000_000, 1_000_000_000), 1); // 0.5 → 1
        assert_eq!(percent_half_up(4_999_999, 1_000_000_000), 0);
    }

    #[test]
    fn reproduces_the_published_table() {
        let table = published_counts().table();
        let percents: [[i64; 9]; 4] = [
            [45, 21, 34, 39, 25, 24, 16, 15, 22],
            [58, 33, 34, 32, 26, 21, 22, 29, 24],
            [56, 20, 32, 34, 23, 16, 14, 12, 21],
            [39, 32, 21, 28, 20, 15, 16, 10, 28],
        ];
        assert_eq!(table.rows.len(), 4);
        for ((row, (p, cases, counts)), percents) in table.rows.iter().zip(PUBLISHED).zip(percents)
        {
            assert_eq!(row.product_type, Some(p));
            assert_eq!(row.cases, cases);
            assert_eq!(row.counts.0, counts, "{p} counts");
            assert_eq!(row.percents.0, percents, "{p} percents");
        }
        assert_eq!(table.total.product_type, None);
        assert_eq!(table.total.cases, 1038);
        assert_eq!(
            table.total.counts.0,
            [525, 297, 328, 346, 251, 211, 195, 211, 248]
        );
        assert_eq!(table.total.percents.0, [51, 29, 32, 33, 24, 20, 19, 20, 24]);
    }

    #[test]
    fn empty_counts_give_every_row_and_category_with_zeros() {
        let table = CategoryCounts::default().table();
        let products: Vec<_> = table.rows.iter().map(|r| r.product_type).collect();
        assert_eq!(products, P::ALL.map(Some).to_vec());
        for row in table.rows.iter().chain([&table.total]) {
            assert_eq!(row.cases, 0);
            assert_eq!(row.counts.0, [0; 9]);
            assert_eq!(row.percents.0, [0; 9]);
        }
    }

    #[test]
    fn from_rows_parses_codes_and_refuses_unknown_ones() {
        let counts = CategoryCounts::from_rows(
            [("drug".to_owned(), 2), ("drug".to_owned(), 1)],
            [("drug".to_owned(), "ip_strategy".to_owned(), 2)],
        )
        .unwrap();
        assert_eq!(counts.cases(P::Drug), 3);
        assert_eq!(counts.count(P::Drug, C::IpStrategy), 2);
        assert!(CategoryCounts::from_rows([("pharma".to_owned(), 1)], []).is_err());
        assert!(
            CategoryCounts::from_rows([], [("drug".to_owned(), "astrology".to_owned(), 1)])
                .is_err()
        );
    }

    #[test]
    fn subtracting_a_subsets_counts_leaves_the_rest_and_its_percentages() {
        let mut counts = CategoryCounts::from_rows(
            [("drug".to_owned(), 4), ("other".to_owned(), 1)],
            [
                ("drug".to_owned(), "ip_strategy".to_owned(), 2),
                ("drug".to_owned(), "regulatory".to_owned(), 3),
                ("other".to_owned(), "other".to_owned(), 1),
            ],
        )
        .unwrap();
        let duplicates = CategoryCounts::from_rows(
            [("drug".to_owned(), 1)],
            [("drug".to_owned(), "ip_strategy".to_owned(), 1)],
        )
        .unwrap();
        counts.subtract(&duplicates);
        assert_eq!(counts.cases(P::Drug), 3);
        assert_eq!(counts.count(P::Drug, C::IpStrategy), 1);
        assert_eq!(counts.count(P::Drug, C::Regulatory), 3);
        assert_eq!(counts.cases(P::Other), 1);
        let table = counts.table();
        assert_eq!(table.total.cases, 4);
        // 1 of 3 drug cases: 33 %; 3 of 3: 100 %.
        assert_eq!(table.rows[0].percents.get(C::IpStrategy), 33);
        assert_eq!(table.rows[0].percents.get(C::Regulatory), 100);
        counts.subtract(&CategoryCounts::default());
        assert_eq!(counts.table(), table);
    }

    #[test]
    fn per_category_serialises_in_table_order() {
        let mut values = PerCategory::default();
        values.0[0] = 111;
        values.0[8] = 54;
        let json = serde_json::to_string(&values).unwrap();
        assert!(
            json.starts_with(r#"{"regulatory":111,"marketing":0,"#),
            "{json}"
        );
        assert!(json.ends_with(r#""reimbursement":0,"other":54}"#), "{json}");
    }

    fn csv_lines(bytes: &[u8]) -> Vec<String> {
        assert!(bytes.starts_with(UTF8_BOM), "starts with the BOM");
        let text = std::str::from_utf8(&bytes[3..]).unwrap();
        assert!(text.ends_with("\r\n"));
        text.split_terminator("\r\n").map(str::to_owned).collect()
    }

    #[test]
    fn csv_with_codes() {
        let lines = csv_lines(&category_csv(
            &published_counts().table(),
            CsvHeaders::Codes,
        ));
        assert_eq!(lines.len(), 6);
        assert_eq!(
            lines[0],
            "product_type,cases,regulatory,regulatory_percent,marketing,marketing_percent,\
             business_plan,business_plan_percent,fundraising,fundraising_percent,\
             management_strategy,management_strategy_percent,ip_strategy,ip_strategy_percent,\
             international,international_percent,reimbursement,reimbursement_percent,\
             other,other_percent"
        );
        assert_eq!(
            lines[1],
            "drug,249,111,45,53,21,85,34,98,39,62,25,60,24,41,16,38,15,54,22"
        );
        assert_eq!(
            lines[5],
            "total,1038,525,51,297,29,328,32,346,33,251,24,211,20,195,19,211,20,248,24"
        );
    }

    #[test]
    fn csv_with_japanese_and_english_labels() {
        let table = published_counts().table();
        let ja = csv_lines(&category_csv(&table, CsvHeaders::Labels(Lang::Ja)));
        assert!(ja[0].starts_with("製品種別,相談件数,法規制対応,法規制対応 (%),マーケティング,"));
        assert!(ja[0].contains(",保険収載,保険収載 (%),その他,その他 (%)"));
        assert!(ja[2].starts_with("医療機器,494,285,58,"));
        assert!(ja[3].starts_with("再生医療等製品,90,"));
        assert!(ja[5].starts_with("合計,1038,525,51,"));
        let en = csv_lines(&category_csv(&table, CsvHeaders::Labels(Lang::En)));
        assert!(en[0].starts_with("Product type,Cases,Regulatory,Regulatory (%),"));
        assert!(en[2].starts_with("Medical device,494,"));
        assert!(en[5].starts_with("Total,1038,"));
    }

    #[test]
    fn dates_are_strict() {
        assert_eq!(
            parse_date("2018-02-05").unwrap(),
            NaiveDate::from_ymd_opt(2018, 2, 5).unwrap()
        );
        for bad in [
            "2018-2-5",
            "2018/02/05",
            "2018-02-30",
            "20180205",
            "",
            " 2018-02-05",
        ] {
            assert!(parse_date(bad).is_err(), "{bad:?}");
        }
    }

    fn day(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    #[test]
    fn trend_periods_cover_the_range_with_zeros() {
        let periods = Interval::Month
            .periods(day("2018-11-30"), day("2019-02-01"))
            .unwrap();
        assert_eq!(periods, ["2018-11", "2018-12", "2019-01", "2019-02"]);
        let years = Interval::Year
            .periods(day("2018-02-05"), day("2022-12-31"))
            .unwrap();
        assert_eq!(years, ["2018", "2019", "2020", "2021", "2022"]);
        assert!(
            Interval::Month
                .periods(day("1900-01-01"), day("2022-12-31"))
                .is_err()
        );
        assert!(
            Interval::Month
                .periods(day("2020-01-02"), day("2020-01-01"))
                .unwrap()
                .is_empty()
        );

        let points = trend(
            &periods,
            Interval::Month,
            [
                (day("2018-11-30"), P::Drug, 2),
                (day("2018-11-01"), P::Drug, 1),
                (day("2019-02-01"), P::Other, 4),
                (day("2019-03-01"), P::Other, 100), // outside: ignored
            ],
        );
        assert_eq!(points[0].cases, [3, 0, 0, 0]);
        assert_eq!(points[1].total(), 0);
        assert_eq!(points[3].cases, [0, 0, 0, 4]);
    }

    type Span = (String, String);

    fn plan(from: &str, to: &str) -> (Option<Span>, Vec<Span>) {
        let p = plan_range(day(from), day(to));
        (p.months, p.days)
    }

    fn pair(a: &str, b: &str) -> Span {
        (a.to_owned(), b.to_owned())
    }

    #[test]
    fn ranges_split_into_whole_months_and_edge_days() {
        assert_eq!(
            plan("2018-02-05", "2022-12-31"),
            (
                Some(pair("2018-03", "2022-12")),
                vec![pair("2018-02-05", "2018-02-28")]
            )
        );
        assert_eq!(
            plan("2020-01-01", "2020-12-31"),
            (Some(pair("2020-01", "2020-12")), vec![])
        );
        assert_eq!(
            plan("2020-02-01", "2020-02-29"),
            (Some(pair("2020-02", "2020-02")), vec![])
        );
        assert_eq!(
            plan("2020-02-01", "2020-02-28"),
            (None, vec![pair("2020-02-01", "2020-02-28")])
        );
        assert_eq!(
            plan("2020-06-15", "2020-07-14"),
            (None, vec![pair("2020-06-15", "2020-07-14")])
        );
        assert_eq!(
            plan("2020-06-15", "2020-08-14"),
            (
                Some(pair("2020-07", "2020-07")),
                vec![
                    pair("2020-06-15", "2020-06-30"),
                    pair("2020-08-01", "2020-08-14")
                ]
            )
        );
        assert_eq!(
            plan("2021-03-03", "2021-03-03"),
            (None, vec![pair("2021-03-03", "2021-03-03")])
        );
        assert_eq!(plan("2021-03-04", "2021-03-03"), (None, vec![]));
    }

    #[test]
    fn a_plan_covers_every_day_once() {
        let start = day("2019-12-01");
        for a in 0..100 {
            for b in a..100 {
                let (from, to) = (start + Duration::days(a), start + Duration::days(b));
                let p = plan_range(from, to);
                let mut covered = Vec::new();
                if let Some((m1, m2)) = &p.months {
                    let mut d = period_start(m1).unwrap();
                    while month_key(d) <= *m2 {
                        covered.push(d);
                        d += Duration::days(1);
                    }
                }
                for (d1, d2) in &p.days {
                    let mut d = day(d1);
                    while d <= day(d2) {
                        covered.push(d);
                        d += Duration::days(1);
                    }
                }
                covered.sort();
                let expected: Vec<NaiveDate> = (a..=b).map(|i| start + Duration::days(i)).collect();
                assert_eq!(covered, expected, "{from}..{to}");
                // `covers` agrees, one day either side included.
                for i in a - 1..=b + 1 {
                    let d = start + Duration::days(i);
                    assert_eq!(
                        p.covers(&d.to_string()),
                        (from..=to).contains(&d),
                        "{d} in {from}..{to}"
                    );
                }
            }
        }
        assert_eq!(period_start("2020-02").unwrap(), day("2020-02-01"));
        assert_eq!(period_start("2020-02-09").unwrap(), day("2020-02-09"));
        assert!(period_start("2020-13").is_err());
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[7]), Some(7));
        assert_eq!(median(&[9, 1, 5]), Some(5));
        assert_eq!(median(&[4, 1, 3, 2]), Some(2)); // (2 + 3) / 2 rounded down
        assert_eq!(median(&[10, 20]), Some(15));
        assert_eq!(median_window(5), Some((2, 1)));
        assert_eq!(median_window(6), Some((2, 2)));
        assert_eq!(median_window(0), None);
    }

    #[test]
    fn overdue_after_three_business_days() {
        let calendar = BusinessCalendar::default();
        // Received Monday 2026-11-23: due Thursday, overdue from Friday.
        assert!(!is_overdue(
            &calendar,
            day("2026-11-23"),
            day("2026-11-26"),
            3
        ));
        assert!(is_overdue(
            &calendar,
            day("2026-11-23"),
            day("2026-11-27"),
            3
        ));
        assert_eq!(
            overdue_cutoff(&calendar, day("2026-11-27"), 3),
            day("2026-11-24")
        );
        // Monday's cutoff reaches back over the weekend.
        assert_eq!(
            overdue_cutoff(&calendar, day("2026-11-30"), 1),
            day("2026-11-27")
        );
    }

    #[test]
    fn overdue_cutoff_agrees_with_is_overdue() {
        let start = day("2026-12-01");
        let calendars = [
            BusinessCalendar::default(),
            BusinessCalendar::new([day("2026-12-31"), day("2027-01-01"), day("2027-01-04")]),
        ];
        for calendar in &calendars {
            for r in 0..50 {
                for t in 0..50 {
                    let received = start + Duration::days(r);
                    let today = start + Duration::days(t);
                    for n in [0, 1, 3, 5] {
                        assert_eq!(
                            is_overdue(calendar, received, today, n),
                            received < overdue_cutoff(calendar, today, n),
                            "received {received}, today {today}, n {n}"
                        );
                    }
                }
            }
        }
    }
}
