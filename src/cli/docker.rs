//! `run`, `install docker`, `install docker-cli-plugin`: hookhost with Docker.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use super::Cli;
use hookhost_engines::docker::RUNTIME_NAME;
use hookhost_engines::docker::daemon_json;
use hookhost_engines::docker::run::RunRequest;
use hookhost_hooks::registry::RegistryError;
use hookhost_types::RUNTIME_EXECUTABLE;

/// Run a container with hooks: `docker run --runtime hookhost` plus the hook selection.
///
/// The selection reaches the runtime wrapper as the annotation io.hookhost.hooks when the
/// daemon's API is 1.43 or later (Docker 24+), else as the variable HOOKHOST_HOOKS, which the
/// wrapper removes from the container's environment. Every other option is docker run's;
/// Docker's global flags (-H/--host, --context, --config, --tls…) may be given too.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    hookhost run --add-hook 'myFirstHook:[\"/tmp/b\",\"/tmp/c\"]' busybox top\n  \
    hookhost run -H unix:///run/docker.sock --rm --add-hook audit --add-hook netsetup alpine sh\n  \
    docker hook run --add-hook myFirstHook busybox top      (the same, as a Docker CLI plugin)\n\n\
    The daemon must know the runtime: hookhost install docker --reload.\n\
    --hook-spec brings hook paths of its own: the runtime wrapper refuses them unless\n\
    \"allowInlineSpecs\" is true in its config file.")]
pub struct RunArgs {
    /// A registered hook, with extra arguments appended to its registered ones (repeatable)
    #[arg(long = "add-hook", value_name = "NAME[:JSON-ARGS]")]
    add_hooks: Vec<String>,
    /// Inline OCI hooks: a JSON object of stage name to a list of {path, args, env, timeout}
    #[arg(long, value_name = "FILE")]
    hook_spec: Option<PathBuf>,
    /// docker run options, IMAGE and COMMAND
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "DOCKER-RUN-ARGS"
    )]
    docker_args: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum InstallCommand {
    Docker(InstallDockerArgs),
    #[command(name = "docker-cli-plugin")]
    DockerCliPlugin(InstallPluginArgs),
}

/// Register hookhost-runtime with dockerd (daemon.json `runtimes`), keeping every other key.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    hookhost install docker --reload\n  \
    hookhost install docker --daemon-json /etc/docker/daemon.json --runtime-path /usr/local/bin/hookhost-runtime\n\n\
    A copy of the previous file is kept as daemon.json.hookhost-backup. Running it again\n\
    changes nothing.")]
pub struct InstallDockerArgs {
    /// dockerd's configuration file
    #[arg(long, default_value = "/etc/docker/daemon.json", value_name = "FILE")]
    daemon_json: PathBuf,
    /// The runtime wrapper [default: hookhost-runtime next to this executable: the small one
    /// installed there, else a link to hookhost, made if missing]
    #[arg(long, value_name = "PATH")]
    runtime_path: Option<PathBuf>,
    /// The runtime's name for `docker run --runtime`
    #[arg(long, default_value = RUNTIME_NAME, value_name = "NAME")]
    name: String,
    /// Send dockerd SIGHUP so that it re-reads its runtimes
    #[arg(long)]
    reload: bool,
    /// dockerd's pid file, for --reload
    #[arg(long, default_value = "/var/run/docker.pid", value_name = "FILE")]
    pidfile: PathBuf,
}

