//! `--memory`, `--fuel` and `--allow-dir` values.
#![no_main]

use hookhost_hooks::grants::DirGrant;
use hookhost_exec::limits::{parse_fuel, parse_size};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    if let Ok(n) = parse_size(data) {
        assert!(n > 0);
    }
    if let Ok(n) = parse_fuel(data) {
        assert!(n > 0);
    }
    if let Ok(grant) = data.parse::<DirGrant>() {
        // What Display prints parses back to the same grant.
        let again: DirGrant = grant.to_string().parse().expect("a displayed grant parses");
        assert_eq!(grant, again);
    }
});
