//! `hookhost cdi list`: the CDI devices hookhost resolves for containers.

use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::Cli;
use hookhost_hooks::cdi::{self, Catalog};

#[derive(Debug, Subcommand)]
pub enum CdiCommand {
    List(ListArgs),
}

/// List the CDI devices of the spec directories, the file each comes from, and the problems.
///
/// These are the devices a container may request with a `cdi.k8s.io/…` annotation, or a
/// precreate hook granted --may-adjust cdi[=GLOB] on its behalf; the runtime wrapper, `inject`
/// and `run` resolve them, and so does a hooks.d file `export hooks.d` wrote, for its hook's
/// requests under Podman (in NRI mode containerd resolves them). The directories are the config file's cdiSpecDirs (default
/// /etc/cdi, then /var/run/cdi, which wins for a device both define). A problem in any spec
/// file (invalid, writable by others, a device two files of one directory define) refuses
/// every container that requests a CDI device until it is fixed: the command then exits 1.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  \
    hookhost cdi list\n  \
    DEVICE             SPEC\n  \
    example.com/gpu=0  /etc/cdi/example.json")]
pub struct ListArgs {}

pub fn cdi(cli: &Cli, command: &CdiCommand) -> anyhow::Result<ExitCode> {
    let CdiCommand::List(ListArgs {}) = command;
    let dirs = cdi::spec_dirs(&cli.settings.cdi_spec_dirs);
    let catalog = Catalog::load(&dirs);
    let rows: Vec<(&str, String)> = (catalog.devices.iter())
        .map(|(name, (s, _))| {
            let path = catalog.specs[*s].path.display().to_string();
            (name.as_str(), path)
        })
        .collect();
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0).max(6);
    println!("{:width$}  SPEC", "DEVICE");
    for (name, spec) in &rows {
        println!("{name:width$}  {spec}");
    }
    if rows.is_empty() {
        let dirs: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        eprintln!("no CDI devices in {}", dirs.join(", "));
    }
    for shadowed in &catalog.shadowed {
        eprintln!(
            "note: {} of {} is used, not the one of {} (a later directory wins)",
            shadowed.device,
            shadowed.used.display(),
            shadowed.ignored.display()
        );
    }
    for problem in &catalog.problems {
        eprintln!("problem: {problem}");
    }
    Ok(match catalog.problems.is_empty() {
        true => ExitCode::SUCCESS,
        false => ExitCode::FAILURE,
    })
}
