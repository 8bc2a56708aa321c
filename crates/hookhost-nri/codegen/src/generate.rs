//! The NRI API's messages as Rust: rust-protobuf's pure (protoc-free) code generator on
//! `api.proto`, under a header naming the source and its license. Shared by the generator
//! binary and the check in crates/hookhost-nri/tests/codegen.rs.

use std::io;
use std::path::Path;

/// The header of the generated file: where it comes from, its license, how to regenerate it.
const HEADER: &str = "\
// Generated from containerd/nri's pkg/api/api.proto (NRI 0.8, the API containerd 2.1 speaks),
// as shipped in Debian's golang-github-containerd-nri-dev package.
// Copyright The containerd Authors; licensed under the Apache License, Version 2.0
// (http://www.apache.org/licenses/LICENSE-2.0).
// Do not edit: regenerate with scripts/nri-codegen.sh (crates/hookhost-nri/tests/codegen.rs
// checks that this file is what the generator makes of that definition).

";

/// The generated Rust source for `proto` (its messages and enums; no services).
pub fn generate(proto: &Path) -> io::Result<String> {
    let dir = proto
        .parent()
        .ok_or_else(|| io::Error::other("the API definition has no directory"))?;
    let out = tempdir()?;
    let result = protobuf_codegen::Codegen::new()
        .pure()
        .include(dir)
        .input(proto)
        .out_dir(&out)
        .customize(protobuf_codegen::Customize::default().gen_mod_rs(false))
        .run()
        .map_err(|e| io::Error::other(format!("{e:#}")));
    let code = result.and_then(|()| std::fs::read_to_string(out.join("api.rs")));
    let _ = std::fs::remove_dir_all(&out);
    Ok(format!("{HEADER}{}", code?))
}

/// A fresh directory for the generator's output.
fn tempdir() -> io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("hookhost-nri-codegen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
