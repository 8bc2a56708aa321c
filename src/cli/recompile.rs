//! `recompile`, and the compiler child hookhost starts to compile a module under bounds.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;

use super::Cli;
use hookhost_exec::wasm::{WasmError, compile};
use hookhost_hooks::recompile;

/// Compile every registered WebAssembly module for this hookhost build (after an upgrade)
///
/// Compiled modules are cached per hookhost build: after an upgrade each WASM hook would be
/// compiled at its first container start instead, within the hook's own timeout, which a
/// large module may not fit. Run this in a package's upgrade step: it compiles
/// what is missing under the config file's compileCpuTime and compileMemory (default 10 s of CPU
/// time, 512 MiB) and removes the artifacts of other builds. Exits 1 if any module failed.
#[derive(Debug, Args)]
#[command(after_help = "Example (a package's postinst):\n  hookhost recompile")]
pub struct RecompileArgs {}

pub fn recompile(cli: &Cli, _args: &RecompileArgs) -> anyhow::Result<ExitCode> {
    let report = recompile::recompile(&cli.registry()?)?;
    for error in &report.unreadable {
        eprintln!("Warning: {}", hookhost_core::error_chain(error));
    }
    for module in &report.modules {
        let hooks = module.hooks.join(", ");
        let short = &module.digest[..12];
        match &module.result {
            Ok(true) => println!("compiled {hooks} (sha256:{short})"),
            Ok(false) => println!("up to date {hooks} (sha256:{short})"),
            Err(error) => eprintln!(
                "Error: cannot compile {hooks} (sha256:{short}): {}",
                hookhost_core::error_chain(error)
            ),
        }
    }
    if report.removed > 0 {
        println!(
            "removed {} artifact files of other hookhost builds",
            report.removed
        );
    }
    Ok(match report.success() {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    })
}

/// `hookhost __compile-wasm MEMORY`: the module on stdin, the artifact on stdout.
pub fn compile_child(args: &[String]) -> ExitCode {
    let result = compile::serve_child(args, std::io::stdin().lock()).and_then(|artifact| {
        std::io::stdout()
            .lock()
            .write_all(&artifact)
            .map_err(|e| WasmError::CompilerFailed(format!("cannot write the artifact: {e}")))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let (code, text) = compile::child_failure(&error);
            eprintln!("{text}");
            ExitCode::from(code)
        }
    }
}
