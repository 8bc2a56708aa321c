//! The runtime wrapper's argv parser never fails and never panics; a create/run always has an
//! absolute bundle.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use hookhost_runtime::argv::RuncCall;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // NUL separates arguments (they cannot contain one).
    let args: Vec<OsString> = data
        .split(|&b| b == 0)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect();
    let call = RuncCall::parse(&args, Path::new("/run/bundle"));
    if matches!(call.command.as_deref(), Some("create" | "run")) {
        let bundle = call.bundle.expect("create/run always resolve a bundle");
        assert!(bundle.is_absolute(), "relative bundle {bundle:?}");
    }
});
