//! Resource limits of a WebAssembly hook, fixed when the hook is registered.
//!
//! Three limits live here: `fuel`, a deterministic compute budget (wasmtime consumes roughly one
//! unit per WebAssembly instruction), `memory`, the cap on all of an instance's memories, tables
//! and GC heap together, in bytes, and `writes`, the bytes a run may write through its writable
//! directories. The wall-clock bound is not a WASM-only limit: it is the hook's general
//! `timeout`, passed in at run time.

use serde::{Deserialize, Serialize};
use thiserror::Error;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Default fuel budget: about a second of straight-line compute, far more than a hook that reads
/// the state and edits a few files needs.
pub const DEFAULT_FUEL: u64 = 1_000_000_000;
/// Default memory cap: 64 MiB.
pub const DEFAULT_MEMORY: u64 = 64 * MIB;
/// Default write budget: 64 MiB.
pub const DEFAULT_WRITES: u64 = 64 * MIB;

/// Per-hook limits of a WebAssembly hook. Missing fields take the defaults when deserialised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WasmLimits {
    /// Fuel units the guest may consume before it is stopped.
    pub fuel: u64,
    /// Maximum memory in bytes: linear memories, tables and GC heap together.
    pub memory: u64,
    /// Bytes the hook may write (and sizes it may set files to) through its writable
    /// directories, per run.
    pub writes: u64,
}

impl Default for WasmLimits {
    fn default() -> Self {
        WasmLimits {
            fuel: DEFAULT_FUEL,
            memory: DEFAULT_MEMORY,
            writes: DEFAULT_WRITES,
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum LimitError {
    #[error("invalid size {value:?}: {reason} (examples: 64MiB, 512KiB, 1GiB, 65536)")]
    InvalidSize { value: String, reason: &'static str },
    #[error("invalid fuel {value:?}: {reason} (a positive whole number, e.g. 1000000000)")]
    InvalidFuel { value: String, reason: &'static str },
}

/// Parses a memory size: a positive whole number of bytes with an optional unit.
///
/// Units are binary and case-insensitive, like Docker's `--memory`: `B`, `K`/`KB`/`KiB`,
/// `M`/`MB`/`MiB`, `G`/`GB`/`GiB`. Underscores in the number are ignored (`1_048_576`).
pub fn parse_size(s: &str) -> Result<u64, LimitError> {
    let bad = |reason| LimitError::InvalidSize {
        value: s.to_string(),
        reason,
    };
    let trimmed = s.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '_'))
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let number = parse_number(digits).ok_or_else(|| bad("not a whole number"))?;
    let multiplier = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => KIB,
        "m" | "mb" | "mib" => MIB,
        "g" | "gb" | "gib" => GIB,
        _ => return Err(bad("unknown unit")),
    };
    let bytes = number
        .checked_mul(multiplier)
        .ok_or_else(|| bad("too large"))?;
    if bytes == 0 {
        return Err(bad("must be greater than zero"));
    }
    Ok(bytes)
}

/// Parses a fuel budget: a positive whole number, underscores allowed (`1_000_000`).
pub fn parse_fuel(s: &str) -> Result<u64, LimitError> {
    let bad = |reason| LimitError::InvalidFuel {
        value: s.to_string(),
        reason,
    };
    let fuel = parse_number(s.trim()).ok_or_else(|| bad("not a whole number or too large"))?;
    if fuel == 0 {
        return Err(bad("must be greater than zero"));
    }
    Ok(fuel)
}

fn parse_number(digits: &str) -> Option<u64> {
    let cleaned: String = digits.chars().filter(|&c| c != '_').collect();
    if cleaned.is_empty() || !cleaned.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    cleaned.parse().ok()
}

/// Formats a byte count for messages: `64 MiB`, `512 KiB`, `1000 bytes`.
pub fn format_size(bytes: u64) -> String {
    for (unit, name) in [(GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")] {
        if bytes >= unit && bytes.is_multiple_of(unit) {
            return format!("{} {name}", bytes / unit);
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_units() {
        assert_eq!(parse_size("64MiB"), Ok(64 * MIB));
        assert_eq!(parse_size("64M"), Ok(64 * MIB));
        assert_eq!(parse_size("64mb"), Ok(64 * MIB));
        assert_eq!(parse_size("1GiB"), Ok(GIB));
        assert_eq!(parse_size("512KiB"), Ok(512 * KIB));
        assert_eq!(parse_size("512 k"), Ok(512 * KIB));
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("1_048_576B"), Ok(MIB));
    }

    #[test]
    fn bad_sizes_name_the_value() {
        for bad in [
            "",
            "MiB",
            "64XB",
            "-1",
            "0",
            "1.5GiB",
            "99999999999999999999GiB",
        ] {
            let err = parse_size(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
        assert_eq!(
            parse_size("0"),
            Err(LimitError::InvalidSize {
                value: "0".into(),
                reason: "must be greater than zero"
            })
        );
    }

    #[test]
    fn fuel() {
        assert_eq!(parse_fuel("1000"), Ok(1000));
        assert_eq!(parse_fuel("1_000_000"), Ok(1_000_000));
        assert!(parse_fuel("0").is_err());
        assert!(
            parse_fuel("1e9")
                .unwrap_err()
                .to_string()
                .contains("\"1e9\"")
        );
        assert!(parse_fuel("").is_err());
    }

    #[test]
    fn formats_sizes() {
        assert_eq!(format_size(64 * MIB), "64 MiB");
        assert_eq!(format_size(GIB), "1 GiB");
        assert_eq!(format_size(1536 * KIB), "1536 KiB");
        assert_eq!(format_size(1000), "1000 bytes");
    }

    #[test]
    fn defaults_fill_missing_fields() {
        let limits: WasmLimits = serde_json::from_str(r#"{"fuel": 5}"#).unwrap();
        assert_eq!(limits.fuel, 5);
        assert_eq!(limits.memory, DEFAULT_MEMORY);
        assert_eq!(WasmLimits::default().fuel, DEFAULT_FUEL);
    }
}
