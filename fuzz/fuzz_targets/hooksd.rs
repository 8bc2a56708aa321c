//! Podman/CRI-O hooks.d files, 1.0.0 and 0.1.0: parse or refuse, never panic.
#![no_main]

use std::path::Path;

use hookhost_hooks::hooksd;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(hook) = hooksd::parse(Path::new("/etc/containers/oci/hooks.d/fuzz.json"), data) {
        // Stages are kept once each, in file order (an empty list is valid: never injected).
        for (i, stage) in hook.stages.iter().enumerate() {
            assert!(!hook.stages[..i].contains(stage), "duplicate stage kept");
        }
    }
});
