//! Podman/CRI-O hooks.d files, 1.0.0 and 0.1.0: parse or refuse, never panic.
#![no_main]

use std::path::Path;

use hookhost_hooks::hooksd;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(hook) = hooksd::parse(Path::new("/etc/containers/oci/hooks.d/fuzz.json"), data) {
        assert!(!hook.stages.is_empty(), "a hook without stages was accepted");
    }
});
