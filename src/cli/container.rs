//! `inject`, `stage`, `events`: hooks attached to containers.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};

use super::{Cli, parse};
use hookhost_core::bundle::SelfCall;
use hookhost_core::events::{self, Event, Filter};
use hookhost_core::exec::Outcome;
use hookhost_core::plan::PlannedHook;
use hookhost_core::prepare::{PrepareError, prepare};
use hookhost_core::select::{CommandLine, Sources};
use hookhost_core::spec_file::SpecFile;
use hookhost_core::stage::PlanSource;
use hookhost_core::trial::{self, Verdict};
use hookhost_hooks::hook::Stage;
use hookhost_types::StageCall;

/// Attach hooks to an OCI bundle by editing its config.json.
///
/// The bundle gets exactly what the runtime wrapper would give it (matching global hooks,
/// hooks.d hooks, and the hooks its annotations select), plus the hooks given here. hookhost
/// adds itself as the OCI hook of each stage that has work, after the hooks already there, and
/// writes the container's plan beside config.json (hookhost-plan-SHA256.json, owner-only). The
/// container keeps the hooks it was given, whatever later happens to the registry.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  hookhost inject --bundle ./mycontainer --add-hook 'myFirstHook:[\"/tmp/b\",\"/tmp/c\"]'\n  runc run --bundle ./mycontainer demo"
)]
pub struct InjectArgs {
    /// The bundle directory holding config.json
    #[arg(long, short, default_value = ".", value_name = "DIR")]
    bundle: PathBuf,
    /// A registered hook, with extra arguments appended to its registered ones (or an
    /// absolute program path: an inline prestart hook)
    #[arg(long = "add-hook", value_name = "NAME[:JSON-ARGS]")]
    add_hooks: Vec<String>,
    /// Inline OCI hooks: a JSON object of stage name to a list of {path, args, env, timeout}
    #[arg(long, value_name = "FILE")]
    hook_spec: Option<PathBuf>,
}

/// Run a container's hooks for one stage (called by the OCI runtime, with the state on stdin).
#[derive(Debug, Args)]
pub struct StageArgs {
    /// The stage being run
    #[arg(value_parser = parse_stage)]
    stage: Stage,
    /// The container's plan file, as written by `hookhost inject` (relative: in the bundle)
    #[arg(long, value_name = "FILE")]
    plan: String,
    /// The plan file's sha256
    #[arg(long, value_name = "HEX")]
    sha256: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum EventFormat {
    Text,
    Json,
}

/// Show the audit trail: one line per hook run.
///
/// Each line: time, container, stage, hook, kind, `refused` for a precreate edit outside the
/// hook's grants (with `needs=` the grant that would allow it), exit status, duration, the
/// error, and `stderr=` the end of what the hook wrote on stderr (its last 4 KiB, kept also
/// when it succeeded: how a hook tells its author what it did).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    hookhost events --hook motd --failed\n  \
    hookhost events --hook gpu-env --stage precreate --since 10m --format json")]
pub struct EventsArgs {
    /// Only this container's hook runs
    #[arg(long, value_name = "ID")]
    container: Option<String>,
    /// Only this hook's runs
    #[arg(long, value_name = "NAME")]
    hook: Option<String>,
    /// Only runs at this stage
    #[arg(long, value_parser = parse_stage)]
    stage: Option<Stage>,
    /// Only runs that failed (refused precreate edits included)
    #[arg(long)]
    failed: bool,
    /// Only runs since this time (RFC 3339) or this long ago (30s, 10m, 2h, 1d)
    #[arg(long, value_parser = parse::since, value_name = "TIME")]
    since: Option<DateTime<Utc>>,
    /// Keep printing new events as they happen
    #[arg(long, short)]
    follow: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "text")]
    format: EventFormat,
}

