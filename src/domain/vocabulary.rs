//! The closed vocabularies of PRODUCT.md: every code the API speaks, with its
//! Japanese and English label.
//!
//! Each enum is declared once through [`vocabulary!`], so the API code, the
//! serde name, `FromStr`, `Display` and the labels can never drift apart.

use std::fmt;
use std::str::FromStr;

/// A string that is not one of a vocabulary's codes (or labels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCode {
    /// Which vocabulary was asked, e.g. `"category"`.
    pub kind: &'static str,
    /// The string as given.
    pub value: String,
    /// Every code the vocabulary has, in order: a person who typed a wrong
    /// one sees what to type instead.
    pub allowed: &'static [&'static str],
}

impl fmt::Display for UnknownCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} {:?}; allowed: {}",
            self.kind,
            self.value,
            self.allowed.join(", ")
        )
    }
}

impl std::error::Error for UnknownCode {}

/// Declares a vocabulary enum: `Variant = "code", "日本語", "English";` per
/// line, in the order PRODUCT.md lists them (that order becomes `ALL`).
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($kind:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $code:literal, $ja:literal, $en:literal; )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $code)] $variant, )+
        }

        impl $name {
            /// Name of this vocabulary, as used in error messages.
            pub const KIND: &'static str = $kind;

            /// Every value, in the order of PRODUCT.md (and of every table).
            pub const ALL: [Self; [$($code),+].len()] = [$(Self::$variant),+];

            /// Every code, in the order of [`Self::ALL`].
            pub const CODES: [&'static str; [$($code),+].len()] = [$($code),+];

            /// The API code.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)+
                }
            }

            /// The human label in `lang`.
            pub const fn label(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $(
                        (Self::$variant, Lang::Ja) => $ja,
                        (Self::$variant, Lang::En) => $en,
                    )+
                }
            }

            /// Accepts the code or the Japanese label, surrounding white space
            /// ignored: spreadsheets being imported use either.
            pub fn from_label_or_code(s: &str) -> Result<Self, UnknownCode> {
                let s = s.trim();
                Self::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s || v.label(Lang::Ja) == s)
                    .ok_or_else(|| UnknownCode {
                        kind: $kind,
                        value: s.to_owned(),
                        allowed: &Self::CODES,
                    })
            }
        }

        impl FromStr for $name {
            type Err = UnknownCode;

            /// Strict: exactly a code, as the API sends it.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($code => Ok(Self::$variant),)+
                    _ => Err(UnknownCode {
                        kind: $kind,
                        value: s.to_owned(),
                        allowed: &Self::CODES,
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

vocabulary! {
    /// Language of labels, mails and of a user's locale.
    pub enum Lang ("lang") {
        Ja = "ja", "日本語", "Japanese";
        En = "en", "英語", "English";
    }
}

vocabulary! {
    /// What the venture develops. `Ord` follows the order of the statistics
    /// rows, so sorted collections come out in table order.
    #[derive(PartialOrd, Ord)]
    pub enum ProductType ("product_type") {
        Drug = "drug", "医薬品", "Drug";
        MedicalDevice = "medical_device", "医療機器", "Medical device";
        Regenerative = "regenerative", "再生医療等製品", "Regenerative medicine product";
        Other = "other", "その他", "Other";
    }
}

vocabulary! {
    /// Consultation category; a case has one or more. The declaration order is
    /// the column order of every table and export, and `Ord` follows it.
    #[derive(PartialOrd, Ord)]
    pub enum Category ("category") {
        Regulatory = "regulatory", "法規制対応", "Regulatory";
        Marketing = "marketing", "マーケティング", "Marketing";
        BusinessPlan = "business_plan", "事業計画", "Business plan";
        Fundraising = "fundraising", "資金調達", "Fundraising";
        ManagementStrategy = "management_strategy", "経営戦略", "Management strategy";
        IpStrategy = "ip_strategy", "知財戦略", "IP strategy";
        International = "international", "国際展開", "International expansion";
        Reimbursement = "reimbursement", "保険収載", "Reimbursement";
        Other = "other", "その他", "Other";
    }
}

vocabulary! {
    /// Development stage of the product.
    pub enum Stage ("stage") {
        Idea = "idea", "アイデア", "Idea";
        BasicResearch = "basic_research", "基礎研究", "Basic research";
        NonClinical = "non_clinical", "非臨床", "Non-clinical";
        Clinical = "clinical", "臨床", "Clinical";
        RegulatorySubmission = "regulatory_submission", "薬事申請", "Regulatory submission";
        Marketed = "marketed", "上市済み", "Marketed";
    }
}

vocabulary! {
    /// What kind of organisation brings the case.
    pub enum OrganizationKind ("organization_kind") {
        Startup = "startup", "スタートアップ", "Startup";
        Academia = "academia", "アカデミア", "Academia";
        Individual = "individual", "個人", "Individual";
        Company = "company", "企業", "Company";
        Other = "other", "その他", "Other";
    }
}

vocabulary! {
    /// Where a case stands; transitions are decided in `lifecycle`.
    pub enum CaseStatus ("status") {
        Submitted = "submitted", "受付", "Submitted";
        Triage = "triage", "トリアージ", "Triage";
        AwaitingInfo = "awaiting_info", "情報待ち", "Awaiting information";
        Matching = "matching", "マッチング中", "Matching";
        InConsultation = "in_consultation", "相談対応中", "In consultation";
        Closed = "closed", "終了", "Closed";
    }
}

vocabulary! {
    /// How a closed case ended.
    pub enum Outcome ("outcome") {
        Resolved = "resolved", "解決", "Resolved";
        Referred = "referred", "他機関紹介", "Referred";
        OutOfScope = "out_of_scope", "対象外", "Out of scope";
        Withdrawn = "withdrawn", "取り下げ", "Withdrawn";
        NoResponse = "no_response", "応答なし", "No response";
        /// Closed as a duplicate of another case (which it names; left out
        /// of the statistics by default). Not in PRODUCT.md's list: issue 16.
        Duplicate = "duplicate", "重複", "Duplicate";
    }
}

vocabulary! {
    /// Triage priority; `Ord` runs from least to most pressing.
    #[derive(PartialOrd, Ord)]
    pub enum Priority ("priority") {
        Low = "low", "低", "Low";
        Normal = "normal", "通常", "Normal";
        High = "high", "高", "High";
        Urgent = "urgent", "緊急", "Urgent";
    }
}

vocabulary! {
    /// The way triage sends a case on.
    pub enum Route ("route") {
        /// The supporter handles it.
        Direct = "direct", "直接対応", "Direct";
        /// Needs a specialist: matching.
        Expert = "expert", "専門家対応", "Expert";
        /// Suggest a short Open Hours session.
        OpenHours = "open_hours", "オープンアワー", "Open Hours";
        /// Close as referred to another organisation.
        Refer = "refer", "他機関紹介", "Refer";
    }
}

vocabulary! {
    /// Who may read a message; applicants never see `internal` ones.
    pub enum MessageVisibility ("visibility") {
        Internal = "internal", "内部", "Internal";
        Applicant = "applicant", "相談者向け", "Applicant";
    }
}

vocabulary! {
    /// An expert's part on a case: one `lead` at most, any number of members.
    pub enum AssignmentRole ("assignment role") {
        Lead = "lead", "主担当", "Lead";
        Member = "member", "担当", "Member";
    }
}

vocabulary! {
    /// How a meeting (面談) takes place.
    pub enum MeetingMode ("meeting mode") {
        Online = "online", "オンライン", "Online";
        Onsite = "onsite", "対面", "On site";
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Checks, for every variant of a vocabulary, that the codes come in the
    /// expected order and that code → enum → code holds through `FromStr`,
    /// `Display`, `as_str`, serde and `from_label_or_code`.
    macro_rules! assert_round_trips {
        ($ty:ty, [$($code:literal),+ $(,)?]) => {{
            let expected: &[&str] = &[$($code),+];
            let codes: Vec<&str> = <$ty>::ALL.iter().map(|v| v.as_str()).collect();
            assert_eq!(codes, expected, "{} order", <$ty>::KIND);

            for v in <$ty>::ALL {
                let code = v.as_str();
                assert_eq!(code.parse::<$ty>(), Ok(v));
                assert_eq!(v.to_string(), code);
                assert_eq!(<$ty>::from_label_or_code(code), Ok(v));
                assert_eq!(<$ty>::from_label_or_code(v.label(Lang::Ja)), Ok(v));

                let json = serde_json::to_string(&v).unwrap();
                assert_eq!(json, format!("\"{code}\""));
                assert_eq!(serde_json::from_str::<$ty>(&json).unwrap(), v);

                for lang in Lang::ALL {
                    assert!(!v.label(lang).is_empty());
                }
            }

            // Labels must identify a value, or label import would be ambiguous.
            for lang in Lang::ALL {
                let labels: HashSet<_> = <$ty>::ALL.iter().map(|v| v.label(lang)).collect();
                assert_eq!(labels.len(), <$ty>::ALL.len(), "{} {lang} labels", <$ty>::KIND);
            }

            let err = "no_such_code".parse::<$ty>().unwrap_err();
            assert_eq!(err, UnknownCode { kind: <$ty>::KIND, value: "no_such_code".into(), allowed: &<$ty>::CODES });
            assert!(serde_json::from_str::<$ty>("\"no_such_code\"").is_err());
        }};
    }

    #[test]
    fn lang_round_trips() {
        assert_round_trips!(Lang, ["ja", "en"]);
    }

    #[test]
    fn product_type_round_trips() {
        assert_round_trips!(
            ProductType,
            ["drug", "medical_device", "regenerative", "other"]
        );
    }

    #[test]
    fn category_round_trips_in_table_order() {
        assert_round_trips!(
            Category,
            [
                "regulatory",
                "marketing",
                "business_plan",
                "fundraising",
                "management_strategy",
                "ip_strategy",
                "international",
                "reimbursement",
                "other",
            ]
        );
    }

    #[test]
    fn stage_round_trips() {
        assert_round_trips!(
            Stage,
            [
                "idea",
                "basic_research",
                "non_clinical",
                "clinical",
                "regulatory_submission",
                "marketed",
            ]
        );
    }

    #[test]
    fn organization_kind_round_trips() {
        assert_round_trips!(
            OrganizationKind,
            ["startup", "academia", "individual", "company", "other"]
        );
    }

    #[test]
    fn case_status_round_trips() {
        assert_round_trips!(
            CaseStatus,
            [
                "submitted",
                "triage",
                "awaiting_info",
                "matching",
                "in_consultation",
                "closed",
            ]
        );
    }

    #[test]
    fn outcome_round_trips() {
        assert_round_trips!(
            Outcome,
            [
                "resolved",
                "referred",
                "out_of_scope",
                "withdrawn",
                "no_response",
                "duplicate",
            ]
        );
    }

    #[test]
    fn priority_round_trips() {
        assert_round_trips!(Priority, ["low", "normal", "high", "urgent"]);
    }

    #[test]
    fn route_round_trips() {
        assert_round_trips!(Route, ["direct", "expert", "open_hours", "refer"]);
    }

    #[test]
    fn message_visibility_round_trips() {
        assert_round_trips!(MessageVisibility, ["internal", "applicant"]);
    }

    #[test]
    fn assignment_role_round_trips() {
        assert_round_trips!(AssignmentRole, ["lead", "member"]);
    }

    #[test]
    fn meeting_mode_round_trips() {
        assert_round_trips!(MeetingMode, ["online", "onsite"]);
    }

    #[test]
    fn product_type_labels_match_the_brief() {
        let expected = [
            (ProductType::Drug, "医薬品", "Drug"),
            (ProductType::MedicalDevice, "医療機器", "Medical device"),
            (
                ProductType::Regenerative,
                "再生医療等製品",
                "Regenerative medicine product",
            ),
            (ProductType::Other, "その他", "Other"),
        ];
        for (v, ja, en) in expected {
            assert_eq!(v.label(Lang::Ja), ja);
            assert_eq!(v.label(Lang::En), en);
        }
    }

    #[test]
    fn category_labels_match_the_brief() {
        let expected = [
            (Category::Regulatory, "法規制対応", "Regulatory"),
            (Category::Marketing, "マーケティング", "Marketing"),
            (Category::BusinessPlan, "事業計画", "Business plan"),
            (Category::Fundraising, "資金調達", "Fundraising"),
            (
                Category::ManagementStrategy,
                "経営戦略",
                "Management strategy",
            ),
            (Category::IpStrategy, "知財戦略", "IP strategy"),
            (
                Category::International,
                "国際展開",
                "International expansion",
            ),
            (Category::Reimbursement, "保険収載", "Reimbursement"),
            (Category::Other, "その他", "Other"),
        ];
        for (v, ja, en) in expected {
            assert_eq!(v.label(Lang::Ja), ja);
            assert_eq!(v.label(Lang::En), en);
        }
    }

    #[test]
    fn other_labels_spot_checks() {
        assert_eq!(
            CaseStatus::InConsultation.label(Lang::En),
            "In consultation"
        );
        assert_eq!(CaseStatus::AwaitingInfo.label(Lang::Ja), "情報待ち");
        assert_eq!(Outcome::OutOfScope.label(Lang::En), "Out of scope");
        assert_eq!(Outcome::Duplicate.label(Lang::Ja), "重複");
        assert_eq!(Outcome::Duplicate.label(Lang::En), "Duplicate");
        assert_eq!(Route::OpenHours.label(Lang::En), "Open Hours");
        assert_eq!(Lang::Ja.label(Lang::En), "Japanese");
        assert_eq!(Lang::En.label(Lang::Ja), "英語");
    }

    #[test]
    fn from_label_or_code_trims_and_accepts_japanese_labels() {
        assert_eq!(
            Category::from_label_or_code("  知財戦略\t"),
            Ok(Category::IpStrategy)
        );
        assert_eq!(
            Category::from_label_or_code(" reimbursement "),
            Ok(Category::Reimbursement)
        );
        assert_eq!(
            ProductType::from_label_or_code("再生医療等製品"),
            Ok(ProductType::Regenerative)
        );
        assert_eq!(
            ProductType::from_label_or_code("\u{3000}医療機器\n"),
            Ok(ProductType::MedicalDevice),
            "full-width space is white space too"
        );
    }

    #[test]
    fn from_label_or_code_rejects_english_labels_and_unknowns() {
        // Only codes and Japanese labels are import formats; English labels
        // are display text and deliberately not accepted.
        assert_eq!(
            ProductType::from_label_or_code(" Medical device "),
            Err(UnknownCode {
                kind: "product_type",
                value: "Medical device".into(),
                allowed: &ProductType::CODES,
            })
        );
        assert!(Category::from_label_or_code("").is_err());
        assert!(Category::from_label_or_code("法規制").is_err());
    }

    #[test]
    fn from_str_is_strict() {
        assert!(" drug".parse::<ProductType>().is_err());
        assert!("Drug".parse::<ProductType>().is_err());
        assert!("医薬品".parse::<ProductType>().is_err());
        assert!("".parse::<Category>().is_err());
        assert!("IP_STRATEGY".parse::<Category>().is_err());
    }

    #[test]
    fn unknown_code_reads_well() {
        let err = "sideways".parse::<Route>().unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unknown route "sideways"; allowed: direct, expert, open_hours, refer"#
        );
        let boxed: Box<dyn std::error::Error> = Box::new(err);
        assert!(boxed.source().is_none());
    }

    #[test]
    fn priority_orders_by_urgency() {
        assert!(Priority::Low < Priority::Normal);
        assert!(Priority::Normal < Priority::High);
        assert!(Priority::High < Priority::Urgent);
        assert_eq!(Priority::ALL.iter().max(), Some(&Priority::Urgent));
    }

    #[test]
    fn category_and_product_type_sort_in_table_order() {
        let mut cats = Category::ALL;
        cats.reverse();
        cats.sort();
        assert_eq!(cats, Category::ALL);
        let mut products = ProductType::ALL;
        products.reverse();
        products.sort();
        assert_eq!(products, ProductType::ALL);
    }

    #[test]
    fn serde_works_inside_structures() {
        let cats: Vec<Category> = serde_json::from_str(r#"["regulatory","ip_strategy"]"#).unwrap();
        assert_eq!(cats, [Category::Regulatory, Category::IpStrategy]);
        assert_eq!(
            serde_json::to_string(&Some(Outcome::NoResponse)).unwrap(),
            r#""no_response""#
        );
    }
}
