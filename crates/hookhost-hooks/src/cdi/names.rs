//! CDI names: a fully qualified device name is `vendor/class=name` (`example.com/gpu=0`), with
//! the character rules of the CDI specification's Go reference (`pkg/parser`).

/// Why a name is not valid.
pub type BadName = String;

/// A fully qualified device name, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qualified<'a> {
    pub vendor: &'a str,
    pub class: &'a str,
    pub name: &'a str,
}

impl<'a> Qualified<'a> {
    /// `vendor/class=name`, each part checked.
    pub fn parse(text: &'a str) -> Result<Qualified<'a>, BadName> {
        let (kind, name) = text
            .split_once('=')
            .ok_or("it has no '=name' (a device is named vendor.com/class=name)")?;
        let (vendor_part, class_part) = kind
            .split_once('/')
            .ok_or("it has no 'vendor/' (a device is named vendor.com/class=name)")?;
        vendor(vendor_part)?;
        class(class_part)?;
        device(name)?;
        Ok(Qualified {
            vendor: vendor_part,
            class: class_part,
            name,
        })
    }
}

/// A vendor: letters, digits, `-`, `_`, `.`; starts with a letter, ends with a letter or digit.
pub fn vendor(text: &str) -> Result<(), BadName> {
    checked("vendor", text, true, |c| matches!(c, '-' | '_' | '.'))
}

/// A class: letters, digits, `-`, `_`; starts with a letter, ends with a letter or digit.
pub fn class(text: &str) -> Result<(), BadName> {
    checked("class", text, true, |c| matches!(c, '-' | '_'))
}

/// A device name: letters, digits, `-`, `_`, `.`, `:`; starts and ends with a letter or digit.
pub fn device(text: &str) -> Result<(), BadName> {
    checked("device name", text, false, |c| {
        matches!(c, '-' | '_' | '.' | ':')
    })
}

fn checked(
    what: &str,
    text: &str,
    letter_first: bool,
    inner: fn(char) -> bool,
) -> Result<(), BadName> {
    let Some(first) = text.chars().next() else {
        return Err(format!("empty {what}"));
    };
    let first_ok = match letter_first {
        true => first.is_ascii_alphabetic(),
        false => first.is_ascii_alphanumeric(),
    };
    if !first_ok {
        let must = if letter_first {
            "a letter"
        } else {
            "a letter or digit"
        };
        return Err(format!("{what} {text:?} must start with {must}"));
    }
    if !text.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!("{what} {text:?} must end with a letter or digit"));
    }
    match text
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && !inner(*c))
    {
        Some(bad) => Err(format!("invalid character {bad:?} in {what} {text:?}")),
        None => Ok(()),
    }
}

/// A Kubernetes qualified name as annotation keys are: an optional DNS-subdomain prefix and
/// `/`, then a name of at most 63 characters (alphanumerics, `-`, `_`, `.` inside).
pub fn annotation_key(key: &str) -> Result<(), BadName> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if prefix.is_empty() || prefix.len() > 253 || !prefix.split('.').all(label_ok) {
            return Err(format!(
                "prefix {prefix:?} is not a DNS subdomain (lower-case labels separated by '.')"
            ));
        }
    }
    if name.is_empty() || name.len() > 63 {
        return Err("the name part must have 1 to 63 characters".into());
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    let inner_ok = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !edge_ok(name.chars().next()) || !edge_ok(name.chars().last()) || !inner_ok {
        return Err(format!(
            "name part {name:?} must be alphanumerics with '-', '_' or '.' inside"
        ));
    }
    Ok(())
}
