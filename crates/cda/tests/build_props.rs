//! Property tests of the builder's parsers of untrusted input: timestamps, fiscal codes,
//! narrative fragments, statement trees and whole inputs never panic, accept what is valid and
//! refuse what is not.

use fse_cda::build::narrative::parse_fragment;
use fse_cda::build::node::{Child, Node};
use fse_cda::build::types::{check_ts, fiscal_code_check_char, FiscalCode, Ts};
use proptest::prelude::*;

proptest! {
    #[test]
    fn timestamps_never_panic(s in "\\PC{0,30}") {
        let _ = check_ts(&s, 4);
        let _ = Ts::try_from(s);
    }

    #[test]
    fn valid_timestamps_are_accepted(
        y in 1900u32..2100, m in 1u32..=12, d in 1u32..=28, h in 0u32..24, mi in 0u32..60,
        s in 0u32..60, zh in 0u32..=12, sign in prop::bool::ANY,
    ) {
        let date = format!("{y:04}{m:02}{d:02}");
        prop_assert!(Ts::try_from(date.clone()).is_ok());
        let full = format!("{date}{h:02}{mi:02}{s:02}{}{zh:02}00", if sign { '+' } else { '-' });
        prop_assert!(Ts::try_from(full.clone()).is_ok(), "{}", full);
        // Any separator makes it invalid.
        let dashed = format!("{y:04}-{m:02}-{d:02}");
        prop_assert!(Ts::try_from(dashed).is_err());
        // Month 13+ and hour 24+ are refused.
        let bad_month = format!("{y:04}{:02}{d:02}", m + 12);
        prop_assert!(Ts::try_from(bad_month).is_err());
        let bad_hour = format!("{date}{:02}00", h + 24);
        prop_assert!(Ts::try_from(bad_hour).is_err());
    }

    #[test]
    fn fiscal_codes_with_the_right_check_character_are_accepted(
        letters in "[A-Z]{6}", year in 0u32..100, month in "[ABCDEHLMPRST]", day in 1u32..=71,
        town in "[A-Z][0-9]{3}", wrong in 0u8..25,
    ) {
        let first15 = format!("{letters}{year:02}{month}{day:02}{town}");
        let check = fiscal_code_check_char(first15.as_bytes()).unwrap();
        let code = format!("{first15}{}", check as char);
        prop_assert!(FiscalCode::try_from(code.clone()).is_ok(), "{}", code);
        prop_assert!(FiscalCode::try_from(code.to_lowercase()).is_ok());
        let other = b'A' + (check - b'A' + 1 + wrong) % 26;
        let bad = format!("{first15}{}", other as char);
        prop_assert!(FiscalCode::try_from(bad).is_err());
    }

    #[test]
    fn fiscal_code_parser_never_panics(s in "\\PC{0,20}") {
        let _ = FiscalCode::try_from(s);
    }

    #[test]
    fn narrative_parser_never_panics(s in "[<>/a-z =\"&;#!?\\[\\]-]{0,60}") {
        let _ = parse_fragment(&s);
    }

    #[test]
    fn escaped_paragraph_text_round_trips(text in "\\PC{0,40}") {
        let escaped = text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        let content = parse_fragment(&format!("<paragraph>{escaped}</paragraph>")).unwrap();
        prop_assert_eq!(content.len(), 1);
        let Child::Element(p) = &content[0] else { panic!("not an element") };
        let inner: String = p
            .children
            .iter()
            .map(|c| match c {
                Child::Text(t) => t.clone(),
                Child::Element(_) => panic!("unexpected element"),
            })
            .collect();
        prop_assert_eq!(inner, text);
    }

    #[test]
    fn statement_trees_never_panic(json in "[\\[\\]{}\",: a-zA-Z0-9]{0,80}") {
        let _ = serde_json::from_str::<Node>(&json);
    }

    #[test]
    fn whole_inputs_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = fse_cda::build::build(&bytes);
    }
}