/// Run one hook outside any container: the authoring loop.
///
/// HOOK is a registered hook's name, or a file (any path with a `/`: `./hook.wasm`,
/// `target/wasm32-wasip1/release/hook.wasm`, `/usr/libexec/hook`) defined on this command line
/// with `create`'s flags (--type, --allow-rootfs, --may-adjust, …): it is checked as `create`
/// would check it and run without being registered, so the edit–build–try loop needs no
/// registry. With a registered NAME, --stage S is the stage to run it as (default: its first)
/// and the other flags are refused. The hook gets a sample OCI state (or the one given) on
/// stdin, exactly as a runtime would send it (a precreate hook: a sample config.json, and the diff of its output
/// is shown, accepted or refused, with the edits of the CDI devices it requests); its output, exit status, duration and, for WASM, fuel used
/// are printed. Nothing is recorded in the audit trail.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  hookhost try ./target/wasm32-wasip1/release/motd.wasm --type createContainer --allow-rootfs=rw --keep\n  \
    hookhost try deny-privileged --stage createRuntime --bundle ./mycontainer\n  \
    hookhost try 'myFirstHook:[\"/tmp/b\"]'\n  runc state mycontainer | hookhost try audit --state -\n  \
    hookhost try --replay 0061a2f3b4c5d0012a300   # the recorded run's input, its hook\n  \
    hookhost try ./policy-v2.wasm --type createRuntime --replay 0061a2f3b4c5d0012a300"
)]
pub struct TryArgs {
    /// The hook (registered NAME, or a file PATH containing a `/`), with optional extra
    /// arguments
    #[arg(
        value_name = "NAME|PATH[:JSON-ARGS]",
        required_unless_present = "replay"
    )]
    hook: Option<String>,
    /// Give it the input of a recorded WASM run (`hookhost events` shows the ids): its OCI
    /// state, or at precreate its config.json; the hook defaults to the recorded one and the
    /// stage to the recorded stage
    #[arg(long, value_name = "EVENT-ID", conflicts_with_all = ["state", "bundle"])]
    replay: Option<String>,
    /// OCI state JSON to feed it: a file, or - for stdin [default: a sample state]
    #[arg(long, value_name = "FILE|-")]
    state: Option<PathBuf>,
    /// Bundle directory for the sample state (what --allow-bundle/--allow-rootfs see)
    #[arg(long, value_name = "DIR")]
    bundle: Option<PathBuf>,
    /// Keep the sample bundle the hook was given (no --bundle or --state), to look at what it
    /// wrote; its path is printed
    #[arg(long)]
    keep: bool,
    #[command(flatten)]
    flags: super::hooks::HookFlags,
}

pub(super) fn parse_stage(value: &str) -> Result<Stage, String> {
    value
        .parse()
        .map_err(|e: hookhost_hooks::hook::UnknownStage| e.to_string())
}

pub fn self_call(cli: &Cli) -> anyhow::Result<SelfCall> {
    let exe = std::env::current_exe().context("cannot find hookhost's own executable")?;
    let root = std::path::absolute(cli.root()).context("cannot resolve the registry root")?;
    let events_max_size = cli.settings.events_max_size();
    Ok(SelfCall {
        exe,
        root,
        events_max_size,
        replay: cli.settings.replay_settings(),
        runtime_log: None,
        at_start: false,
        absolute_plan: false,
        check_exe: false,
    })
}

