//! Go's regular expressions (RE2 syntax, as `regexp.MatchString` in containers/common reads
//! hooks.d conditions) compiled with Rust's `regex` crate.
//!
//! The two dialects share most syntax but not all of it; a pattern is translated first:
//! - `\Q…\E` quotes a literal (to the end when there is no `\E`);
//! - octal escapes `\0`, `\12`, `\123` (up to three digits; a single `\1`…`\7` is a
//!   backreference, which Go refuses too);
//! - `{` that does not start a repetition (`a{`, `{x}`) is a literal; a repetition count above
//!   1000 is refused, as Go does;
//! - `\d`, `\w`, `\s` and `\b` are ASCII-only (`\s` is `[\t\n\f\r ]`: no vertical tab);
//! - inside a class, `[`, `&&`, `--` and `~~` are literals (Rust reads nested classes and set
//!   operations there);
//! - an escaped punctuation character is that character (Rust reads `\<`, `\>` as word
//!   boundaries);
//! - flags are Go's `i`, `m`, `s`, `U` only, and escapes Go does not know are refused.
//!
//! What stays different is listed in the README (hooks.d section).

use std::fmt::Write as _;

use regex::{Regex, RegexSet};
use thiserror::Error;

/// The largest repetition count Go accepts (`a{1001}` is refused there).
const MAX_REPEAT: u32 = 1000;

/// Why a pattern is not a valid Go regular expression (or cannot be run here).
#[derive(Debug, Error)]
pub enum PatternError {
    #[error("{0} (a Go/RE2 regular expression is expected)")]
    Go(String),
    #[error(transparent)]
    Syntax(#[from] regex::Error),
}

fn go_error<T>(message: impl Into<String>) -> Result<T, PatternError> {
    Err(PatternError::Go(message.into()))
}

/// Compiles a Go regular expression.
pub fn compile(pattern: &str) -> Result<Regex, PatternError> {
    Ok(Regex::new(&translate(pattern)?)?)
}

/// Compiles several Go regular expressions into one set; the patterns are assumed valid
/// alone (check each with [`compile`] first to name a faulty one).
pub fn compile_set(patterns: &[String]) -> Result<RegexSet, PatternError> {
    let translated = patterns
        .iter()
        .map(|p| translate(p))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RegexSet::new(translated)?)
}

/// The Rust `regex` pattern that means what `pattern` means to Go.
pub fn translate(pattern: &str) -> Result<String, PatternError> {
    let mut out = String::with_capacity(pattern.len() + 8);
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        i = match chars[i] {
            '\\' => escape(&chars, i + 1, &mut out)?,
            '[' => class(&chars, i + 1, &mut out)?,
            '{' => brace(&chars, i, &mut out)?,
            '(' => group(&chars, i, &mut out)?,
            // Literals in Go wherever they stand.
            c @ (']' | '}') => {
                out.push_str(&literal(c));
                i + 1
            }
            c => {
                out.push(c);
                i + 1
            }
        };
    }
    Ok(out)
}

/// An escape outside a class, `chars[at]` being the character after the backslash; returns
/// the index after it.
fn escape(chars: &[char], at: usize, out: &mut String) -> Result<usize, PatternError> {
    let Some(&c) = chars.get(at) else {
        return go_error("trailing backslash at end of expression");
    };
    match c {
        'Q' => Ok(quoted(chars, at + 1, out)),
        'd' | 'D' | 'w' | 'W' | 's' | 'S' => {
            out.push_str(&perl_class(c, false));
            Ok(at + 1)
        }
        'b' | 'B' => {
            write!(out, "(?-u:\\{c})").expect("writing to a String");
            Ok(at + 1)
        }
        'A' | 'z' => {
            out.push('\\');
            out.push(c);
            Ok(at + 1)
        }
        'p' | 'P' => unicode_class(chars, at - 1, c, out),
        _ => {
            let (ch, next) = class_char_escape(chars, at)?;
            out.push_str(&literal(ch));
            Ok(next)
        }
    }
}

/// `\Q…\E`: everything up to `\E` (or the end) is literal.
fn quoted(chars: &[char], mut at: usize, out: &mut String) -> usize {
    while at < chars.len() {
        if chars[at] == '\\' && chars.get(at + 1) == Some(&'E') {
            return at + 2;
        }
        out.push_str(&literal(chars[at]));
        at += 1;
    }
    at
}

