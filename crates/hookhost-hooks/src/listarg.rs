//! List-valued command-line flags, in every spelling the seed workflow uses.
//!
//! `--args ls,/tmp/a`, `--args '["ls","/tmp/a"]'`, repeated `--args ls --args /tmp/a`, and the
//! unquoted shell form `--args [ls, /tmp/a]` (which the shell hands over as `[ls,` `/tmp/a]`
//! and without the inner quotes) all mean the same list.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ListError {
    #[error("malformed JSON list {given:?}: {reason}")]
    MalformedJson { given: String, reason: String },
    #[error("malformed list {given:?}: a list starting with '[' must end with ']'")]
    Unclosed { given: String },
}

/// How a comma-separated value splits into items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Every comma separates items (`--args ls,/tmp/a`).
    Always,
    /// Split only when every piece is a `KEY=VALUE` pair, so `--env A=1,2` keeps its comma.
    KeyValue,
}

/// Parses one flag value into its items.
pub fn parse_list(value: &str, split: Split) -> Result<Vec<String>, ListError> {
    let trimmed = value.trim();
    if trimmed.starts_with('[') {
        return parse_bracketed(trimmed);
    }
    Ok(split_commas(value, split))
}

/// Parses every occurrence of a repeated flag and concatenates the items.
pub fn parse_all(values: &[String], split: Split) -> Result<Vec<String>, ListError> {
    let mut items = Vec::new();
    for value in values {
        items.extend(parse_list(value, split)?);
    }
    Ok(items)
}

fn parse_bracketed(value: &str) -> Result<Vec<String>, ListError> {
    if !value.ends_with(']') {
        return Err(ListError::Unclosed {
            given: value.to_string(),
        });
    }
    if value.contains('"') {
        // Quotes survived the shell: this must be real JSON.
        return serde_json::from_str::<Vec<String>>(value).map_err(|e| ListError::MalformedJson {
            given: value.to_string(),
            reason: e.to_string(),
        });
    }
    // `[a, b]`: the shell removed the quotes of a JSON list.
    let inner = &value[1..value.len() - 1];
    Ok(inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect())
}

fn split_commas(value: &str, split: Split) -> Vec<String> {
    if value.is_empty() {
        return Vec::new();
    }
    let pieces: Vec<&str> = value.split(',').collect();
    let split_here = match split {
        Split::Always => true,
        Split::KeyValue => pieces.iter().all(|p| p.contains('=')),
    };
    if split_here {
        pieces.into_iter().map(str::to_string).collect()
    } else {
        vec![value.to_string()]
    }
}

/// How many of `rest` form one list the shell split: 1 unless `rest[0]` opens a list that a
/// later word closes.
fn split_list_len(rest: &[String]) -> usize {
    let opens = rest
        .first()
        .is_some_and(|w| w.starts_with('[') && !w.trim_end().ends_with(']'));
    if !opens {
        return rest.len().min(1);
    }
    rest.iter()
        .position(|w| w.trim_end().ends_with(']'))
        .map_or(1, |closing| closing + 1)
}

/// Rejoins a JSON-style list that the shell split at spaces (`--args [ls, /tmp/a]` arrives as
/// `--args`, `[ls,`, `/tmp/a]`) so the flag parser sees one value. `flags` are the list flags.
pub fn rejoin_split_lists(argv: Vec<String>, flags: &[&str]) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut i = 0;
    while i < argv.len() {
        out.push(argv[i].clone());
        i += 1;
        if flags.contains(&argv[i - 1].as_str()) && i < argv.len() {
            let taken = split_list_len(&argv[i..]);
            out.push(argv[i..i + taken].join(" "));
            i += taken;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &str) -> Vec<String> {
        parse_list(v, Split::Always).unwrap()
    }

    #[test]
    fn comma_json_and_shell_stripped_forms_agree() {
        let want = vec!["ls".to_string(), "/tmp/a".to_string()];
        assert_eq!(list("ls,/tmp/a"), want);
        assert_eq!(list(r#"["ls", "/tmp/a"]"#), want);
        assert_eq!(list("[ls, /tmp/a]"), want);
        assert_eq!(list("[ls,/tmp/a]"), want);
    }

    #[test]
    fn json_keeps_commas_inside_items() {
        assert_eq!(list(r#"["a,b","c"]"#), vec!["a,b", "c"]);
    }

    #[test]
    fn env_commas_split_only_between_pairs() {
        let kv = |v| parse_list(v, Split::KeyValue).unwrap();
        assert_eq!(kv("A=1,B=2"), vec!["A=1", "B=2"]);
        assert_eq!(kv("A=1,2"), vec!["A=1,2"]);
        assert_eq!(kv("[\"platform=linux\"]"), vec!["platform=linux"]);
        assert_eq!(kv("[platform=linux]"), vec!["platform=linux"]);
    }

    #[test]
    fn malformed_lists_are_errors_that_quote_the_input() {
        let err = parse_list(r#"["ls", "/tmp/a""#, Split::Always).unwrap_err();
        assert!(err.to_string().contains("must end with ']'"), "{err}");
        let err = parse_list(r#"["ls" "/tmp/a"]"#, Split::Always).unwrap_err();
        assert!(err.to_string().starts_with("malformed JSON list"), "{err}");
        let err = parse_list(r#"["ls", 3]"#, Split::Always).unwrap_err();
        assert!(err.to_string().contains("malformed JSON list"), "{err}");
    }

    #[test]
    fn rejoins_lists_split_by_the_shell() {
        let argv: Vec<String> = ["create", "--args", "[ls,", "/tmp/a]", "name", "/bin/ls"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let joined = rejoin_split_lists(argv, &["--args"]);
        assert_eq!(
            joined,
            vec!["create", "--args", "[ls, /tmp/a]", "name", "/bin/ls"]
        );
    }

    #[test]
    fn leaves_whole_values_alone() {
        for words in [
            &["--args", "[ls]", "x"][..],
            &["--args", "[\"a\",", "w", "/bin/ls"],
            &["--args"],
        ] {
            let argv: Vec<String> = words.iter().map(|s| s.to_string()).collect();
            assert_eq!(rejoin_split_lists(argv.clone(), &["--args"]), argv);
        }
    }
}
