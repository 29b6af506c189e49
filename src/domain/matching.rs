//! Expert suggestions for a case: who may advise it, ranked, with reasons.
//! See PRODUCT.md, "Expert registry and matching", and docs/matching.md.
//!
//! Pure: the caller loads the case and the expert pool, [`suggest`] decides.
//!
//! # Exclusions
//!
//! Checked in this order; the first that applies is the one reported:
//!
//! 1. [`Exclusion::ConflictOfInterest`]: one of the expert's (normalized)
//!    conflict names equals the applicant's normalized organisation (see
//!    [`super::conflicts`]); an empty name never matches;
//! 2. [`Exclusion::AlreadyAssigned`]: the expert has an active assignment on
//!    this case;
//! 3. [`Exclusion::DeclinedBefore`]: the expert declined this case;
//! 4. [`Exclusion::Paused`]: `today < paused_until`;
//! 5. [`Exclusion::AtCapacity`]: `active_load >= capacity`.
//!
//! Every excluded expert is reported, whatever their expertise. An expert
//! who is not excluded but covers none of the case's categories is not
//! relevant: neither suggested nor reported.
//!
//! # Score
//!
//! An integer, the sum of these terms and no others:
//!
//! | term | points |
//! |---|---|
//! | each of the case's categories the expert covers | level × [`POINTS_PER_LEVEL`] (10, 20 or 30) |
//! | the expert covers the case's product type | [`PRODUCT_TYPE_POINTS`] (15) |
//! | the expert speaks the case's language | [`LANGUAGE_POINTS`] (10) |
//! | spare capacity | ⌊[`CAPACITY_POINTS`] × (capacity − load) / capacity⌋ (0..=10) |
//!
//! A category listed twice on the case counts once; an expertise listed
//! twice counts at its highest level; levels above 3 count as 3 and level 0
//! as not covered (the API accepts only 1..=3).
//!
//! # Ranking
//!
//! Score descending; ties go to the expert assigned least recently (never
//! assigned first, then the oldest `last_assigned_at`), then to the lower
//! expert id. Expert ids are assumed unique; with that, the result does not
//! depend on the order of the pool.
//!
//! # Cost
//!
//! One pass over the pool, O(1) work and no allocation per relevant expert
//! (reasons are written only for the `limit` experts returned, details only
//! for the excluded ones), then a partial selection of the best `limit`:
//! O(n + k log k) for n experts and k = `limit`.

use std::cmp::Ordering;
use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::vocabulary::{Category, Lang, ProductType};

/// Points per expertise level, for each of the case's categories covered.
pub const POINTS_PER_LEVEL: u32 = 10;
/// Highest expertise level; higher levels are counted as this.
pub const MAX_LEVEL: u8 = 3;
/// Points when the expert covers the case's product type.
pub const PRODUCT_TYPE_POINTS: u32 = 15;
/// Points when the expert speaks the case's language.
pub const LANGUAGE_POINTS: u32 = 10;
/// Points for a fully free expert; scaled down by the share of capacity used.
pub const CAPACITY_POINTS: u32 = 10;

const CATEGORY_COUNT: usize = Category::ALL.len();
// A case's categories are kept as bits of a u16.
const _: () = assert!(CATEGORY_COUNT <= 16);

/// What [`suggest`] needs to know about the case.
#[derive(Debug, Clone, Copy)]
pub struct CaseProfile<'a> {
    pub product_type: ProductType,
    pub categories: &'a [Category],
    pub language: Lang,
    /// [`super::conflicts::normalize_organization_name`] of the applicant's
    /// organisation; `""` when there is none (then no conflict can apply).
    pub organization_normalized: &'a str,
    /// Experts who declined this case.
    pub declined_by: &'a [i64],
    /// Experts with an active (proposed or accepted) assignment on this case.
    pub already_assigned: &'a [i64],
}

/// What [`suggest`] needs to know about an expert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpertProfile {
    pub id: i64,
    pub name: String,
    /// Category and level, 1..=3.
    pub expertise: Vec<(Category, u8)>,
    pub product_types: Vec<ProductType>,
    pub languages: Vec<Lang>,
    /// Maximum concurrent active assignments.
    pub capacity: u32,
    /// Proposed plus accepted assignments, over all cases.
    pub active_load: u32,
    /// Paused while `today < paused_until`; `None`: available.
    pub paused_until: Option<NaiveDate>,
    /// Conflict-of-interest organisation names, each as stored by
    /// [`super::conflicts::normalize_for_storage`].
    pub conflicts_normalized: Vec<String>,
    /// When the expert was last assigned (unix microseconds); `None`: never.
    pub last_assigned_at: Option<i64>,
}

/// Why an expert may not be suggested for (or assigned to) a case.
///
/// JSON: `{"reason": "conflict_of_interest", "organization": "medtech"}`,
/// `{"reason": "paused", "until": "2025-05-01"}`,
/// `{"reason": "at_capacity", "load": 3, "capacity": 3}`,
/// `{"reason": "declined_before"}`, `{"reason": "already_assigned"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Exclusion {
    /// `organization` is the normalized name that matched.
    ConflictOfInterest {
        organization: String,
    },
    Paused {
        until: NaiveDate,
    },
    AtCapacity {
        load: u32,
        capacity: u32,
    },
    DeclinedBefore,
    AlreadyAssigned,
}

impl Exclusion {
    /// The API code, as in the `reason` field.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::ConflictOfInterest { .. } => "conflict_of_interest",
            Self::Paused { .. } => "paused",
            Self::AtCapacity { .. } => "at_capacity",
            Self::DeclinedBefore => "declined_before",
            Self::AlreadyAssigned => "already_assigned",
        }
    }
}

/// The English label.
impl fmt::Display for Exclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label(Lang::En))
    }
}

