//! `--add-hook`, `HOOKHOST_HOOKS` and the `io.hookhost.hooks` annotation: only valid hook
//! names may come out, whatever the text.
#![no_main]

use hookhost_hooks::hook::validate_name;
use hookhost_core::plan::Selection;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    if let Ok(selections) = Selection::parse_many(data) {
        for sel in selections {
            assert!(validate_name(&sel.name).is_ok(), "invalid name {:?}", sel.name);
        }
    }
    if let Ok(sel) = Selection::parse(data) {
        assert!(validate_name(&sel.name).is_ok(), "invalid name {:?}", sel.name);
    }
});
