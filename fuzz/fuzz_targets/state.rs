//! The OCI state on a hook's stdin: parse, and what parses re-serialises and parses equal.
#![no_main]

use hookhost_types::State;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = State::parse(data) {
        let again = serde_json::to_vec(&state).expect("a state serialises");
        let back = State::parse(&again).expect("a serialised state parses");
        assert_eq!(state, back);
    }
});