/// One scoring term of a suggestion, as a code with its parameters.
///
/// JSON: `{"code": "covers_category", "category": "regulatory", "level": 3}`,
/// `{"code": "product_type", "product_type": "medical_device"}`,
/// `{"code": "speaks", "language": "ja"}`, `{"code": "does_not_speak",
/// "language": "ja"}`, `{"code": "load", "load": 1, "capacity": 3}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Reason {
    CoversCategory { category: Category, level: u8 },
    ProductType { product_type: ProductType },
    Speaks { language: Lang },
    DoesNotSpeak { language: Lang },
    Load { load: u32, capacity: u32 },
}

impl Reason {
    /// Every code, in the order reasons are listed.
    pub const CODES: [&'static str; 5] = [
        "covers_category",
        "product_type",
        "speaks",
        "does_not_speak",
        "load",
    ];

    /// The API code, as in the `code` field.
    pub const fn code(&self) -> &'static str {
        match self {
            Self::CoversCategory { .. } => "covers_category",
            Self::ProductType { .. } => "product_type",
            Self::Speaks { .. } => "speaks",
            Self::DoesNotSpeak { .. } => "does_not_speak",
            Self::Load { .. } => "load",
        }
    }
}

// ---------------------------------------------------------------- labels
//
// Every label of a reason or an exclusion, in Japanese and English, is here.
// The English ones keep the codes' wording that the API gave before labels
// were localized (`covers regulatory at level 3`).

impl Reason {
    /// The reason in words, in `lang`.
    pub fn label(&self, lang: Lang) -> String {
        match (self, lang) {
            (Self::CoversCategory { category, level }, Lang::Ja) => {
                format!("{}（レベル{level}）", category.label(Lang::Ja))
            }
            (Self::CoversCategory { category, level }, Lang::En) => {
                format!("covers {category} at level {level}")
            }
            (Self::ProductType { product_type }, Lang::Ja) => {
                format!("製品種別が一致（{}）", product_type.label(Lang::Ja))
            }
            (Self::ProductType { product_type }, Lang::En) => {
                format!("product type {product_type}")
            }
            (Self::Speaks { language }, Lang::Ja) => {
                format!("{}で対応可", language.label(Lang::Ja))
            }
            (Self::Speaks { language }, Lang::En) => format!("speaks {language}"),
            (Self::DoesNotSpeak { language }, Lang::Ja) => {
                format!("{}に非対応", language.label(Lang::Ja))
            }
            (Self::DoesNotSpeak { language }, Lang::En) => format!("does not speak {language}"),
            (Self::Load { load, capacity }, Lang::Ja) => {
                format!("担当中 {load} 件（上限 {capacity} 件）")
            }
            (Self::Load { load, capacity }, Lang::En) => format!("load {load} of {capacity}"),
        }
    }
}

impl Exclusion {
    /// The exclusion in words, in `lang`.
    pub fn label(&self, lang: Lang) -> String {
        match (self, lang) {
            (Self::ConflictOfInterest { organization }, Lang::Ja) => {
                format!("申請者の組織（{organization}）との利益相反")
            }
            (Self::ConflictOfInterest { organization }, Lang::En) => {
                format!("conflict of interest with the applicant's organisation ({organization})")
            }
            (Self::Paused { until }, Lang::Ja) => format!("{until} まで休止中"),
            (Self::Paused { until }, Lang::En) => format!("paused until {until}"),
            (Self::AtCapacity { load, capacity }, Lang::Ja) => {
                format!("担当件数が上限（{load} / {capacity} 件）")
            }
            (Self::AtCapacity { load, capacity }, Lang::En) => {
                format!("at capacity: load {load} of {capacity}")
            }
            (Self::DeclinedBefore, Lang::Ja) => "この相談を以前に辞退".to_owned(),
            (Self::DeclinedBefore, Lang::En) => "declined this case before".to_owned(),
            (Self::AlreadyAssigned, Lang::Ja) => "この相談に割り当て済み".to_owned(),
            (Self::AlreadyAssigned, Lang::En) => "already assigned to this case".to_owned(),
        }
    }
}

/// The English label.
impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label(Lang::En))
    }
}

/// A suggested expert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestion {
    pub expert_id: i64,
    pub score: u32,
    /// One per scoring term: each category covered, the product type (when
    /// it fits), the language (spoken or not) and the load.
    pub reasons: Vec<Reason>,
}

impl Suggestion {
    /// The reasons in words, in `lang`.
    pub fn reason_labels(&self, lang: Lang) -> Vec<String> {
        self.reasons.iter().map(|r| r.label(lang)).collect()
    }
}

/// An expert left out, and why. In JSON the [`Exclusion`] is flattened:
/// `{"expert_id": 7, "reason": "paused", "until": "2025-05-01", "detail":
/// "paused until 2025-05-01"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Excluded {
    pub expert_id: i64,
    #[serde(flatten)]
    pub reason: Exclusion,
    /// `reason` in words, in English.
    pub detail: String,
}

/// The answer of [`suggest`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestions {
    /// Best first, at most `limit`.
    pub items: Vec<Suggestion>,
    /// Every excluded expert, by expert id.
    pub excluded: Vec<Excluded>,
}

