//! Value parsers for flags, so that clap reports bad values with the flag's name.

use chrono::{DateTime, Utc};

/// `2026-11-29T10:00:00Z`, or a duration back from now: `30s`, `10m`, `2h`, `1d`.
pub fn since(value: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(time) = DateTime::parse_from_rfc3339(value) {
        return Ok(time.with_timezone(&Utc));
    }
    let (number, unit) = value.split_at(
        value
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(value.len()),
    );
    let n: i64 = number.parse().map_err(|_| bad_since(value))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        _ => return Err(bad_since(value)),
    };
    Ok(Utc::now() - chrono::Duration::seconds(secs))
}

fn bad_since(value: &str) -> String {
    format!("{value:?} is neither an RFC 3339 time nor a duration like 30s, 10m, 2h, 1d")
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
}
