//! `hookhost nri`: hookhost as a long-lived NRI plugin of containerd or CRI-O. The NRI protocol
//! is hookhost-nri's; what the plugin decides is the [`Handler`] built here.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use hookhost_nri::api::{Container, CreateContainerResponse, PodSandbox};
use hookhost_nri::plugin::{DEFAULT_SOCKET, SOCKET_ENV};
use hookhost_nri::{Config, Handler, Plugin, Refusal};

use super::Cli;

/// Run as an NRI plugin (containerd >= 1.7, CRI-O >= 1.26): see every pod and container of the
/// node. External by default (connects to --socket, reconnects when the runtime restarts);
/// when the runtime starts it (from /opt/nri/plugins), on the connection the runtime passes
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
pub fn nri(_cli: &Cli, args: &NriArgs) -> anyhow::Result<ExitCode> {
    let handler: Arc<dyn Handler> = Arc::new(Placeholder);
    let mut config = Config::new(&args.name, &args.index);
    config.socket = args.socket.clone();
    config.health_file = args.health_file.clone();
    Plugin::new(config)?.run(handler)?;
    Ok(ExitCode::SUCCESS)
}

/// Until the container pipeline answers: every container is created unchanged.
struct Placeholder;

impl Handler for Placeholder {
    fn create_container(
        &self,
        pod: &PodSandbox,
        container: &Container,
    ) -> Result<CreateContainerResponse, Refusal> {
        tracing::info!(
            "CreateContainer {}/{} {} (no hooks selected yet)",
            pod.namespace,
            pod.name,
            container.name
        );
        Ok(CreateContainerResponse::new())
    }
}