/// Ranks the pool for a case: at most `limit` suggestions, best first, and
/// every exclusion, by expert id. See the module documentation for the rules.
pub fn suggest(
    case: &CaseProfile,
    experts: &[ExpertProfile],
    today: NaiveDate,
    limit: usize,
) -> Suggestions {
    let context = CaseContext::new(case);
    let mut candidates: Vec<Candidate> = Vec::with_capacity(experts.len());
    let mut excluded = Vec::new();

    for (index, expert) in experts.iter().enumerate() {
        if let Some(reason) = context.exclusion(expert, today) {
            excluded.push(Excluded {
                expert_id: expert.id,
                detail: reason.to_string(),
                reason,
            });
            continue;
        }
        let breakdown = context.breakdown(expert);
        if breakdown.is_relevant() {
            candidates.push(Candidate {
                score: breakdown.total(),
                last_assigned_at: expert.last_assigned_at,
                expert_id: expert.id,
                index,
            });
        }
    }

    if limit == 0 {
        candidates.clear();
    } else if limit < candidates.len() {
        candidates.select_nth_unstable_by(limit - 1, Candidate::rank);
        candidates.truncate(limit);
    }
    candidates.sort_unstable_by(Candidate::rank);

    let items = candidates
        .iter()
        .map(|c| {
            let expert = &experts[c.index];
            Suggestion {
                expert_id: expert.id,
                score: c.score,
                reasons: context.breakdown(expert).reasons(case, expert),
            }
        })
        .collect();
    excluded.sort_by_key(|e| e.expert_id);

    Suggestions { items, excluded }
}

/// Why `expert` may not take `case` today, if anything: the same check, in
/// the same order, as [`suggest`] makes (e.g. to refuse an assignment).
pub fn exclusion_for(
    case: &CaseProfile,
    expert: &ExpertProfile,
    today: NaiveDate,
) -> Option<Exclusion> {
    CaseContext::new(case).exclusion(expert, today)
}

/// The case, prepared once per call.
struct CaseContext<'a> {
    case: &'a CaseProfile<'a>,
    /// Bit `c as usize` set for each of the case's categories.
    categories: u16,
    declined_by: SortedIds,
    already_assigned: SortedIds,
}

impl<'a> CaseContext<'a> {
    fn new(case: &'a CaseProfile<'a>) -> Self {
        Self {
            case,
            categories: case
                .categories
                .iter()
                .fold(0, |mask, &c| mask | (1 << c as usize)),
            declined_by: SortedIds::new(case.declined_by),
            already_assigned: SortedIds::new(case.already_assigned),
        }
    }

    fn exclusion(&self, expert: &ExpertProfile, today: NaiveDate) -> Option<Exclusion> {
        let organization = self.case.organization_normalized;
        if !organization.is_empty()
            && expert
                .conflicts_normalized
                .iter()
                .any(|c| c == organization)
        {
            return Some(Exclusion::ConflictOfInterest {
                organization: organization.to_owned(),
            });
        }
        if self.already_assigned.contains(expert.id) {
            return Some(Exclusion::AlreadyAssigned);
        }
        if self.declined_by.contains(expert.id) {
            return Some(Exclusion::DeclinedBefore);
        }
        if let Some(until) = expert.paused_until
            && today < until
        {
            return Some(Exclusion::Paused { until });
        }
        if expert.active_load >= expert.capacity {
            return Some(Exclusion::AtCapacity {
                load: expert.active_load,
                capacity: expert.capacity,
            });
        }
        None
    }

    /// The scoring terms for an expert who is not excluded (so `load <
    /// capacity`). Allocates nothing.
    fn breakdown(&self, expert: &ExpertProfile) -> Breakdown {
        let mut levels = [0u8; CATEGORY_COUNT];
        for &(category, level) in &expert.expertise {
            let i = category as usize;
            if self.categories & (1 << i) != 0 {
                levels[i] = levels[i].max(level.min(MAX_LEVEL));
            }
        }
        let capacity_points = if expert.capacity == 0 {
            0
        } else {
            let spare = u64::from(expert.capacity.saturating_sub(expert.active_load));
            // spare <= capacity, so the quotient is at most CAPACITY_POINTS.
            (u64::from(CAPACITY_POINTS) * spare / u64::from(expert.capacity)) as u32
        };
        Breakdown {
            levels,
            product_type_fits: expert.product_types.contains(&self.case.product_type),
            speaks_language: expert.languages.contains(&self.case.language),
            capacity_points,
        }
    }
}

/// An expert's score, term by term.
struct Breakdown {
    /// Level (0 = not covered) per category, for the case's categories only.
    levels: [u8; CATEGORY_COUNT],
    product_type_fits: bool,
    speaks_language: bool,
    capacity_points: u32,
}

impl Breakdown {
    fn is_relevant(&self) -> bool {
        self.levels.iter().any(|&l| l > 0)
    }

    fn total(&self) -> u32 {
        let categories: u32 = self
            .levels
            .iter()
            .map(|&l| u32::from(l) * POINTS_PER_LEVEL)
            .sum();
        let product_type = u32::from(self.product_type_fits) * PRODUCT_TYPE_POINTS;
        let language = u32::from(self.speaks_language) * LANGUAGE_POINTS;
        categories + product_type + language + self.capacity_points
    }

    fn reasons(&self, case: &CaseProfile, expert: &ExpertProfile) -> Vec<Reason> {
        let mut reasons = Vec::with_capacity(CATEGORY_COUNT + 3);
        for category in Category::ALL {
            let level = self.levels[category as usize];
            if level > 0 {
                reasons.push(Reason::CoversCategory { category, level });
            }
        }
        if self.product_type_fits {
            reasons.push(Reason::ProductType {
                product_type: case.product_type,
            });
        }
        let language = case.language;
        reasons.push(if self.speaks_language {
            Reason::Speaks { language }
        } else {
            Reason::DoesNotSpeak { language }
        });
        reasons.push(Reason::Load {
            load: expert.active_load,
            capacity: expert.capacity,
        });
        reasons
    }
}

/// A relevant, eligible expert, as ranked.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    score: u32,
    last_assigned_at: Option<i64>,
    expert_id: i64,
    /// Position in the pool.
    index: usize,
}

impl Candidate {
    /// Best first: score descending, then least recently assigned (`None`,
    /// never, sorts before any time), then expert id ascending.
    fn rank(a: &Self, b: &Self) -> Ordering {
        b.score
            .cmp(&a.score)
            .then_with(|| a.last_assigned_at.cmp(&b.last_assigned_at))
            .then_with(|| a.expert_id.cmp(&b.expert_id))
    }
}