/// Install `docker hook` (a Docker CLI plugin: a link named docker-hook to this executable).
#[derive(Debug, Args)]
#[command(
    after_help = "Then:\n  docker hook ls\n  docker hook run --add-hook myFirstHook busybox top"
)]
pub struct InstallPluginArgs {
    /// Docker's CLI plugin directory [default: ~/.docker/cli-plugins]
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run(cli: &Cli, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let mut request = RunRequest::parse(&args.docker_args)?;
    request
        .add_hooks
        .splice(0..0, args.add_hooks.iter().cloned());
    if let Some(spec) = &args.hook_spec {
        if request.hook_spec.is_some() {
            bail!("--hook-spec may be given once");
        }
        request.hook_spec = Some(spec.clone());
    }
    check_registered(cli, &request)?;
    let api = daemon_api(&request.globals)?;
    let argv = request.docker_argv(&api)?;
    tracing::debug!(?argv, "docker");
    let err = Command::new("docker").args(&argv).exec();
    Err(err).context("cannot run docker")
}

/// Refuses names the registry does not know before Docker creates anything. A registry this
/// user cannot read is left to the runtime wrapper, which checks again.
fn check_registered(cli: &Cli, request: &RunRequest) -> anyhow::Result<()> {
    let selections = request.selections()?;
    let Ok(registry) = hookhost_hooks::registry::Registry::open(cli.root()) else {
        return Ok(());
    };
    for selection in selections {
        match registry.get(&selection.name) {
            Ok(_) | Err(RegistryError::Io { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// `docker version --format {{.Server.APIVersion}}`.
fn daemon_api(globals: &[String]) -> anyhow::Result<String> {
    let out = Command::new("docker")
        .args(globals)
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .output()
        .context("cannot run docker")?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || version.is_empty() {
        bail!(
            "cannot reach the Docker daemon: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(version)
}

pub fn install(_cli: &Cli, command: &InstallCommand) -> anyhow::Result<ExitCode> {
    match command {
        InstallCommand::Docker(args) => install_docker(args),
        InstallCommand::DockerCliPlugin(args) => install_plugin(args),
    }
}

fn install_docker(args: &InstallDockerArgs) -> anyhow::Result<ExitCode> {
    let runtime = match &args.runtime_path {
        Some(path) => std::path::absolute(path)?,
        None => runtime_beside()?,
    };
    let done = daemon_json::install_runtime(&args.daemon_json, &args.name, &runtime)?;
    if !done.changed {
        println!(
            "runtime {:?} is already registered in {} ({})",
            args.name,
            args.daemon_json.display(),
            runtime.display()
        );
    } else {
        println!(
            "registered runtime {:?} ({}) in {}",
            args.name,
            runtime.display(),
            args.daemon_json.display()
        );
        if let Some(backup) = &done.backup {
            println!("previous file kept as {}", backup.display());
        }
    }
    if args.reload {
        let pid = daemon_json::reload(&args.pidfile)?;
        println!("sent SIGHUP to dockerd (pid {pid}): it re-reads its runtimes now");
    } else if done.changed {
        println!(
            "reload dockerd to use it: `systemctl reload docker` or `kill -HUP $(cat {})`",
            args.pidfile.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn install_plugin(args: &InstallPluginArgs) -> anyhow::Result<ExitCode> {
    let dir = match &args.dir {
        Some(dir) => dir.clone(),
        None => {
            let home = std::env::var_os("HOME").context("HOME is not set; give --dir")?;
            Path::new(&home).join(".docker/cli-plugins")
        }
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let link = link_to_self(&dir.join("docker-hook"))?;
    println!("installed {}: try `docker hook ls`", link.display());
    Ok(ExitCode::SUCCESS)
}

/// The runtime wrapper beside this executable: the small `hookhost-runtime` installed there
/// (scripts/build-stage.sh), else a `hookhost-runtime` link to hookhost, made when missing.
fn runtime_beside() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find hookhost's own executable")?;
    let small = hookhost_core::bundle::small_executable(&exe, RUNTIME_EXECUTABLE);
    match small == exe {
        true => link_to_self(&exe.with_file_name(RUNTIME_EXECUTABLE)),
        false => Ok(small),
    }
}

/// Makes `link` a symlink to this executable unless it already is one (or is this executable).
fn link_to_self(link: &Path) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find hookhost's own executable")?;
    match std::fs::canonicalize(link) {
        Ok(target) if target == std::fs::canonicalize(&exe)? => return Ok(link.to_path_buf()),
        Ok(_) => bail!(
            "{} exists and is not hookhost; remove it or choose another path",
            link.display()
        ),
        Err(_) => {}
    }
    let _ = std::fs::remove_file(link); // a dangling link
    std::os::unix::fs::symlink(&exe, link)
        .with_context(|| format!("cannot link {} to {}", link.display(), exe.display()))?;
    Ok(link.to_path_buf())
}
