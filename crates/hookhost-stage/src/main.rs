//! `hookhost-stage`: the stage runner as an executable of its own (see the library's docs).
//!
//! Installed beside `hookhost`, whose name it keeps in argv0 (config.json's `args` are the same
//! as for `hookhost stage`). What is not a stage call, and a module that must be compiled
//! first, goes to the `hookhost` beside it.

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use hookhost_types::{HOOKHOST_EXECUTABLE, STAGE_EXECUTABLE};

#[global_allocator]
static ALLOCATOR: hookhost_stage::Allocator = hookhost_stage::allocator();

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let text: Vec<String> = argv
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if let Some(source) = hookhost_stage::parse(&text) {
        hookhost_exec::wasm::compile::use_compiler_beside(HOOKHOST_EXECUTABLE);
        return hookhost_stage::finish(hookhost_stage::run(&source));
    }
    let full = match hookhost() {
        Ok(full) => full,
        Err(err) => return hookhost_stage::finish(Err(err)),
    };
    // Anything else is hookhost's to answer, with its own messages and under its own name
    // (argv0 chooses what hookhost is: `hookhost-runtime`, `docker-hook`).
    let arg0 = match argv.first() {
        Some(arg0) if Path::new(arg0).file_name() != Some(OsStr::new(STAGE_EXECUTABLE)) => {
            arg0.clone()
        }
        _ => HOOKHOST_EXECUTABLE.into(),
    };
    let err = std::process::Command::new(&full)
        .arg0(arg0)
        .args(argv.iter().skip(1))
        .exec();
    hookhost_stage::finish(Err(
        anyhow::Error::new(err).context(format!("cannot execute {}", full.display()))
    ))
}

/// The `hookhost` installed beside this executable.
fn hookhost() -> anyhow::Result<PathBuf> {
    use anyhow::Context;
    let me = std::env::current_exe().context("cannot find hookhost-stage's own executable")?;
    Ok(me.with_file_name(HOOKHOST_EXECUTABLE))
}