/// Expert ids, for membership tests in O(log n).
struct SortedIds(Vec<i64>);

impl SortedIds {
    fn new(ids: &[i64]) -> Self {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        Self(ids)
    }

    fn contains(&self, id: i64) -> bool {
        self.0.binary_search(&id).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::super::conflicts::{normalize_for_storage, normalize_organization_name};
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn today() -> NaiveDate {
        date(2025, 4, 1)
    }

    /// Covers regulatory at level 2, no product type, speaks en only, load 0
    /// of 2, never assigned, no conflicts: score 20 + 0 + 0 + 10 = 30 on
    /// [`base_case`].
    fn expert(id: i64) -> ExpertProfile {
        ExpertProfile {
            id,
            name: format!("Expert {id}"),
            expertise: vec![(Category::Regulatory, 2)],
            product_types: vec![],
            languages: vec![Lang::En],
            capacity: 2,
            active_load: 0,
            paused_until: None,
            conflicts_normalized: vec![],
            last_assigned_at: None,
        }
    }

    const REGULATORY: &[Category] = &[Category::Regulatory];

    fn base_case() -> CaseProfile<'static> {
        CaseProfile {
            product_type: ProductType::MedicalDevice,
            categories: REGULATORY,
            language: Lang::Ja,
            organization_normalized: "medtech",
            declined_by: &[],
            already_assigned: &[],
        }
    }

    fn ids(items: &[Suggestion]) -> Vec<i64> {
        items.iter().map(|s| s.expert_id).collect()
    }

    fn only_exclusion(case: &CaseProfile, e: ExpertProfile) -> Exclusion {
        let out = suggest(case, &[e], today(), 10);
        assert!(out.items.is_empty(), "{out:?}");
        assert_eq!(out.excluded.len(), 1, "{out:?}");
        let excluded = out.excluded.into_iter().next().unwrap();
        assert_eq!(excluded.detail, excluded.reason.to_string());
        excluded.reason
    }

    fn score_of(case: &CaseProfile, e: ExpertProfile) -> Suggestion {
        let out = suggest(case, &[e], today(), 10);
        assert!(out.excluded.is_empty(), "{out:?}");
        assert_eq!(out.items.len(), 1, "{out:?}");
        out.items.into_iter().next().unwrap()
    }

    #[test]
    fn every_reason_and_exclusion_has_a_japanese_and_an_english_label() {
        let s = score_of(&base_case(), expert(1));
        assert_eq!(
            s.reason_labels(Lang::Ja),
            [
                "法規制対応（レベル2）",
                "日本語に非対応",
                "担当中 0 件（上限 2 件）"
            ]
        );
        let reasons = [
            Reason::CoversCategory {
                category: Category::IpStrategy,
                level: 3,
            },
            Reason::ProductType {
                product_type: ProductType::MedicalDevice,
            },
            Reason::Speaks { language: Lang::En },
            Reason::DoesNotSpeak { language: Lang::Ja },
            Reason::Load {
                load: 1,
                capacity: 3,
            },
        ];
        let ja: Vec<String> = reasons.iter().map(|r| r.label(Lang::Ja)).collect();
        assert_eq!(
            ja,
            [
                "知財戦略（レベル3）",
                "製品種別が一致（医療機器）",
                "英語で対応可",
                "日本語に非対応",
                "担当中 1 件（上限 3 件）"
            ]
        );
        let codes: Vec<&str> = reasons.iter().map(Reason::code).collect();
        assert_eq!(codes, Reason::CODES);
        for reason in &reasons {
            let json = serde_json::to_value(reason).unwrap();
            assert_eq!(json["code"], reason.code());
        }
        let exclusions = [
            Exclusion::ConflictOfInterest {
                organization: "medtech".into(),
            },
            Exclusion::Paused {
                until: date(2025, 5, 1),
            },
            Exclusion::AtCapacity {
                load: 3,
                capacity: 3,
            },
            Exclusion::DeclinedBefore,
            Exclusion::AlreadyAssigned,
        ];
        let ja: Vec<String> = exclusions.iter().map(|e| e.label(Lang::Ja)).collect();
        assert_eq!(
            ja,
            [
                "申請者の組織（medtech）との利益相反",
                "2025-05-01 まで休止中",
                "担当件数が上限（3 / 3 件）",
                "この相談を以前に辞退",
                "この相談に割り当て済み"
            ]
        );
        for exclusion in &exclusions {
            assert_eq!(exclusion.to_string(), exclusion.label(Lang::En));
            assert_ne!(exclusion.label(Lang::Ja), exclusion.label(Lang::En));
        }
    }

    #[test]
    fn base_expert_scores_as_documented() {
        let s = score_of(&base_case(), expert(1));
        assert_eq!(s.expert_id, 1);
        assert_eq!(s.score, 30);
        assert_eq!(
            s.reason_labels(Lang::En),
            [
                "covers regulatory at level 2",
                "does not speak ja",
                "load 0 of 2"
            ]
        );
    }

    #[test]
    fn conflict_of_interest_excludes() {
        let mut e = expert(1);
        e.conflicts_normalized = vec!["other".into(), "medtech".into()];
        let reason = only_exclusion(&base_case(), e);
        assert_eq!(
            reason,
            Exclusion::ConflictOfInterest {
                organization: "medtech".into()
            }
        );
        assert_eq!(
            reason.to_string(),
            "conflict of interest with the applicant's organisation (medtech)"
        );
    }

    #[test]
    fn conflict_works_with_the_normalization_of_both_sides() {
        let org = normalize_organization_name("株式会社メドテック");
        let case = CaseProfile {
            organization_normalized: &org,
            ..base_case()
        };
        let mut e = expert(1);
        e.conflicts_normalized = vec![normalize_for_storage("ﾒﾄﾞﾃｯｸ(株)").unwrap()];
        assert!(matches!(
            only_exclusion(&case, e),
            Exclusion::ConflictOfInterest { .. }
        ));
    }

