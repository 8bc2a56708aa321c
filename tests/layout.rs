//! The static x86-64 build places the functions a container start runs together at the start
//! of its text (build.rs hands `build/symbol-order.txt` to the linker), so that a fresh
//! `hookhost stage` or `hookhost-runtime` faults in few 64 KiB windows of the executable.
//! Checked on the executable the tests run (`scripts/cargo-static.sh`, the shipped flags).
#![cfg(all(
    target_os = "linux",
    target_arch = "x86_64",
    target_env = "gnu",
    target_feature = "crt-static"
))]

mod common;

use std::collections::HashSet;
use std::process::Command;

/// The executable's function symbols, in address order: (address, size, name).
fn functions(exe: &str) -> Vec<(u64, u64, String)> {
    let out = Command::new("nm")
        .args(["-n", "-S", "--defined-only", "--no-demangle", exe])
        .output()
        .expect("nm (binutils) runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            match fields[..] {
                [address, size, "t" | "T", name] => Some((
                    u64::from_str_radix(address, 16).unwrap(),
                    u64::from_str_radix(size, 16).unwrap(),
                    name.to_string(),
                )),
                _ => None,
            }
        })
        .collect()
}

#[test]
fn the_functions_of_a_container_start_lie_together_at_the_start_of_the_text() {
    let listed: HashSet<String> = include_str!("../build/symbol-order.txt")
        .lines()
        .map(str::to_string)
        .collect();
    let functions = functions(common::HOOKHOST);
    let text_start = functions.first().expect("function symbols").0;
    let present: Vec<&(u64, u64, String)> =
        functions.iter().filter(|f| listed.contains(&f.2)).collect();
    // A debug build has fewer of them (other inlining), never few: without the ordering they
    // would still be there, spread over the whole text.
    assert!(
        present.len() >= 100,
        "only {} of the {} listed functions are in {}: regenerate build/symbol-order.txt \
         (scripts/symbol-order.sh)",
        present.len(),
        listed.len(),
        common::HOOKHOST
    );
    let size: u64 = present.iter().map(|f| f.1).sum();
    let end = present.iter().map(|f| f.0 + f.1).max().unwrap();
    // Together: the span they take from the start of the text is their own size, give or take
    // alignment padding and the few start-up functions the linker puts first.
    assert!(
        end - text_start <= size + size / 4 + (64 << 10),
        "the {} listed functions ({size} bytes) spread over {} bytes of text",
        present.len(),
        end - text_start
    );
}
