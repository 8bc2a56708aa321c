//! List-valued flags (`--args`, `--env`) in every spelling: parse or refuse, never panic.
#![no_main]

use hookhost_hooks::listarg::{Split, parse_list, rejoin_split_lists};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &str| {
    let _ = parse_list(data, Split::Always);
    let _ = parse_list(data, Split::KeyValue);
    let argv: Vec<String> = data.split('\n').map(str::to_string).collect();
    let _ = rejoin_split_lists(argv, &["--args", "--env", "--type"]);
});