    #[test]
    fn an_empty_organization_never_conflicts() {
        let case = CaseProfile {
            organization_normalized: "",
            ..base_case()
        };
        let mut e = expert(1);
        e.conflicts_normalized = vec![String::new()];
        assert_eq!(score_of(&case, e).score, 30);

        let mut e = expert(1);
        e.conflicts_normalized = vec!["medtechlabs".into(), "med".into()];
        assert_eq!(score_of(&base_case(), e).score, 30, "only equal names");
    }

    #[test]
    fn already_assigned_excludes() {
        let case = CaseProfile {
            already_assigned: &[9, 1],
            ..base_case()
        };
        assert_eq!(only_exclusion(&case, expert(1)), Exclusion::AlreadyAssigned);
        assert_eq!(
            Exclusion::AlreadyAssigned.to_string(),
            "already assigned to this case"
        );
    }

    #[test]
    fn declined_before_excludes() {
        let case = CaseProfile {
            declined_by: &[3, 1, 2],
            ..base_case()
        };
        assert_eq!(only_exclusion(&case, expert(1)), Exclusion::DeclinedBefore);
        assert_eq!(
            Exclusion::DeclinedBefore.to_string(),
            "declined this case before"
        );
    }

    #[test]
    fn paused_excludes_while_today_is_before_the_date() {
        let mut e = expert(1);
        e.paused_until = Some(date(2025, 4, 2));
        let reason = only_exclusion(&base_case(), e.clone());
        assert_eq!(
            reason,
            Exclusion::Paused {
                until: date(2025, 4, 2)
            }
        );
        assert_eq!(reason.to_string(), "paused until 2025-04-02");

        e.paused_until = Some(today());
        assert_eq!(score_of(&base_case(), e.clone()).score, 30, "back today");
        e.paused_until = Some(date(2024, 12, 31));
        assert_eq!(score_of(&base_case(), e).score, 30, "pause over");
    }

    #[test]
    fn at_capacity_excludes() {
        let mut e = expert(1);
        e.capacity = 3;
        e.active_load = 3;
        let reason = only_exclusion(&base_case(), e.clone());
        assert_eq!(
            reason,
            Exclusion::AtCapacity {
                load: 3,
                capacity: 3
            }
        );
        assert_eq!(reason.to_string(), "at capacity: load 3 of 3");

        e.active_load = 5;
        assert_eq!(
            only_exclusion(&base_case(), e.clone()),
            Exclusion::AtCapacity {
                load: 5,
                capacity: 3
            }
        );

        e.capacity = 0;
        e.active_load = 0;
        assert_eq!(
            only_exclusion(&base_case(), e),
            Exclusion::AtCapacity {
                load: 0,
                capacity: 0
            }
        );
    }

    #[test]
    fn exclusions_are_checked_in_the_documented_order() {
        let mut e = expert(1);
        e.conflicts_normalized = vec!["medtech".into()];
        e.paused_until = Some(date(2030, 1, 1));
        e.capacity = 1;
        e.active_load = 1;
        let all = CaseProfile {
            declined_by: &[1],
            already_assigned: &[1],
            ..base_case()
        };

        assert!(matches!(
            only_exclusion(&all, e.clone()),
            Exclusion::ConflictOfInterest { .. }
        ));
        e.conflicts_normalized.clear();
        assert_eq!(only_exclusion(&all, e.clone()), Exclusion::AlreadyAssigned);
        let declined_paused_full = CaseProfile {
            already_assigned: &[],
            ..all
        };
        assert_eq!(
            only_exclusion(&declined_paused_full, e.clone()),
            Exclusion::DeclinedBefore
        );
        assert_eq!(
            only_exclusion(&base_case(), e.clone()),
            Exclusion::Paused {
                until: date(2030, 1, 1)
            }
        );
        e.paused_until = None;
        assert_eq!(
            only_exclusion(&base_case(), e.clone()),
            Exclusion::AtCapacity {
                load: 1,
                capacity: 1
            }
        );
        e.active_load = 0;
        assert_eq!(exclusion_for(&base_case(), &e, today()), None);
    }

    #[test]
    fn exclusion_for_agrees_with_suggest() {
        let case = CaseProfile {
            declined_by: &[2],
            already_assigned: &[3],
            ..base_case()
        };
        let mut pool: Vec<ExpertProfile> = (1..=6).map(expert).collect();
        pool[0].conflicts_normalized = vec!["medtech".into()];
        pool[3].paused_until = Some(date(2025, 5, 1));
        pool[4].active_load = 2;
        let out = suggest(&case, &pool, today(), 10);
        let reported: Vec<(i64, Exclusion)> = out
            .excluded
            .iter()
            .map(|e| (e.expert_id, e.reason.clone()))
            .collect();
        let checked: Vec<(i64, Exclusion)> = pool
            .iter()
            .filter_map(|e| exclusion_for(&case, e, today()).map(|r| (e.id, r)))
            .collect();
        assert_eq!(reported, checked);
        assert_eq!(
            reported.iter().map(|(_, r)| r.code()).collect::<Vec<_>>(),
            [
                "conflict_of_interest",
                "declined_before",
                "already_assigned",
                "paused",
                "at_capacity"
            ]
        );
        assert_eq!(ids(&out.items), [6]);
    }

    #[test]
    fn excluded_experts_are_reported_even_when_not_relevant_and_never_suggested() {
        let mut unrelated = expert(5);
        unrelated.expertise = vec![(Category::Fundraising, 3)];
        unrelated.paused_until = Some(date(2026, 1, 1));
        let mut relevant = expert(4);
        relevant.active_load = 2;
        let out = suggest(&base_case(), &[unrelated, relevant], today(), 10);
        assert!(out.items.is_empty());
        assert_eq!(
            out.excluded.iter().map(|e| e.expert_id).collect::<Vec<_>>(),
            [4, 5]
        );
    }

