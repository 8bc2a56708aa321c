//! `export hooks.d`, `import hooks.d`: Podman and CRI-O hooks directories.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::Cli;
use hookhost_hooks::registry::Registry;

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    #[command(name = "hooks.d")]
    Hooksd(ExportArgs),
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    #[command(name = "hooks.d")]
    Hooksd(ImportArgs),
}

/// Write a hooks.d (oci-hooks 1.0.0) file per global hook, so that Podman and CRI-O run them.
///
/// Global hooks are those registered with --when-* conditions. Each file makes Podman call
/// hookhost, which runs the hook (native or WASM) with its limits and records it in the audit
/// trail. A hook with several stages gets one file per stage (NAME@STAGE.json). Files of
/// earlier exports whose hook is gone are removed. Export again after changing a hook.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    hookhost create --when-always --type prestart audit /usr/local/lib/hooks/audit.wasm\n  \
    hookhost export hooks.d /etc/containers/oci/hooks.d\n  \
    podman --hooks-dir /etc/containers/oci/hooks.d run --rm alpine true\n\n\
    CRI-O: list the directory in hooks_dir of crio.conf ([crio.runtime] section).")]
pub struct ExportArgs {
    /// The hooks.d directory to write into (created if missing)
    dir: PathBuf,
}

/// Register the hooks of a hooks.d directory, each under its file name without .json.
///
/// Stages and conditions are kept (1.0.0 `when`; 0.1.0 conditions only when there is a single
/// kind, since 0.1.0 OR-s them); a prestart file is registered at createRuntime, where Podman
/// runs it. A file name that is not a valid hook name is registered under a mapped name
/// (reported). Files that cannot be read or registered are reported and skipped without
/// stopping the others.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  hookhost import hooks.d /usr/share/containers/oci/hooks.d\n  hookhost ls"
)]
pub struct ImportArgs {
    /// The hooks.d directory to read
    dir: PathBuf,
}

pub fn export(cli: &Cli, command: &ExportCommand) -> anyhow::Result<ExitCode> {
    let ExportCommand::Hooksd(args) = command;
    let registry = cli.registry()?;
    let exe = std::env::current_exe().context("cannot find hookhost's own executable")?;
    let root = std::path::absolute(cli.root()).context("cannot resolve the registry root")?;
    let to = hookhost_engines::hooksd::ExportTo {
        exe: &exe,
        root: &root,
        cdi_spec_dirs: &cli.settings.cdi_spec_dirs,
    };
    let report = hookhost_engines::hooksd::export(&registry, &args.dir, to)?;
    for file in &report.written {
        println!("{}", file.display());
    }
    for file in &report.removed {
        println!("removed {}", file.display());
    }
    for skipped in &report.skipped {
        eprintln!("Warning: skipped {}", hookhost_core::error_chain(skipped));
    }
    for err in &report.errors {
        eprintln!("Warning: {}", hookhost_core::error_chain(err));
    }
    if report.written.is_empty() {
        eprintln!(
            "no global hooks to export (register one with --when-always, --when-annotation, …)"
        );
    }
    Ok(exit(report.skipped.is_empty() && report.errors.is_empty()))
}

pub fn import(cli: &Cli, command: &ImportCommand) -> anyhow::Result<ExitCode> {
    let ImportCommand::Hooksd(args) = command;
    let registry: Registry = cli.registry()?;
    let report = hookhost_engines::hooksd::import(&registry, &args.dir)?;
    for name in &report.imported {
        println!("{name}");
    }
    for (file, name) in &report.renamed {
        eprintln!(
            "Note: {} registered as {name} (hook names are ASCII letters, digits, '_', '.' and '-')",
            file.display()
        );
    }
    for skipped in &report.skipped {
        eprintln!("Warning: skipped {}", hookhost_core::error_chain(skipped));
    }
    Ok(exit(report.skipped.is_empty()))
}

fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
