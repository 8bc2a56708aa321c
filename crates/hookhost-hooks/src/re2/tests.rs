//! Go RE2 syntax that Rust's `regex` reads differently or refuses, each with what Go's
//! `regexp.MatchString` answers (Go's regexp/syntax documentation and parser).

use super::*;

fn matches(pattern: &str, text: &str) -> bool {
    compile(pattern)
        .unwrap_or_else(|e| panic!("{pattern:?}: {e}"))
        .is_match(text)
}

#[test]
fn quoted_literals() {
    assert!(matches(r"^\Qa.b*c\E$", "a.b*c"));
    assert!(!matches(r"^\Qa.b*c\E$", "axbbc"));
    // Without \E the quote runs to the end.
    assert!(matches(r"x\Q[(", "x[("));
    assert!(matches(r"^\Q\d\E\d$", r"\d7"));
}

#[test]
fn octal_escapes() {
    assert!(matches(r"^\101\0$", "A\0"));
    assert!(matches(r"^\12$", "\n"));
    // At most three digits: \1014 is 'A' then '4'.
    assert!(matches(r"^\1014$", "A4"));
    for backreference in [r"(a)\1", r"\7"] {
        let err = compile(backreference).unwrap_err();
        assert!(err.to_string().contains("backreferences"), "{err}");
    }
    assert!(compile(r"\8").is_err());
}

#[test]
fn a_brace_that_is_no_repetition_is_literal() {
    assert!(matches(r"^a{$", "a{"));
    assert!(matches(r"^{x}$", "{x}"));
    assert!(matches(r"^a{,2}$", "a{,2}"));
    assert!(matches(r"^a{2}$", "aa"));
    assert!(matches(r"^a{1,}$", "aaa"));
    assert!(matches(r"^a{1,2}b$", "aab"));
    assert!(matches(r"^a}]$", "a}]"));
    assert!(compile("a{1001}").is_err());
    assert!(compile("a{2,1001}").is_err());
    assert!(compile("a{1000}").is_ok());
}

#[test]
fn perl_classes_are_ascii() {
    assert!(!matches(r"^\d$", "٣")); // ARABIC-INDIC DIGIT THREE
    assert!(matches(r"^\d$", "3"));
    assert!(!matches(r"^\w+$", "é"));
    assert!(matches(r"^\W$", "é"));
    assert!(matches(r"^\w+$", "a_Z9"));
    assert!(!matches(r"^\s$", "\u{b}")); // RE2's \s has no vertical tab
    assert!(!matches(r"^\s$", "\u{a0}"));
    assert!(matches(r"^\s+$", "\t\n\u{c}\r "));
    assert!(matches(r"^\S$", "\u{b}"));
    assert!(!matches(r"^[\d]$", "٣"));
    assert!(matches(r"^[\D]$", "٣"));
    assert!(matches(r"^[x\s]+$", "x x"));
    // \b is an ASCII word boundary: é is not a word character.
    assert!(matches(r"\bx\b", "éxé"));
}

#[test]
fn class_syntax_rust_reads_as_set_operations_is_literal() {
    assert!(matches(r"^[a&&b]+$", "a&&b"));
    // `--` is a range from `-` in Go (Rust reads a set difference); `a--` is a bad range.
    assert!(matches(r"^[--/]+$", "-./"));
    assert!(compile("[a--b]").is_err());
    assert!(matches(r"^[~~]$", "~"));
    assert!(matches(r"^[[a]+$", "[a["));
    assert!(matches(r"^[]a]+$", "]a"));
    assert!(matches(r"^[a-]+$", "a-"));
    assert!(matches(r"^[^]a]$", "b"));
    assert!(matches(r"^[[:alpha:]]+$", "abc"));
    assert!(!matches(r"^[[:^alpha:]]$", "a"));
    assert!(matches(r"^[\pL]+$", "éa"));
    assert!(matches(r"^[\p{Greek}x]+$", "αx"));
    assert!(matches(r"^[\x41-\x{43}]+$", "ABC"));
    assert!(matches(r"^[\101-\103]+$", "ABC"));
    assert!(compile("[b-a]").is_err());
    assert!(compile("[a").is_err());
}

#[test]
fn escaped_punctuation_is_itself() {
    assert!(matches(r"^\<\>$", "<>"));
    assert!(matches(r"^\#\&\~\-\ $", "#&~- "));
    assert!(matches(r"^a\.b$", "a.b"));
    assert!(!matches(r"^a\.b$", "axb"));
}

#[test]
fn unicode_classes_and_flags() {
    assert!(matches(r"^\pL+$", "éa"));
    assert!(matches(r"^\p{Greek}+$", "αβ"));
    assert!(matches(r"^\P{Greek}$", "a"));
    assert!(matches(r"(?i)^ABC$", "abc"));
    assert!(matches(r"(?i:a)b", "Ab"));
    assert!(matches(r"(?s)^a.b$", "a\nb"));
    assert!(matches(r"^(?P<x>a)(?:b)$", "ab"));
    for rust_only in ["(?x)a b", "(?u)a", "(?R)a"] {
        assert!(compile(rust_only).is_err(), "{rust_only}");
    }
}

#[test]
fn escapes_go_does_not_know_are_refused() {
    for bad in [
        r"\e",
        r"\C",
        r"\E",
        r"\Z",
        r"\u0041",
        r"\",
        r"\x{110000}",
        r"\xZ",
    ] {
        assert!(compile(bad).is_err(), "{bad}");
    }
    assert!(matches(r"^\a\f\t\n\r\v$", "\u{7}\u{c}\t\n\r\u{b}"));
    assert!(matches(r"\Aab\z", "ab"));
}

#[test]
fn sets_use_the_same_translation() {
    let set = compile_set(&[r"^\d$".into(), r"^\Q.\E$".into()]).unwrap();
    assert!(set.is_match("."));
    assert!(!set.is_match("٣"));
    assert!(!set.is_match("x"));
}

/// A difference that stays (README, hooks.d section): the translation gives Go's meaning to
/// Go syntax, but not every refusal of Go's parser — Rust accepts a nested repetition.
#[test]
fn some_patterns_go_refuses_are_accepted() {
    assert!(compile("a**").is_ok());
}