    #[test]
    fn eligible_experts_covering_no_case_category_are_neither_suggested_nor_excluded() {
        let mut unrelated = expert(2);
        unrelated.expertise = vec![(Category::Marketing, 3), (Category::Other, 3)];
        unrelated.product_types = vec![ProductType::MedicalDevice];
        unrelated.languages = vec![Lang::Ja];
        let mut none = expert(3);
        none.expertise.clear();
        let mut level_zero = expert(4);
        level_zero.expertise = vec![(Category::Regulatory, 0)];
        let out = suggest(
            &base_case(),
            &[expert(1), unrelated, none, level_zero],
            today(),
            10,
        );
        assert_eq!(ids(&out.items), [1]);
        assert!(out.excluded.is_empty());

        let no_categories = CaseProfile {
            categories: &[],
            ..base_case()
        };
        let out = suggest(&no_categories, &[expert(1)], today(), 10);
        assert_eq!(out, Suggestions::default());
    }

    #[test]
    fn level_weighting_is_ten_points_per_level_per_case_category() {
        for (level, points) in [(1u8, 10u32), (2, 20), (3, 30), (4, 30), (200, 30)] {
            let mut e = expert(1);
            e.expertise = vec![(Category::Regulatory, level)];
            let s = score_of(&base_case(), e);
            assert_eq!(s.score, points + 10, "level {level}");
            assert_eq!(
                s.reason_labels(Lang::En)[0],
                format!("covers regulatory at level {}", level.min(3))
            );
        }

        let case = CaseProfile {
            categories: &[
                Category::IpStrategy,
                Category::Regulatory,
                Category::Fundraising,
                Category::Regulatory,
            ],
            ..base_case()
        };
        let mut e = expert(1);
        e.expertise = vec![
            (Category::Fundraising, 1),
            (Category::Regulatory, 3),
            (Category::Marketing, 3),   // not on the case
            (Category::Fundraising, 2), // listed twice: highest counts
        ];
        let s = score_of(&case, e);
        assert_eq!(s.score, 30 + 20 + 10);
        assert_eq!(
            s.reason_labels(Lang::En),
            [
                "covers regulatory at level 3",
                "covers fundraising at level 2",
                "does not speak ja",
                "load 0 of 2"
            ]
        );
    }

    #[test]
    fn product_type_fit_adds_fifteen() {
        let mut e = expert(1);
        e.product_types = vec![ProductType::Drug, ProductType::MedicalDevice];
        let s = score_of(&base_case(), e.clone());
        assert_eq!(s.score, 45);
        assert!(
            s.reason_labels(Lang::En)
                .contains(&"product type medical_device".to_owned())
        );

        e.product_types = vec![ProductType::Drug];
        let s = score_of(&base_case(), e);
        assert_eq!(s.score, 30);
        assert!(
            !s.reason_labels(Lang::En)
                .iter()
                .any(|r| r.starts_with("product type"))
        );
    }

    #[test]
    fn language_adds_ten_or_is_noted_as_missing() {
        let mut e = expert(1);
        e.languages = vec![Lang::En, Lang::Ja];
        let s = score_of(&base_case(), e.clone());
        assert_eq!(s.score, 40);
        assert!(s.reason_labels(Lang::En).contains(&"speaks ja".to_owned()));

        e.languages = vec![];
        let s = score_of(&base_case(), e);
        assert_eq!(s.score, 30);
        assert!(
            s.reason_labels(Lang::En)
                .contains(&"does not speak ja".to_owned())
        );

        let english = CaseProfile {
            language: Lang::En,
            ..base_case()
        };
        let s = score_of(&english, expert(1));
        assert_eq!(s.score, 40);
        assert!(s.reason_labels(Lang::En).contains(&"speaks en".to_owned()));
    }

    #[test]
    fn capacity_bonus_is_the_spare_share_of_ten_rounded_down() {
        for (capacity, load, bonus) in [
            (3, 0, 10),
            (3, 1, 6),
            (3, 2, 3),
            (1, 0, 10),
            (10, 9, 1),
            (100, 99, 0),
            (7, 2, 7),
            (u32::MAX, 0, 10),
            (u32::MAX, u32::MAX - 1, 0),
        ] {
            let mut e = expert(1);
            e.capacity = capacity;
            e.active_load = load;
            let s = score_of(&base_case(), e);
            assert_eq!(s.score, 20 + bonus, "load {load} of {capacity}");
            assert_eq!(
                s.reason_labels(Lang::En).last().unwrap(),
                &format!("load {load} of {capacity}")
            );
        }
    }

    #[test]
    fn every_term_together_with_its_reason() {
        let case = CaseProfile {
            categories: &[Category::Regulatory, Category::Reimbursement],
            ..base_case()
        };
        let mut e = expert(1);
        e.expertise = vec![(Category::Reimbursement, 1), (Category::Regulatory, 3)];
        e.product_types = vec![ProductType::MedicalDevice];
        e.languages = vec![Lang::Ja];
        e.capacity = 3;
        e.active_load = 1;
        let s = score_of(&case, e);
        assert_eq!((s.expert_id, s.score), (1, 30 + 10 + 15 + 10 + 6));
        assert_eq!(
            s.reason_labels(Lang::En),
            [
                "covers regulatory at level 3",
                "covers reimbursement at level 1",
                "product type medical_device",
                "speaks ja",
                "load 1 of 3",
            ]
        );
    }

