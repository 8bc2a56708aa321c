//! The committed NRI API (src/api/generated.rs) is exactly what scripts/nri-codegen.sh makes of
//! the api.proto in Debian forky's golang-github-containerd-nri-dev (fetched and cached by
//! scripts/nri-api.sh, which scripts/setup.sh runs): the same generator function, in-process.

#[path = "../codegen/src/generate.rs"]
mod generate;

use std::path::Path;
use std::process::Command;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

#[test]
fn the_committed_api_is_what_the_generator_makes_of_nris_definition() {
    let fetch = Command::new(format!("{ROOT}/scripts/nri-api.sh"))
        .output()
        .expect("scripts/nri-api.sh runs");
    assert!(
        fetch.status.success(),
        "scripts/nri-api.sh could not provide NRI's api.proto (it needs Debian's package \
         archive once; scripts/setup.sh runs it): {}",
        String::from_utf8_lossy(&fetch.stderr)
    );
    let proto = String::from_utf8(fetch.stdout).unwrap();
    let fresh = generate::generate(Path::new(proto.trim())).expect("the generator runs");
    let committed =
        std::fs::read_to_string(format!("{ROOT}/crates/hookhost-nri/src/api/generated.rs"))
            .unwrap();
    assert!(
        fresh == committed,
        "crates/hookhost-nri/src/api/generated.rs is not what the generator makes of {}: run \
         scripts/nri-codegen.sh and commit the result",
        proto.trim()
    );
}
