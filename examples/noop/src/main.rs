//! The trivial hook: drains the state from stdin and exits 0. No SDK, so the module stays tiny;
//! it is the WASM side of the "trivial hook" benchmark.

use std::io::Read;

fn main() {
    let mut state = Vec::new();
    // A hook must consume its stdin; what it contains does not matter here.
    let _ = std::io::stdin().read_to_end(&mut state);
}