    #[test]
    fn ranks_by_score_descending() {
        let mut high = expert(3);
        high.expertise = vec![(Category::Regulatory, 3)];
        let mut low = expert(1);
        low.expertise = vec![(Category::Regulatory, 1)];
        let mid = expert(2);
        let out = suggest(&base_case(), &[low, mid, high], today(), 10);
        assert_eq!(ids(&out.items), [3, 2, 1]);
        assert_eq!(
            out.items.iter().map(|s| s.score).collect::<Vec<_>>(),
            [40, 30, 20]
        );
    }

    #[test]
    fn ties_go_to_the_least_recently_assigned_then_the_lower_id() {
        let mut recent = expert(1);
        recent.last_assigned_at = Some(2_000_000);
        let mut old = expert(2);
        old.last_assigned_at = Some(1_000_000);
        let never_b = expert(5);
        let never_a = expert(4);
        let mut ancient = expert(3);
        ancient.last_assigned_at = Some(-5);
        let out = suggest(
            &base_case(),
            &[recent, old, never_b, never_a, ancient],
            today(),
            10,
        );
        assert_eq!(ids(&out.items), [4, 5, 3, 2, 1]);
        assert!(out.items.iter().all(|s| s.score == 30));
    }

    #[test]
    fn a_higher_score_beats_a_longer_wait() {
        let mut busy_but_better = expert(1);
        busy_but_better.last_assigned_at = Some(i64::MAX);
        busy_but_better.expertise = vec![(Category::Regulatory, 3)];
        let idle = expert(2);
        let out = suggest(&base_case(), &[idle, busy_but_better], today(), 10);
        assert_eq!(ids(&out.items), [1, 2]);
    }

