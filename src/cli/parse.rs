//! Value parsers for flags, so that clap reports bad values with the flag's name.

use chrono::{DateTime, Utc};

/// `2026-11-29T10:00:00Z`, or a duration back from now: `30s`, `10m`, `2h`, `1d`.
pub fn since(value: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(value) {
        return Ok(time.with_timezone(&Utc));
    }
    let secs = seconds(value).ok_or_else(|| {
        format!("{value:?} is neither an RFC 3339 time nor a duration like 30s, 10m, 2h, 1d")
    })?;
    Ok(Utc::now() - chrono::Duration::seconds(secs as i64))
}

/// A duration: `30s` (or `30`), `10m`, `2h`, `1d`; more than zero.
pub fn duration(value: &str) -> Result<std::time::Duration, String> {
    match seconds(value) {
        Some(secs) if secs > 0 => Ok(std::time::Duration::from_secs(secs)),
        _ => Err(format!(
            "{value:?} is not a duration like 30s, 10m, 2h, 1d (more than zero)"
        )),
    }
}

/// `N[s|m|h|d]` in seconds.
fn seconds(value: &str) -> Option<u64> {
    let (number, unit) = value.split_at(
        value
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(value.len()),
    );
    let n: u64 = number.parse().ok()?;
    let unit = match unit {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return None,
    };
    n.checked_mul(unit).filter(|s| *s <= i64::MAX as u64 / 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_times_and_durations() {
        assert_eq!(
            since("2026-01-02T03:04:05Z").unwrap().timestamp(),
            1767323045
        );
        let ten_min = since("10m").unwrap();
        assert!((Utc::now() - ten_min).num_seconds() >= 599);
        assert!(since("10x").is_err());
    }

    #[test]
    fn durations_are_positive_and_have_units() {
        assert_eq!(duration("30s").unwrap().as_secs(), 30);
        assert_eq!(duration("2m").unwrap().as_secs(), 120);
        for bad in ["0s", "-1s", "1w", "s", ""] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }
}
