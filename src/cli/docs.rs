//! `completions` and `man`: generated from the clap definition, so they never drift.

use std::process::ExitCode;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;

/// Print a shell completion script (e.g. `hookhost completions bash > /etc/bash_completion.d/hookhost`).
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    shell: Shell,
}

/// Print the man page (roff), e.g. `hookhost man | man -l -`.
#[derive(Debug, Args)]
pub struct ManArgs {}

pub fn completions(args: &CompletionsArgs) -> anyhow::Result<ExitCode> {
    clap_complete::generate(
        args.shell,
        &mut Cli::command(),
        "hookhost",
        &mut std::io::stdout(),
    );
    Ok(ExitCode::SUCCESS)
}

pub fn man(_args: &ManArgs) -> anyhow::Result<ExitCode> {
    clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
    Ok(ExitCode::SUCCESS)
}