    #[test]
    fn limit_returns_the_best_few_and_all_exclusions() {
        let mut pool: Vec<ExpertProfile> = (1..=10)
            .map(|id| {
                let mut e = expert(id);
                e.capacity = 10;
                e.active_load = (id % 10) as u32; // id 10: load 0, best
                e
            })
            .collect();
        pool[0].paused_until = Some(date(2026, 1, 1));
        pool[1].active_load = 10;

        let all = suggest(&base_case(), &pool, today(), usize::MAX);
        assert_eq!(ids(&all.items), [10, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(all.excluded.len(), 2);

        for limit in 0..=9 {
            let out = suggest(&base_case(), &pool, today(), limit);
            assert_eq!(out.items, all.items[..limit.min(8)], "limit {limit}");
            assert_eq!(out.excluded, all.excluded, "limit {limit}");
        }
        assert!(suggest(&base_case(), &pool, today(), 0).items.is_empty());
        assert_eq!(
            suggest(&base_case(), &[], today(), 5),
            Suggestions::default()
        );
    }

    #[test]
    fn exclusions_come_sorted_by_expert_id() {
        let pool: Vec<ExpertProfile> = [9, 3, 7, 1]
            .into_iter()
            .map(|id| {
                let mut e = expert(id);
                e.active_load = 2;
                e
            })
            .collect();
        let out = suggest(&base_case(), &pool, today(), 10);
        assert_eq!(
            out.excluded.iter().map(|e| e.expert_id).collect::<Vec<_>>(),
            [1, 3, 7, 9]
        );
    }

    /// A varied pool from a fixed seed: every exclusion, every level, ties.
    fn pool(n: usize, seed: u64) -> Vec<ExpertProfile> {
        let mut rng = XorShift(seed);
        (0..n)
            .map(|i| {
                let mut expertise = Vec::new();
                for category in Category::ALL {
                    if rng.below(4) == 0 {
                        expertise.push((category, 1 + rng.below(3) as u8));
                    }
                }
                let product_types = ProductType::ALL
                    .into_iter()
                    .filter(|_| rng.below(2) == 0)
                    .collect();
                let languages = Lang::ALL
                    .into_iter()
                    .filter(|_| rng.below(3) != 0)
                    .collect();
                let capacity = rng.below(6) as u32;
                let active_load = rng.below(capacity as u64 + 1) as u32;
                // Around today (2025-04-01): some pauses are over, one ends today.
                let paused_until = (rng.below(10) == 0).then(|| {
                    date(2025, 3, 27)
                        .checked_add_days(chrono::Days::new(rng.below(14)))
                        .unwrap()
                });
                let conflicts_normalized = if rng.below(25) == 0 {
                    vec!["acme".into(), "medtech".into()]
                } else {
                    vec!["acme".into()]
                };
                let last_assigned_at = (rng.below(3) != 0).then(|| rng.below(50) as i64);
                ExpertProfile {
                    id: 10_000 + i as i64 * 7,
                    name: format!("Expert {i}"),
                    expertise,
                    product_types,
                    languages,
                    capacity,
                    active_load,
                    paused_until,
                    conflicts_normalized,
                    last_assigned_at,
                }
            })
            .collect()
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn shuffle<T>(&mut self, items: &mut [T]) {
            for i in (1..items.len()).rev() {
                items.swap(i, self.below(i as u64 + 1) as usize);
            }
        }
    }

    fn busy_case() -> CaseProfile<'static> {
        CaseProfile {
            product_type: ProductType::Drug,
            categories: &[
                Category::Regulatory,
                Category::Fundraising,
                Category::International,
            ],
            language: Lang::Ja,
            organization_normalized: "medtech",
            declined_by: &[10_007, 10_070, 10_700, 99],
            already_assigned: &[10_014, 10_000],
        }
    }

    #[test]
    fn same_input_same_output_whatever_the_order_of_the_pool() {
        let case = busy_case();
        let mut experts = pool(300, 42);
        let first = suggest(&case, &experts, today(), 20);
        assert_eq!(first.items.len(), 20);
        assert_eq!(suggest(&case, &experts, today(), 20), first);

        experts.reverse();
        assert_eq!(suggest(&case, &experts, today(), 20), first);
        let mut rng = XorShift(7);
        for _ in 0..5 {
            rng.shuffle(&mut experts);
            assert_eq!(suggest(&case, &experts, today(), 20), first);
        }
        // The JSON, too, is byte for byte the same.
        assert_eq!(
            serde_json::to_string(&suggest(&case, &experts, today(), 20)).unwrap(),
            serde_json::to_string(&first).unwrap()
        );
    }

    /// `(expert_id, score)` best first, and `(expert_id, reason code)`.
    type Expected = (Vec<(i64, u32)>, Vec<(i64, &'static str)>);

    /// The rules written the slow, obvious way, to check [`suggest`]
    /// against.
    fn reference(
        case: &CaseProfile,
        experts: &[ExpertProfile],
        today: NaiveDate,
        limit: usize,
    ) -> Expected {
        let mut ranked = Vec::new();
        let mut excluded = Vec::new();
        for e in experts {
            let reason = if !case.organization_normalized.is_empty()
                && e.conflicts_normalized
                    .iter()
                    .any(|c| c == case.organization_normalized)
            {
                Some("conflict_of_interest")
            } else if case.already_assigned.contains(&e.id) {
                Some("already_assigned")
            } else if case.declined_by.contains(&e.id) {
                Some("declined_before")
            } else if e.paused_until.is_some_and(|d| today < d) {
                Some("paused")
            } else if e.active_load >= e.capacity {
                Some("at_capacity")
            } else {
                None
            };
            if let Some(reason) = reason {
                excluded.push((e.id, reason));
                continue;
            }
            let mut score = 0;
            let mut relevant = false;
            for category in Category::ALL {
                if !case.categories.contains(&category) {
                    continue;
                }
                let level = e
                    .expertise
                    .iter()
                    .filter(|(c, _)| *c == category)
                    .map(|&(_, l)| u32::from(l.min(3)))
                    .max()
                    .unwrap_or(0);
                relevant |= level > 0;
                score += 10 * level;
            }
            if !relevant {
                continue;
            }
            if e.product_types.contains(&case.product_type) {
                score += 15;
            }
            if e.languages.contains(&case.language) {
                score += 10;
            }
            score += 10 * (e.capacity - e.active_load) / e.capacity;
            ranked.push((score, e.last_assigned_at, e.id));
        }
        ranked.sort_by(|a, b| {
            b.0.cmp(&a.0)
                .then(match (a.1, b.1) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Less,
                    (Some(_), None) => Ordering::Greater,
                    (Some(x), Some(y)) => x.cmp(&y),
                })
                .then(a.2.cmp(&b.2))
        });
        ranked.truncate(limit);
        excluded.sort();
        (
            ranked.into_iter().map(|(s, _, id)| (id, s)).collect(),
            excluded,
        )
    }

    #[test]
    fn two_thousand_experts_rank_exactly_as_the_rules_say() {
        let case = busy_case();
        let experts = pool(2_000, 2025);
        for limit in [0, 1, 10, 50, 2_000] {
            let out = suggest(&case, &experts, today(), limit);
            let (ranked, excluded) = reference(&case, &experts, today(), limit);
            assert_eq!(
                out.items
                    .iter()
                    .map(|s| (s.expert_id, s.score))
                    .collect::<Vec<_>>(),
                ranked,
                "limit {limit}"
            );
            assert_eq!(
                out.excluded
                    .iter()
                    .map(|e| (e.expert_id, e.reason.code()))
                    .collect::<Vec<_>>(),
                excluded,
                "limit {limit}"
            );
        }

        // The pool really exercises every rule.
        let out = suggest(&case, &experts, today(), 2_000);
        for code in [
            "conflict_of_interest",
            "already_assigned",
            "declined_before",
            "paused",
            "at_capacity",
        ] {
            assert!(
                out.excluded.iter().any(|e| e.reason.code() == code),
                "no {code}"
            );
        }
        assert!(out.items.len() > 300, "{}", out.items.len());
        assert!(
            out.items.windows(2).any(|w| w[0].score == w[1].score),
            "ties are exercised"
        );
        assert!(out.excluded.len() + out.items.len() < experts.len());
    }

    #[test]
    fn json_shape() {
        let mut paused = expert(2);
        paused.paused_until = Some(date(2025, 5, 1));
        let mut conflicted = expert(3);
        conflicted.conflicts_normalized = vec!["medtech".into()];
        let mut full = expert(4);
        full.active_load = 2;
        let case = CaseProfile {
            declined_by: &[5],
            already_assigned: &[6],
            ..base_case()
        };
        let out = suggest(
            &case,
            &[expert(1), paused, conflicted, full, expert(5), expert(6)],
            today(),
            10,
        );
        let json = serde_json::to_value(&out).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "items": [{
                    "expert_id": 1,
                    "score": 30,
                    "reasons": [
                        {"code": "covers_category", "category": "regulatory", "level": 2},
                        {"code": "does_not_speak", "language": "ja"},
                        {"code": "load", "load": 0, "capacity": 2}
                    ]
                }],
                "excluded": [
                    {"expert_id": 2, "reason": "paused", "until": "2025-05-01",
                     "detail": "paused until 2025-05-01"},
                    {"expert_id": 3, "reason": "conflict_of_interest", "organization": "medtech",
                     "detail": "conflict of interest with the applicant's organisation (medtech)"},
                    {"expert_id": 4, "reason": "at_capacity", "load": 2, "capacity": 2,
                     "detail": "at capacity: load 2 of 2"},
                    {"expert_id": 5, "reason": "declined_before",
                     "detail": "declined this case before"},
                    {"expert_id": 6, "reason": "already_assigned",
                     "detail": "already assigned to this case"},
                ]
            })
        );
        let back: Suggestions = serde_json::from_value(json).unwrap();
        assert_eq!(back, out);
        assert_eq!(
            serde_json::to_string(&Exclusion::DeclinedBefore).unwrap(),
            r#"{"reason":"declined_before"}"#
        );
    }
}
