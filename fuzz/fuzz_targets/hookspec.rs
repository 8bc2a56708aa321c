//! `--hook-spec FILE`: any text either parses or is refused with a message; never a panic.
#![no_main]

use hookhost_core::spec_file::SpecFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    if let Ok(file) = SpecFile::parse(data) {
        for hooks in file.stages.values() {
            for hook in hooks {
                assert!(hook.spec.path.is_absolute(), "accepted a relative path");
                assert!(hook.spec.timeout > 0, "accepted a zero timeout");
            }
        }
    }
});
