//! `hookhost stage STAGE --plan FILE --sha256 HEX`: what the runtime executes at each stage of
//! a container hookhost injected, here once for both of its front ends.
//!
//! - `hookhost stage …` (the full CLI) calls [`main`] before it builds its parser;
//! - the `hookhost-stage` executable (`src/main.rs`) is [`main`] alone: a small static program
//!   without the CLI, the OCI registry client or Cranelift, which `inject`, the runtime wrapper,
//!   the NRI plugin and hooks.d exports name in config.json when it is installed beside
//!   `hookhost` ([`hookhost_types::STAGE_EXECUTABLE`]). A stage is a fresh process on every
//!   container start, and most of its time was the start of a 30 MB program.
//!
//! The crate builds a second small executable on the same terms, `hookhost-runtime`
//! (`src/bin/runtime.rs`): the runtime wrapper (`hookhost_runtime::main`), a fresh process at
//! every call an engine makes to its runtime.
//!
//! Errors and warnings are printed here, as the CLI prints them: `Error: …` with its causes on
//! one line, on stderr, which the runtime shows when a stage fails.

use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::Context;
use hookhost_core::plan::LegacyStagePlan;
use hookhost_core::stage::PlanSource;
use hookhost_types::{Stage, StageCall};
use talc::source::GlobalAllocSource;
use talc::sync::TalcLock;

/// The allocator of the small executables (`#[global_allocator]` in each): talc over 8 MiB
/// blocks from the system allocator. musl's own maps and unmaps memory for every few
/// allocations of a stage (66 `mmap` and 29 `munmap` calls in one WASM stage, against 12 and 2
/// with talc), which cost more than musl's start-up saves over glibc's. A spin lock, correct
/// under contention and cheapest without it: a stage allocates on its main thread, and a WASM
/// hook's blocking file calls on a helper thread only while the main one waits.
pub type Allocator = TalcLock<
    spinning_top::RawSpinlock,
    GlobalAllocSource<std::alloc::System>,
    talc::DefaultBinning,
>;

/// A new [`Allocator`], for a `static`.
pub const fn allocator() -> Allocator {
    TalcLock::new(GlobalAllocSource::with_block_size(
        std::alloc::System,
        8 << 20,
    ))
}

/// Runs the stage call `argv` is (`[argv0, "stage", STAGE, "--plan", …]`, exactly as hookhost
/// writes it, or an older hookhost's `--plan JSON`) and returns how the process ends; `None`
/// for anything else.
pub fn main(argv: &[String]) -> Option<ExitCode> {
    let source = parse(argv)?;
    Some(finish(run(&source)))
}

/// The stage call `argv` is, if it is one.
pub fn parse(argv: &[String]) -> Option<PlanSource> {
    match StageCall::from_argv(argv) {
        Some(call) => Some(PlanSource::File(call)),
        None => {
            let legacy = LegacyStagePlan::from_argv(argv)?;
            Some(PlanSource::Legacy(argv[2].parse().ok()?, legacy))
        }
    }
}

/// The exit of a command that ended with `result`, its error reported.
pub fn finish(result: anyhow::Result<ExitCode>) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(err) => {
            report(&err);
            ExitCode::FAILURE
        }
    }
}

/// Prints `err` and its causes as hookhost prints every error.
pub fn report(err: &anyhow::Error) {
    eprintln!("Error: {}", hookhost_core::error_chain(err.as_ref()));
}

/// Runs one stage: the container's state (or, at precreate, its proposed config.json) on stdin.
pub fn run(source: &PlanSource) -> anyhow::Result<ExitCode> {
    // A stage is one short process: its WASM runs are left to its exit to tear down, the
    // directories its hooks' files are checked in are walked up once, not once a file, and
    // the audit trail and replay records stay open from one hook's lines to the next's.
    hookhost_exec::wasm::defer_teardown();
    hookhost_exec::fs::remember_trusted_dirs();
    hookhost_core::events::keep_files_open();
    if source.stage() == Stage::Precreate {
        return run_precreate(source);
    }
    let mut state = Vec::new();
    std::io::stdin()
        .read_to_end(&mut state)
        .context("cannot read the container state from stdin")?;
    let report = hookhost_core::stage::run_call(source, &state)?;
    for warning in &report.warnings {
        eprintln!("Warning: {warning}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Podman's precreate protocol: config.json on stdin, the edited document on stdout.
fn run_precreate(source: &PlanSource) -> anyhow::Result<ExitCode> {
    let PlanSource::File(call) = source else {
        anyhow::bail!("a precreate stage call needs --plan FILE --sha256 HEX");
    };
    let mut config = Vec::new();
    std::io::stdin()
        .read_to_end(&mut config)
        .context("cannot read the proposed config.json from stdin")?;
    let (edited, report) = hookhost_core::precreate::run_call(call, &config)?;
    for warning in &report.warnings {
        eprintln!("Warning: {warning}");
    }
    std::io::stdout()
        .write_all(&edited)
        .context("cannot write the edited config.json to stdout")?;
    Ok(ExitCode::SUCCESS)
}
