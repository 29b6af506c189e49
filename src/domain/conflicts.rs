//! Conflict-of-interest checks: when do two organisation names mean the same
//! organisation? See PRODUCT.md, "Expert registry and matching".
//!
//! # The rule
//!
//! Two names are the same organisation when their normalized forms are equal
//! and not empty. [`normalize_organization_name`] computes that form:
//!
//! 1. Japanese legal-form marks written as one enclosed character (`㊑`, `㊒`,
//!    …) are read as their parenthesised abbreviation (`(株)`, `(有)`, …).
//! 2. Unicode NFKC, lowercase, NFKC again (close to NFKC_Casefold): full-width
//!    `ＭｅｄＴｅｃｈ` becomes `medtech`, half-width `ﾒﾄﾞﾃｯｸ` becomes `メドテック`,
//!    `㈱` becomes `(株)`.
//! 3. Parenthesised Japanese abbreviations of a legal form (`(株)`, `(有)`,
//!    `(同)`, `(医)`, `(一社)`, … see [`JA_ABBREVIATIONS`]) are removed
//!    wherever they stand.
//! 4. The text is cut into words: runs of letters, digits and combining marks
//!    of any script. Everything else — spaces (also U+3000), `・`, `.`, `,`,
//!    `-`, `'`, `&`, brackets, … — only separates words.
//! 5. Legal forms are removed, repeatedly, until none is left:
//!    * English ones ([`EN_LEGAL_FORMS`]: `Inc.`, `Co., Ltd.`, `L.L.C.`,
//!      `GmbH`, …) as whole trailing words only, so `Incubator`, `Cocoon` and
//!      `Agile` stay;
//!    * Japanese ones ([`JA_LEGAL_FORMS`]: `株式会社`, `一般社団法人`, …) at the
//!      start of the first word or the end of the last word, since Japanese
//!      writes them attached to the name, in front or behind.
//! 6. The remaining words are joined with nothing in between, so `Med Tech`,
//!    `med-tech` and `MedTech` agree.
//!
//! A name that is nothing but a legal form (`株式会社`, `Inc.`) normalizes to
//! `""` and never matches anything.
//!
//! The rule may be refined later; stored normalized forms carry
//! [`NORMALIZATION_VERSION`] so they can be recomputed when it changes.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Bumped whenever [`normalize_organization_name`] changes its output for
/// some input; stored normalized names of an older version must then be
/// recomputed from the names as entered.
pub const NORMALIZATION_VERSION: u32 = 1;

/// Japanese legal forms, normalized (NFKC, lowercase). Matched at the start of
/// the first word or the end of the last; the longest match wins, so
/// `医療法人社団` goes as a whole and `地方独立行政法人` is not cut in two.
pub const JA_LEGAL_FORMS: &[&str] = &[
    "株式会社",
    "有限会社",
    "合同会社",
    "合資会社",
    "合名会社",
    "一般社団法人",
    "一般財団法人",
    "公益社団法人",
    "公益財団法人",
    "社団法人",
    "財団法人",
    "特定非営利活動法人",
    "npo法人",
    "医療法人",
    "医療法人社団",
    "医療法人財団",
    "社会医療法人",
    "社会福祉法人",
    "学校法人",
    "国立大学法人",
    "公立大学法人",
    "独立行政法人",
    "地方独立行政法人",
    "国立研究開発法人",
];

/// Abbreviations of Japanese legal forms written in parentheses, e.g. `(株)`
/// (also `（株）` and `㈱`, which NFKC turns into `(株)`). Removed anywhere.
pub const JA_ABBREVIATIONS: &[&str] = &[
    "株", "有", "同", "資", "名", "医", "学", "財", "社", "一社", "一財", "公社", "公財", "特非",
    "独",
];

/// English (and romanised) legal forms as sequences of normalized words:
/// `Co., Ltd.` is `co` then `ltd`, `L.L.C.` is `l`, `l`, `c`. Removed only as
/// whole trailing words; the longest sequence wins.
pub const EN_LEGAL_FORMS: &[&[&str]] = &[
    &["inc"],
    &["incorporated"],
    &["corp"],
    &["corporation"],
    &["co"],
    &["company"],
    &["ltd"],
    &["limited"],
    &["co", "ltd"],
    &["pte", "ltd"],
    &["pty", "ltd"],
    &["llc"],
    &["l", "l", "c"],
    &["llp"],
    &["l", "l", "p"],
    &["kk"],
    &["k", "k"],
    &["kabushiki", "kaisha"],
    &["gk"],
    &["g", "k"],
    &["godo", "kaisha"],
    &["gmbh"],
    &["ag"],
    &["s", "a"],
    &["plc"],
];

