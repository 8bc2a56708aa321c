//! `hookhost-nri-codegen API_PROTO OUT_FILE`: writes the Rust messages of NRI's api.proto (what
//! scripts/nri-codegen.sh runs; crates/hookhost-nri/tests/codegen.rs checks the committed file
//! with the same function).

mod generate;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [proto, out] = args.as_slice() else {
        eprintln!("usage: hookhost-nri-codegen API_PROTO OUT_FILE");
        return ExitCode::from(2);
    };
    match generate::generate(proto).and_then(|code| std::fs::write(out, code)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hookhost-nri-codegen: {}: {err}", proto.display());
            ExitCode::FAILURE
        }
    }
}
