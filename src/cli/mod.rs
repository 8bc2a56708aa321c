//! The command line: parsing, and the only place that prints.

mod apply;
mod cdi;
mod container;
mod docker;
mod docs;
mod hooks;
mod hooksd;
mod metrics;
mod new;
mod nri;
mod oci;
mod parse;
pub mod plugin;
mod progress;
pub mod recompile;
mod replay;
pub mod runtime;
mod shadow;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use hookhost_hooks::config::{CONFIG_ENV, Config};
use hookhost_hooks::paths::{Paths, ROOT_ENV};
use hookhost_hooks::registry::Registry;

/// Container lifecycle hooks for Docker, Podman, containerd and runc.
///
/// Register hooks once (native executables or sandboxed WebAssembly modules), then attach them
/// to containers by name: hookhost injects itself into the container's OCI config.json and runs
/// the container's hooks at each lifecycle stage.
#[derive(Debug, Parser)]
#[command(
    name = "hookhost",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(after_help = "Example (the seed workflow):\n  \
    hookhost create --type prestart --env platform=linux --timeout 5 --args ls,/tmp/a myFirstHook /bin/ls\n  \
    hookhost inject --bundle ./mycontainer --add-hook 'myFirstHook:[\"/tmp/b\",\"/tmp/c\"]'\n  \
    runc run --bundle ./mycontainer demo")]
pub struct Cli {
    /// Registry and state directory [default: /var/lib/hookhost for root, else $XDG_DATA_HOME/hookhost]
    #[arg(long, global = true, env = ROOT_ENV, value_name = "DIR")]
    root: Option<PathBuf>,

    /// Log level for hookhost's own diagnostics on stderr (error, warn, info, debug, trace)
    #[arg(long, global = true, default_value = "warn", value_name = "LEVEL")]
    log_level: String,

    /// hookhost's config file (runtime wrapper settings, registry root)
    /// [default: /etc/hookhost/config.json]
    #[arg(long, global = true, env = CONFIG_ENV, value_name = "FILE")]
    config: Option<PathBuf>,

    /// The loaded config file (defaults when there is none).
    #[arg(skip)]
    settings: Config,

    /// The file `settings` came from, if any.
    #[arg(skip)]
    settings_file: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Create(Box<hooks::CreateArgs>),
    Update(Box<hooks::UpdateArgs>),
    Inspect(hooks::InspectArgs),
    #[command(alias = "list")]
    Ls(hooks::LsArgs),
    #[command(alias = "remove")]
    Rm(hooks::RmArgs),
    Promote(shadow::PromoteArgs),
    Apply(apply::ApplyArgs),
    Push(oci::PushArgs),
    Pull(oci::PullArgs),
    Recompile(recompile::RecompileArgs),
    Inject(container::InjectArgs),
    Try(Box<container::TryArgs>),
    Stage(container::StageArgs),
    Events(container::EventsArgs),
    Metrics(metrics::MetricsArgs),
    Stats(metrics::StatsArgs),
    Replay(Box<replay::ReplayArgs>),
    New(new::NewArgs),
    Run(docker::RunArgs),
    /// Register hookhost with Docker: the runtime in daemon.json, or the `docker hook` plugin
    #[command(subcommand)]
    Install(docker::InstallCommand),
    /// Write global hooks as Podman/CRI-O hooks.d files
    #[command(subcommand)]
    Export(hooksd::ExportCommand),
    /// Register the hooks of a Podman/CRI-O hooks.d directory
    #[command(subcommand)]
    Import(hooksd::ImportCommand),
    Nri(nri::NriArgs),
    /// CDI devices: `hookhost cdi list`
    #[command(subcommand)]
    Cdi(cdi::CdiCommand),
    Runtime(runtime::RuntimeArgs),
    Completions(docs::CompletionsArgs),
    Man(docs::ManArgs),
}

impl Cli {
    /// `--root`/`HOOKHOST_ROOT`, else the config file's `root`, else the default.
    fn root(&self) -> PathBuf {
        self.root
            .clone()
            .or_else(|| self.settings.root.clone())
            .unwrap_or_else(Paths::default_root)
    }

    /// The registry, compiling modules under the config file's bounds.
    fn registry(&self) -> anyhow::Result<Registry> {
        Ok(Registry::open(self.root())?
            .with_compile_limits(self.settings.compile_limits())
            .with_nri_budget(self.settings.nri.budget()))
    }
}

/// Parses `argv` (after fixing lists the shell split) and runs the command.
pub fn main(argv: Vec<String>) -> ExitCode {
    // The runtime calls `hookhost stage STAGE --plan JSON` on every container start: skip
    // building the whole clap command tree on that hot path.
    if let Some(code) = hookhost_stage::main(&argv) {
        return code;
    }
    let argv =
        hookhost_hooks::listarg::rejoin_split_lists(nri::pre_registered(argv), hooks::LIST_FLAGS);
    let mut cli = Cli::parse_from(argv);
    init_tracing(&cli.log_level);
    match Config::load(cli.config.as_deref()) {
        Ok(loaded) => {
            cli.settings = loaded.config;
            cli.settings_file = loaded.file;
        }
        Err(err) => {
            report(&err.into());
            return ExitCode::FAILURE;
        }
    }
    finish(run(&cli))
}

/// The exit status of a command, its error printed.
fn finish(result: anyhow::Result<ExitCode>) -> ExitCode {
    hookhost_stage::finish(result)
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Create(args) => hooks::create(cli, args),
        Command::Update(args) => hooks::update(cli, args),
        Command::Inspect(args) => hooks::inspect(cli, args),
        Command::Ls(args) => hooks::ls(cli, args),
        Command::Rm(args) => hooks::rm(cli, args),
        Command::Promote(args) => shadow::promote(cli, args),
        Command::Apply(args) => apply::apply(cli, args),
        Command::Push(args) => oci::push(cli, args),
        Command::Pull(args) => oci::pull(cli, args),
        Command::Recompile(args) => recompile::recompile(cli, args),
        Command::Inject(args) => container::inject(cli, args),
        Command::Try(args) => container::try_hook(cli, args),
        Command::Stage(args) => container::stage(args),
        Command::Events(args) => container::events(cli, args),
        Command::Metrics(args) => metrics::metrics(cli, args),
        Command::Stats(args) => metrics::stats(cli, args),
        Command::Replay(args) => replay::replay(cli, args),
        Command::New(args) => new::new(args),
        Command::Run(args) => docker::run(cli, args),
        Command::Install(command) => docker::install(cli, command),
        Command::Export(command) => hooksd::export(cli, command),
        Command::Import(command) => hooksd::import(cli, command),
        Command::Nri(args) => nri::nri(cli, args),
        Command::Cdi(command) => cdi::cdi(cli, command),
        Command::Runtime(args) => Ok(hookhost_runtime::main(
            args.args.clone(),
            hookhost_runtime::Hookhost::ThisExecutable,
        )),
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(args),
    }
}

/// Prints an error the way Docker does: one line, the whole cause chain.
pub fn report(err: &anyhow::Error) {
    hookhost_stage::report(err)
}

fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("HOOKHOST_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