/// Enclosed (circled) ideographs that stand for a legal form. NFKC turns them
/// into the bare ideograph (`㊑` → `株`), which would then look like part of
/// the name, so they are read as the parenthesised form first.
const CIRCLED_ABBREVIATIONS: &[(char, &str)] = &[
    ('\u{3291}', "(株)"), // ㊑
    ('\u{3292}', "(有)"), // ㊒
    ('\u{3293}', "(社)"), // ㊓
    ('\u{3294}', "(名)"), // ㊔
    ('\u{3296}', "(財)"), // ㊖
    ('\u{32A9}', "(医)"), // ㊩
    ('\u{32AB}', "(学)"), // ㊫
];

/// The form under which two organisation names are compared; see the module
/// documentation for the rule. `""` when nothing but legal forms, spacing and
/// punctuation is left.
pub fn normalize_organization_name(name: &str) -> String {
    // 1. Enclosed legal-form marks.
    let mut expanded = String::with_capacity(name.len());
    for c in name.chars() {
        match CIRCLED_ABBREVIATIONS.iter().find(|(k, _)| *k == c) {
            Some((_, abbreviation)) => expanded.push_str(abbreviation),
            None => expanded.push(c),
        }
    }

    // 2. NFKC, lowercase, NFKC.
    let folded: String = expanded.nfkc().collect::<String>().to_lowercase();
    let folded: String = folded.nfkc().collect();

    // 3. Parenthesised abbreviations become a word break.
    let text = remove_parenthesised_abbreviations(&folded);

    // 4. Words.
    let mut words: Vec<&str> = text
        .split(|c: char| !is_word_char(c))
        .filter(|w| !w.is_empty())
        .collect();

    // 5. Legal forms, until none is left.
    while strip_one_legal_form(&mut words) {}

    // 6. Join.
    words.concat()
}

/// The value to store for a conflict-of-interest name entered for an expert:
/// its normalized form, or `None` when it normalizes to nothing (only a legal
/// form, or only punctuation) and so could never match; the API should reject
/// such a name (422) instead of storing it.
pub fn normalize_for_storage(name: &str) -> Option<String> {
    let normalized = normalize_organization_name(name);
    (!normalized.is_empty()).then_some(normalized)
}

/// Whether two organisation names denote the same organisation: their
/// normalized forms are equal and not empty.
pub fn same_organization(a: &str, b: &str) -> bool {
    let a = normalize_organization_name(a);
    !a.is_empty() && a == normalize_organization_name(b)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || is_combining_mark(c)
}