pub fn inject(cli: &Cli, args: &InjectArgs) -> anyhow::Result<ExitCode> {
    let registry = cli.registry()?;
    let spec = args.hook_spec.as_deref().map(SpecFile::load).transpose()?;
    let call = self_call(cli)?;
    let sources = Sources::configured(Some(&registry), &call.root, &cli.settings);
    let command_line = CommandLine {
        add_hooks: &args.add_hooks,
        spec: spec.as_ref(),
    };
    // "container refused" is the runtime's word; here nothing was refused but the injection.
    let container = hookhost_core::prepare::Container::default();
    let injected =
        prepare(&args.bundle, &sources, &command_line, &call, container).map_err(|e| match e {
            PrepareError::Refused(select) => anyhow::Error::from(select),
            PrepareError::Precreate(stage) => anyhow::Error::from(stage),
            other => other.into(),
        })?;
    for warning in &injected.warnings {
        eprintln!("Warning: {warning}");
    }
    if injected.stages.is_empty() {
        println!("no hooks to inject");
    }
    for (stage, names) in &injected.stages {
        println!("{stage}: {}", names.join(", "));
    }
    for (hook, changes) in &injected.adjusted {
        let changes: Vec<String> = changes.iter().map(ToString::to_string).collect();
        println!("  {hook} {}", changes.join(", "));
    }
    for device in &injected.cdi {
        let by = device
            .by
            .as_ref()
            .map_or("the container".to_string(), |(hook, _)| {
                format!("precreate hook {hook}")
            });
        println!(
            "cdi: {} from {} (requested by {by}): {}",
            device.applied.device,
            device.applied.spec.display(),
            device.applied.edits.join("; ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn stage(args: &StageArgs) -> anyhow::Result<ExitCode> {
    let source = match &args.sha256 {
        Some(sha256) => {
            let argv = [
                "hookhost",
                "stage",
                args.stage.as_str(),
                "--plan",
                &args.plan,
                "--sha256",
                sha256,
            ];
            PlanSource::File(StageCall::from_argv(&argv).context(
                "invalid stage call: --plan must name a file and --sha256 be 64 lower-case hex digits",
            )?)
        }
        None => {
            let legacy = serde_json::from_str(&args.plan)
                .context("invalid --plan: without --sha256 it must be a stage plan in JSON")?;
            PlanSource::Legacy(args.stage, legacy)
        }
    };
    hookhost_stage::run(&source)
}

pub fn try_hook(cli: &Cli, args: &TryArgs) -> anyhow::Result<ExitCode> {
    let recorded = match &args.replay {
        Some(id) => Some(hookhost_core::replay::find(&cli.root(), id)?),
        None => None,
    };
    let named = args
        .hook
        .clone()
        .or(recorded.as_ref().map(|r| r.hook.clone()));
    let named = named.context("give the hook to try")?;
    let state = match &args.state {
        Some(path) if path.as_os_str() == "-" => {
            let mut bytes = Vec::new();
            std::io::stdin().read_to_end(&mut bytes)?;
            Some(bytes)
        }
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("cannot read state file {}", path.display()))?,
        ),
        None => None,
    };
    // A file is defined here and tried from a scratch registry; a name from the real one.
    let (registry, root, scratch, hook, stage);
    if named.contains('/') {
        let (path, extra) = match named.find(":[") {
            Some(at) => named.split_at(at),
            None => (named.as_str(), ""),
        };
        let path = std::path::absolute(path).with_context(|| format!("cannot resolve {path}"))?;
        let def = args.flags.definition("try", path)?;
        let built = trial::Scratch::build(def, cli.settings.compile_limits())?;
        hook = format!("{}{extra}", built.name);
        root = built.root().to_path_buf();
        stage = None;
        scratch = Some(built);
        registry = None;
    } else {
        anyhow::ensure!(
            !args.flags.defines(),
            "{} is a registered hook: it runs with what it was registered with. Flags other \
             than --stage define a file to try (a path with a `/`, such as ./hook.wasm); to \
             change the hook, `hookhost update {0} …`",
            named.split(':').next().unwrap_or_default()
        );
        let stages = super::hooks::parse_stages(&args.flags.stages)?;
        anyhow::ensure!(
            stages.len() <= 1,
            "--stage: give one stage to try the hook at"
        );
        stage = stages.first().copied();
        let opened = cli.registry()?;
        if let Ok(found) = opened.get(named.split(':').next().unwrap_or_default()) {
            super::hooks::warn_drift([&found]);
        }
        registry = Some(opened);
        root = std::path::absolute(cli.root())?;
        hook = named.clone();
        scratch = None;
    }
    let sources = Sources {
        registry: scratch.as_ref().map(|s| &s.registry).or(registry.as_ref()),
        root: &root,
        hooks_dirs: &[],
        skip_invalid_hooksd: false,
        allow_inline: true,
        env_selects: true,
        cdi_spec_dirs: &cli.settings.cdi_spec_dirs,
    };
    let mut request = trial::Request {
        hook: &hook,
        stage,
        state,
        bundle: args.bundle.as_deref(),
        config: None,
    };
    if let Some(record) = &recorded {
        request.stage = request.stage.or(Some(record.stage));
        match record.stage {
            Stage::Precreate => request.config = Some(record.input.to_vec()),
            _ => request.state = Some(record.input.to_vec()),
        }
    }
    let mut tried = trial::try_hook(&sources, &request)?;
    let code = print_tried(&tried);
    if let Some(dir) = tried.sample.take() {
        let sees = match tried.stage {
            Stage::Precreate => "got the config.json of a sample bundle at",
            _ => "saw a sample bundle at",
        };
        let (path, fate) = match args.keep {
            true => (dir.keep(), "kept"),
            false => (dir.path().to_path_buf(), "removed; --keep keeps it"),
        };
        eprintln!(
            "(no --bundle given: the hook {sees} {}, a default config.json and an empty \
             rootfs; {fate})",
            path.display()
        );
    }
    Ok(code)
}

fn print_tried(tried: &trial::Tried) -> ExitCode {
    let hook = &tried.hook;
    let stderr = |out: &Outcome| {
        if !out.stderr.is_empty() {
            let text = hookhost_exec::printable(&String::from_utf8_lossy(&out.stderr));
            println!("--- stderr\n{}", text.trim_end());
        }
    };
    match &tried.verdict {
        Verdict::Ran(outcome) => print_try(hook, tried.stage, outcome),
        Verdict::Accepted {
            out,
            before,
            after,
            changes,
            cdi,
        } => {
            stderr(out);
            println!("--- changes");
            if changes.is_empty() {
                println!("(none: the config is unchanged)");
            }
            for change in changes {
                let line = change.diff_line(before, after);
                println!("{}", hookhost_exec::printable(&line));
            }
            for device in cdi {
                let spec = device.spec.display();
                println!("--- CDI device {} ({spec})", device.device);
                for edit in &device.edits {
                    println!("{}", hookhost_exec::printable(edit));
                }
            }
            println!(
                "--- hook {} (precreate, {}): accepted in {:.2} ms",
                hook.name,
                hook.spec.kind,
                out.duration.as_secs_f64() * 1000.0
            );
            ExitCode::SUCCESS
        }
        Verdict::Rejected {
            out,
            reason,
            before,
            after,
            attempted,
        } => {
            stderr(out);
            if !attempted.is_empty() {
                println!("--- changes (refused: the container would not be created)");
            }
            for tried in attempted {
                let line = hookhost_exec::printable(&tried.change.diff_line(before, after));
                let mark = match (tried.refused, &tried.needs) {
                    (false, _) => String::new(),
                    (true, Some(needs)) => format!("   [refused: needs {needs}]"),
                    (true, None) => "   [refused: no grant allows it]".into(),
                };
                println!("{line}{mark}");
            }
            println!(
                "--- hook {} (precreate, {}): refused in {:.2} ms",
                hook.name,
                hook.spec.kind,
                out.duration.as_secs_f64() * 1000.0
            );
            let reason = hookhost_exec::printable(reason);
            eprintln!("Error: hook {} (precreate): {reason}", hook.name);
            ExitCode::FAILURE
        }
    }
}

fn print_try(
    hook: &PlannedHook,
    stage: Stage,
    outcome: &Result<Outcome, hookhost_core::run::ExecError>,
) -> ExitCode {
    match outcome {
        Ok(out) => {
            for (label, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
                if !bytes.is_empty() {
                    let text = hookhost_exec::printable(&String::from_utf8_lossy(bytes));
                    println!("--- {label}\n{}", text.trim_end());
                }
            }
            let fuel = out
                .fuel_used
                .map(|f| format!(", fuel used {f}"))
                .unwrap_or_default();
            let cut = if out.truncated {
                " (output truncated)"
            } else {
                ""
            };
            println!(
                "--- hook {} ({stage}, {}): {} in {:.2} ms{fuel}{cut}",
                hook.name,
                hook.spec.kind,
                out.exit,
                out.duration.as_secs_f64() * 1000.0
            );
            if out.success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("Error: hook {} ({stage}): {e}", hook.name);
            ExitCode::FAILURE
        }
    }
}

pub fn events(cli: &Cli, args: &EventsArgs) -> anyhow::Result<ExitCode> {
    let file = hookhost_hooks::paths::Paths::new(cli.root()).events_file();
    let filter = Filter {
        container: args.container.clone(),
        since: args.since,
        hook: args.hook.clone(),
        stage: args.stage,
        failed: args.failed,
    };
    events::read(&file, &filter, args.follow, |event| {
        print_event(event, args.format)
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Prints one event; false when stdout is gone (`hookhost events -f | head`).
fn print_event(event: &Event, format: EventFormat) -> bool {
    use std::io::Write;
    let line = match format {
        EventFormat::Json => serde_json::to_string(event).expect("an event serialises"),
        EventFormat::Text => event.text_line(),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|_| out.flush()).is_ok()
}
