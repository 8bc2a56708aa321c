//! `hookhost nri`: hookhost as a long-lived NRI plugin of containerd or CRI-O. The NRI protocol
//! is hookhost-nri's; what the plugin decides is `hookhost_engines::nri` (the container
//! pipeline as an NRI handler, and the guard).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use hookhost_engines::nri::{NriHooks, guard};
use hookhost_nri::plugin::{DEFAULT_SOCKET, SOCKET_ENV};
use hookhost_nri::{Config, Handler, Plugin};

use super::Cli;

/// Run as an NRI plugin (containerd >= 1.7, CRI-O >= 1.26): see every pod and container of the
/// node. External by default (connects to --socket, reconnects when the runtime restarts);
/// when the runtime starts it (from /opt/nri/plugins), on the connection the runtime passes it.
/// Every container the runtime creates goes through hookhost's registry as through the runtime
/// wrapper (global hooks, io.hookhost.hooks annotations of the pod or container, hooks.d); see
/// `hookhost nri guard-spec` to refuse containers while the plugin is down.
#[derive(Debug, clap::Args)]
pub struct NriArgs {
    /// The runtime's NRI socket
    #[arg(long, default_value = DEFAULT_SOCKET, value_name = "PATH")]
    socket: PathBuf,

    /// The plugin's name (the runtime calls it INDEX-NAME)
    #[arg(long, default_value = "hookhost")]
    name: String,

    /// Two digits: the runtime calls plugins in ascending index order
    #[arg(long, default_value = "50", value_name = "NN")]
    index: String,

    /// A file present while the plugin is registered with the runtime (for a probe)
    #[arg(long, value_name = "PATH")]
    health_file: Option<PathBuf>,

    #[command(subcommand)]
    action: Option<NriAction>,
}

/// `argv` as `hookhost nri` when a runtime started hookhost as a pre-installed plugin
/// (`/opt/nri/plugins/NN-hookhost`): it passes no arguments and sets `NRI_PLUGIN_SOCKET`.
pub fn pre_registered(mut argv: Vec<String>) -> Vec<String> {
    if argv.len() == 1 && std::env::var_os(SOCKET_ENV).is_some() {
        argv.push("nri".to_string());
    }
    argv
}

/// Runs the plugin until SIGTERM/SIGINT (or until the runtime that started it goes away).
pub fn nri(cli: &Cli, args: &NriArgs) -> anyhow::Result<ExitCode> {
    match &args.action {
        Some(NriAction::GuardSpec(guard_args)) => return guard_spec(cli, guard_args),
        Some(NriAction::Guard(guard_args)) => return run_guard(cli, guard_args),
        None => {}
    }
    let exe = std::env::current_exe().context("cannot find hookhost's own executable")?;
    let root = std::path::absolute(cli.root()).context("cannot resolve the registry root")?;
    let handler: Arc<dyn Handler> = Arc::new(NriHooks::new(
        cli.settings.clone(),
        root,
        exe,
        args.name.clone(),
    ));
    let mut config = Config::new(&args.name, &args.index);
    config.socket = args.socket.clone();
    config.health_file = args.health_file.clone();
    Plugin::new(config)?.run(handler)?;
    Ok(ExitCode::SUCCESS)
}

/// `hookhost nri guard-spec` and `hookhost nri guard`.
#[derive(Debug, clap::Subcommand)]
pub enum NriAction {
    GuardSpec(GuardSpecArgs),
    Guard(GuardArgs),
}

/// Print the OCI spec on stdin (e.g. `ctr oci spec`) with hookhost's guard added, for
/// containerd's `base_runtime_spec`: a createRuntime hook that refuses every container the NRI
/// plugin did not prepare (when the plugin is down, crashed or too slow, NRI would start the
/// container without its hooks). It carries the config file and registry root in force now.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  ctr oci spec | hookhost nri guard-spec > /etc/containerd/hookhost-spec.json\n  \
    # containerd config.toml, for the runtime handler (e.g. runc):\n  \
    # base_runtime_spec = \"/etc/containerd/hookhost-spec.json\""
)]
pub struct GuardSpecArgs {
    /// The NRI plugin's name whose mark the guard looks for (as `hookhost nri --name`)
    #[arg(long, default_value = "hookhost")]
    name: String,
}

/// The guard itself (run by the runtime as a createRuntime hook, the state on stdin).
#[derive(Debug, clap::Args)]
#[command(hide = true)]
pub struct GuardArgs {
    /// The NRI plugin's name whose mark the guard looks for
    #[arg(long, default_value = "hookhost")]
    name: String,
}

fn guard_spec(cli: &Cli, args: &GuardSpecArgs) -> anyhow::Result<ExitCode> {
    let mut text = Vec::new();
    std::io::stdin()
        .read_to_end(&mut text)
        .context("cannot read the OCI spec from stdin")?;
    let spec: serde_json::Value =
        serde_json::from_slice(&text).context("the OCI spec on stdin is not JSON")?;
    let exe = std::env::current_exe().context("cannot find hookhost's own executable")?;
    let root = std::path::absolute(cli.root()).context("cannot resolve the registry root")?;
    let entry = guard::GuardEntry {
        exe: exe.to_string_lossy().into_owned(),
        name: args.name.clone(),
        config: cli
            .settings_file
            .as_ref()
            .map(|f| f.to_string_lossy().into_owned()),
        root: Some(root.to_string_lossy().into_owned()),
    };
    let guarded = guard::guard_spec(spec, &entry)?;
    println!("{}", serde_json::to_string_pretty(&guarded)?);
    Ok(ExitCode::SUCCESS)
}

fn run_guard(cli: &Cli, args: &GuardArgs) -> anyhow::Result<ExitCode> {
    let mut text = Vec::new();
    std::io::stdin()
        .read_to_end(&mut text)
        .context("cannot read the container state from stdin")?;
    let state = hookhost_types::State::parse(&text)?;
    guard::check(&state, &args.name, &cli.settings.nri.exempt_namespaces)?;
    Ok(ExitCode::SUCCESS)
}