/// A single-character escape (valid outside and inside classes), `chars[at]` being the
/// character after the backslash: Go's octal, hex, control and punctuation escapes.
fn class_char_escape(chars: &[char], at: usize) -> Result<(char, usize), PatternError> {
    let c = chars[at];
    let simple = match c {
        'a' => Some('\u{7}'),
        'f' => Some('\u{c}'),
        't' => Some('\t'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        'v' => Some('\u{b}'),
        _ => None,
    };
    if let Some(ch) = simple {
        return Ok((ch, at + 1));
    }
    match c {
        '1'..='7' if !chars.get(at + 1).is_some_and(|d| d.is_digit(8)) => go_error(format!(
            "invalid escape sequence \\{c} (backreferences are not supported)"
        )),
        '0'..='7' => Ok(octal(chars, at)),
        'x' => hex(chars, at + 1),
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok((c, at + 1)),
        c => go_error(format!("invalid escape sequence \\{c}")),
    }
}

/// Up to three octal digits starting at `at`.
fn octal(chars: &[char], at: usize) -> (char, usize) {
    let mut value = 0u32;
    let mut end = at;
    while end < chars.len() && end < at + 3 {
        match chars[end].to_digit(8) {
            Some(d) => value = value * 8 + d,
            None => break,
        }
        end += 1;
    }
    (char::from_u32(value).expect("at most 0o777"), end)
}

/// `\xHH` or `\x{H…}`, `at` being just after the `x`.
fn hex(chars: &[char], at: usize) -> Result<(char, usize), PatternError> {
    let bad = || go_error("invalid escape sequence \\x");
    let (digits, next): (String, usize) = if chars.get(at) == Some(&'{') {
        let Some(close) = chars[at..].iter().position(|&c| c == '}') else {
            return bad();
        };
        (chars[at + 1..at + close].iter().collect(), at + close + 1)
    } else if at + 2 <= chars.len() {
        (chars[at..at + 2].iter().collect(), at + 2)
    } else {
        return bad();
    };
    let valid = !digits.is_empty() && digits.chars().all(|c| c.is_ascii_hexdigit());
    match u32::from_str_radix(&digits, 16).ok().filter(|_| valid) {
        Some(v) if v <= 0x10FFFF => Ok((char::from_u32(v).unwrap_or('\u{FFFD}'), next)),
        _ => bad(),
    }
}

/// One literal character, written so that Rust reads it as itself anywhere (in or out of a
/// class).
fn literal(c: char) -> String {
    if c.is_alphanumeric() || c == '_' || (!c.is_ascii() && !c.is_control()) {
        c.to_string()
    } else {
        format!("\\x{{{:X}}}", c as u32)
    }
}

/// Go's ASCII Perl classes; `inside` gives the form usable within a `[…]`.
fn perl_class(c: char, inside: bool) -> String {
    let body = match c.to_ascii_lowercase() {
        'd' => "0-9",
        'w' => "0-9A-Za-z_",
        _ => "\\x{9}\\x{A}\\x{C}\\x{D}\\x{20}",
    };
    match (c.is_ascii_uppercase(), inside) {
        (false, true) => body.to_string(),
        (false, false) => format!("[{body}]"),
        (true, _) => format!("[^{body}]"),
    }
}

/// A character class, `at` being just after its `[`; returns the index after its `]`.
fn class(chars: &[char], mut at: usize, out: &mut String) -> Result<usize, PatternError> {
    out.push('[');
    if chars.get(at) == Some(&'^') {
        out.push('^');
        at += 1;
    }
    let mut first = true;
    loop {
        match chars.get(at) {
            None => return go_error("missing closing ]"),
            Some(']') if !first => {
                out.push(']');
                return Ok(at + 1);
            }
            _ => {}
        }
        first = false;
        at = class_item(chars, at, out)?;
    }
}

/// One item of a class: `[:name:]`, a Perl or Unicode class, a character or a range.
fn class_item(chars: &[char], at: usize, out: &mut String) -> Result<usize, PatternError> {
    if chars[at] == '['
        && chars.get(at + 1) == Some(&':')
        && let Some(end) = posix_class_end(chars, at)
    {
        out.extend(&chars[at..end]);
        return Ok(end);
    }
    if chars[at] == '\\' {
        match chars.get(at + 1) {
            Some(&c @ ('d' | 'D' | 'w' | 'W' | 's' | 'S')) => {
                out.push_str(&perl_class(c, true));
                return Ok(at + 2);
            }
            Some(&c @ ('p' | 'P')) => return unicode_class(chars, at, c, out),
            _ => {}
        }
    }
    let (lo, next) = class_char(chars, at)?;
    out.push_str(&literal(lo));
    if chars.get(next) == Some(&'-') && chars.get(next + 1).is_some_and(|&c| c != ']') {
        let (hi, after) = class_char(chars, next + 1)?;
        if hi < lo {
            return go_error(format!("invalid character class range {lo}-{hi}"));
        }
        out.push('-');
        out.push_str(&literal(hi));
        return Ok(after);
    }
    Ok(next)
}

/// `[:alpha:]` or `[:^alpha:]` at `at`: the index after its closing `:]`.
fn posix_class_end(chars: &[char], at: usize) -> Option<usize> {
    let rest = &chars[at + 2..];
    let close = rest.windows(2).position(|w| w == [':', ']'])?;
    Some(at + 2 + close + 2)
}

/// `\pL`, `\p{Greek}` (or `\P…`) at `at` (its backslash), copied as is.
fn unicode_class(
    chars: &[char],
    at: usize,
    c: char,
    out: &mut String,
) -> Result<usize, PatternError> {
    out.push('\\');
    out.push(c);
    match chars.get(at + 2) {
        Some('{') => {
            let Some(close) = chars[at + 2..].iter().position(|&c| c == '}') else {
                return go_error("invalid character class range (unclosed \\p{)");
            };
            out.extend(&chars[at + 2..at + 3 + close]);
            Ok(at + 3 + close)
        }
        Some(&name) => {
            out.push(name);
            Ok(at + 3)
        }
        None => go_error("invalid character class range (\\p at end)"),
    }
}

/// One character in a class, plain or escaped.
fn class_char(chars: &[char], at: usize) -> Result<(char, usize), PatternError> {
    match chars.get(at) {
        None => go_error("missing closing ]"),
        Some('\\') if at + 1 < chars.len() => class_char_escape(chars, at + 1),
        Some('\\') => go_error("trailing backslash at end of expression"),
        Some(&c) => Ok((c, at + 1)),
    }
}

/// `{` at `at`: a repetition `{n}`, `{n,}`, `{n,m}` is copied (counts above 1000 refused);
/// anything else is a literal `{`, as in Go.
fn brace(chars: &[char], at: usize, out: &mut String) -> Result<usize, PatternError> {
    let Some(close) = chars[at..].iter().position(|&c| c == '}') else {
        out.push_str("\\{");
        return Ok(at + 1);
    };
    let inner: String = chars[at + 1..at + close].iter().collect();
    let (min, max) = match inner.split_once(',') {
        Some((min, max)) => (min, Some(max)),
        None => (inner.as_str(), None),
    };
    let number = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let valid = number(min) && max.is_none_or(|m| m.is_empty() || number(m));
    if !valid {
        out.push_str("\\{");
        return Ok(at + 1);
    }
    let too_large = |s: &str| !matches!(s.parse::<u32>(), Ok(n) if n <= MAX_REPEAT);
    if too_large(min) || max.is_some_and(|m| !m.is_empty() && too_large(m)) {
        return go_error(format!("invalid repeat count {{{inner}}}"));
    }
    out.push('{');
    out.push_str(&inner);
    out.push('}');
    Ok(at + close + 1)
}

/// `(`: a group; `(?flags)` and `(?flags:` may use only Go's flags `i`, `m`, `s`, `U`.
fn group(chars: &[char], at: usize, out: &mut String) -> Result<usize, PatternError> {
    out.push('(');
    if chars.get(at + 1) != Some(&'?') {
        return Ok(at + 1);
    }
    let named = matches!(chars.get(at + 2), Some('P' | '<'));
    if named {
        return Ok(at + 1);
    }
    let mut i = at + 2;
    while let Some(&c) = chars.get(i) {
        match c {
            'i' | 'm' | 's' | 'U' | '-' => i += 1,
            ')' | ':' => break,
            c => return go_error(format!("invalid or unsupported Perl syntax: (?{c}")),
        }
    }
    out.extend(&chars[at + 1..i]);
    Ok(i)
}

#[cfg(test)]
mod tests;