/// Replaces every `(abbr)` whose inside, spaces trimmed, is one of
/// [`JA_ABBREVIATIONS`] by a space.
fn remove_parenthesised_abbreviations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('(') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find(')') {
            Some(close) if JA_ABBREVIATIONS.contains(&after[..close].trim()) => {
                out.push(' ');
                rest = &after[close + 1..];
            }
            _ => {
                out.push('(');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Removes the longest legal form found at an edge, if any; `true` if one was
/// removed.
fn strip_one_legal_form(words: &mut Vec<&str>) -> bool {
    // English: whole trailing words.
    let longest_en = EN_LEGAL_FORMS
        .iter()
        .filter(|form| words.ends_with(form))
        .map(|form| form.len())
        .max();
    if let Some(n) = longest_en {
        words.truncate(words.len() - n);
        return true;
    }

    // Japanese: behind the last word, then in front of the first.
    if let Some(last) = words.last_mut()
        && let Some(form) = longest_ja(|f| last.ends_with(f))
    {
        *last = &last[..last.len() - form.len()];
        if last.is_empty() {
            words.pop();
        }
        return true;
    }
    if let Some(first) = words.first_mut()
        && let Some(form) = longest_ja(|f| first.starts_with(f))
    {
        *first = &first[form.len()..];
        if first.is_empty() {
            words.remove(0);
        }
        return true;
    }
    false
}

fn longest_ja(matches: impl Fn(&str) -> bool) -> Option<&'static str> {
    JA_LEGAL_FORMS
        .iter()
        .copied()
        .filter(|f| matches(f))
        .max_by_key(|f| f.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        normalize_organization_name(s)
    }

    #[track_caller]
    fn assert_all_same(names: &[&str]) {
        let first = norm(names[0]);
        assert!(!first.is_empty(), "{:?} normalized to nothing", names[0]);
        for name in names {
            assert_eq!(norm(name), first, "{name:?} vs {:?}", names[0]);
            for other in names {
                assert!(same_organization(name, other), "{name:?} vs {other:?}");
            }
        }
    }

    #[test]
    fn japanese_legal_forms_in_front_or_behind_do_not_hide_a_conflict() {
        assert_all_same(&[
            "株式会社メドテック",
            "メドテック株式会社",
            "メドテック(株)",
            "㈱メドテック",
            "メドテック 株式会社",
            "ﾒﾄﾞﾃｯｸ株式会社",
            "（株）メドテック",
            "メドテック（株）",
            "メドテック ( 株 )",
            "㊑メドテック",
            "株式会社\u{3000}メドテック",
            "メドテック・株式会社",
            "ﾒﾄﾞﾃｯｸ",
        ]);
        assert_eq!(norm("株式会社メドテック"), "メドテック");
    }

    #[test]
    fn english_legal_forms_case_spacing_and_width_do_not_hide_a_conflict() {
        assert_all_same(&[
            "MedTech Inc.",
            "MEDTECH, INC",
            "Medtech Co., Ltd.",
            "ＭｅｄＴｅｃｈ",
            "Med Tech Corporation",
            "med-tech",
            "MedTech",
            "MedTech Co.,Ltd.",
            "MedTech Co. Ltd",
            "MedTech Incorporated",
            "MedTech Corp.",
            "MedTech Corp",
            "MedTech Limited",
            "MedTech LLC",
            "MedTech L.L.C.",
            "MedTech K.K.",
            "MedTech KK",
            "MedTech GK",
            "MedTech GmbH",
            "MedTech AG",
            "MedTech S.A.",
            "MedTech PLC",
            "MedTech Pte. Ltd.",
            "  medtech\t",
            "Med・Tech",
            "Med.Tech",
            "ＭｅｄＴｅｃｈ株式会社",
            "MedTech 株式会社",
            "株式会社ＭＥＤＴＥＣＨ",
        ]);
        assert_eq!(norm("MedTech Inc."), "medtech");
    }

    #[test]
    fn every_listed_legal_form_alone_normalizes_to_nothing() {
        let forms = [
            "株式会社",
            "有限会社",
            "合同会社",
            "合資会社",
            "合名会社",
            "一般社団法人",
            "一般財団法人",
            "公益社団法人",
            "公益財団法人",
            "特定非営利活動法人",
            "NPO法人",
            "ＮＰＯ法人",
            "医療法人",
            "学校法人",
            "国立大学法人",
            "独立行政法人",
            "(株)",
            "(有)",
            "(同)",
            "㈱",
            "㈲",
            "Inc.",
            "Inc",
            "Incorporated",
            "Corp.",
            "Corp",
            "Corporation",
            "Co.",
            "Ltd.",
            "Co.,Ltd.",
            "Co. Ltd",
            "Limited",
            "LLC",
            "L.L.C.",
            "K.K.",
            "KK",
            "GK",
            "GmbH",
            "AG",
            "S.A.",
            "PLC",
            "Pte. Ltd.",
            "",
            "   ",
            "・、。-&'.",
            "株式会社 Inc.",
        ];
        for form in forms {
            assert_eq!(norm(form), "", "{form:?}");
            assert!(!same_organization(form, form), "{form:?}");
            assert_eq!(normalize_for_storage(form), None, "{form:?}");
        }
    }

    #[test]
    fn each_japanese_form_is_removed_in_front_and_behind() {
        for form in JA_LEGAL_FORMS {
            assert_eq!(norm(&format!("{form}メドテック")), "メドテック", "{form}");
            assert_eq!(norm(&format!("メドテック{form}")), "メドテック", "{form}");
            assert_eq!(norm(&format!("{form} メドテック")), "メドテック", "{form}");
        }
        for abbreviation in JA_ABBREVIATIONS {
            assert_eq!(norm(&format!("({abbreviation})メドテック")), "メドテック");
            assert_eq!(norm(&format!("メドテック（{abbreviation}）")), "メドテック");
        }
    }

    #[test]
    fn longest_japanese_form_wins() {
        assert_eq!(norm("医療法人社団メドテック会"), "メドテック会");
        assert_eq!(norm("メドテック地方独立行政法人"), "メドテック");
        assert_eq!(
            norm("国立研究開発法人日本医療研究開発機構"),
            "日本医療研究開発機構"
        );
    }

    #[test]
    fn english_forms_are_whole_trailing_words_only() {
        assert_eq!(norm("Incubator Inc."), "incubator");
        assert_eq!(norm("Cocoon Co."), "cocoon");
        assert_eq!(norm("Agile AG"), "agile");
        assert_eq!(norm("Incubator"), "incubator");
        assert_eq!(norm("Cocoon"), "cocoon");
        assert_eq!(norm("Agile"), "agile");
        assert_eq!(norm("Medinc"), "medinc");
        assert_eq!(norm("Ltd Partners"), "ltdpartners");
        assert_eq!(norm("AG Medical"), "agmedical");
    }

    #[test]
    fn different_organizations_stay_different() {
        let pairs = [
            ("MedTech", "MedTech Labs"),
            ("Incubator Inc.", "Cubator"),
            ("Cocoon", "Coon"),
            ("Agile", "ile"),
            ("メドテック", "メドテーク"),
            ("メドテック株式会社", "メドテック研究所"),
            ("株式会社メドテック", "メドテック合同"),
            ("MedTech 1", "MedTech 2"),
            ("合同製鐵", "製鐵"),
        ];
        for (a, b) in pairs {
            assert!(!same_organization(a, b), "{a:?} vs {b:?}");
            assert!(!same_organization(b, a), "{b:?} vs {a:?}");
        }
    }

    #[test]
    fn letters_and_digits_of_every_script_are_kept() {
        assert_eq!(norm("Ａｌｐｈａ－１２３"), "alpha123");
        assert_eq!(norm("Ωmega Ärzte GmbH"), "ωmegaärzte");
        assert_eq!(norm("北京医疗 有限公司"), "北京医疗有限公司");
        assert_eq!(norm("서울메디칼"), "서울메디칼");
        assert_eq!(norm("हिन्दी Labs"), "हिन्दीlabs");
        assert_eq!(norm("Café"), norm("Cafe\u{301}"));
        assert_eq!(norm("メディカル・ラボ"), "メディカルラボ");
        assert_eq!(norm("Johnson & Johnson K.K."), "johnsonjohnson");
        assert_eq!(norm("O'Brien Medical"), "obrienmedical");
        assert_eq!(norm("ｶﾌﾞｼｷｶﾞｲｼｬ"), "カブシキガイシャ");
    }

    #[test]
    fn parentheses_that_are_not_a_legal_form_are_only_punctuation() {
        assert_eq!(norm("MedTech (Japan)"), "medtechjapan");
        assert_eq!(norm("MedTech (株式会社"), "medtech");
        assert_eq!(norm("(メド)テック"), "メドテック");
        assert_eq!(norm("メドテック(東京)"), "メドテック東京");
        assert_eq!(norm("((株)メドテック"), "メドテック");
    }

    #[test]
    fn several_forms_are_all_removed() {
        assert_eq!(norm("株式会社メドテック株式会社"), "メドテック");
        assert_eq!(norm("MedTech Inc. 株式会社"), "medtech");
        assert_eq!(norm("株式会社 MedTech Co., Ltd."), "medtech");
    }

    #[test]
    fn normalization_is_idempotent_on_the_examples() {
        for name in [
            "株式会社メドテック",
            "MedTech Inc.",
            "Med Tech Corporation",
            "Incubator Inc.",
            "ＭｅｄＴｅｃｈ株式会社",
            "医療法人社団メドテック会",
        ] {
            let once = norm(name);
            assert_eq!(norm(&once), once, "{name:?}");
        }
    }

    #[test]
    fn storage_form_is_the_normalized_form() {
        assert_eq!(
            normalize_for_storage("メドテック(株)"),
            Some("メドテック".to_owned())
        );
        assert_eq!(
            normalize_for_storage(" MedTech, Inc. "),
            Some("medtech".to_owned())
        );
    }
}
