//! `create`, `inspect`, `ls`, `rm`: the registry, managed like Docker objects.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};

use super::{Cli, report};
use hookhost_core::exec::limits::{self, WasmLimits};
use hookhost_hooks::define::{self, Definition};
use hookhost_hooks::grants::{Access, DirGrant, Grants};
use hookhost_hooks::hook::{Hook, RawTimeout, Stage};
use hookhost_hooks::listarg::{self, Split};
use hookhost_hooks::when::When;

/// Flags whose values are lists the shell may have split at spaces.
pub const LIST_FLAGS: &[&str] = &["--args", "--env", "--type", "--stage"];

/// Register a hook under a name.
///
/// PATH is a native executable (run as a process, exactly as runc runs an OCI hook) or a
/// WebAssembly module (recognised by its content, run sandboxed inside hookhost).
///
/// A module is compiled here, in a child process bounded by the config file's compileCpuTime
/// and compileMemory (default 10 s of CPU time, 512 MiB); one that needs more is refused.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    hookhost create --type prestart --env platform=linux --timeout 5 --args ls,/tmp/a myFirstHook /bin/ls\n  \
    hookhost create --type prestart,poststop --args '[\"register\", \"--verbose\"]' systemd /usr/libexec/oci/systemd-hook\n  \
    hookhost create --verify-key /etc/hookhost/cosign.pub audit oci://registry.example.com/hooks/audit:v1\n\n\
    List values may be given as A,B, as a JSON list '[\"A\",\"B\"]', or by repeating the flag.")]
pub struct CreateArgs {
    /// Stages to run at: prestart (default), createRuntime, createContainer, startContainer,
    /// poststart, poststop, startRuntime (through the runtime wrapper), precreate (before the
    /// container is created: the hook gets config.json on stdin and writes it back on stdout)
    #[arg(long = "type", visible_alias = "stage", value_name = "STAGE[,STAGE]")]
    stages: Vec<String>,
    /// Environment of the hook, KEY=VALUE (the hook gets nothing else but HOOKHOST_STAGE)
    #[arg(long, short = 'e', value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Seconds the hook may run before it is killed with its whole process group, 1 to 3600
    /// [default: 30]
    // Taken as text: hookhost-core validates it, with the same message as every other source.
    #[arg(long, value_name = "SECS", allow_negative_numbers = true)]
    timeout: Option<String>,
    /// Arguments, OCI execv style: the first is argv0 [default: PATH]
    #[arg(long, value_name = "ARG,ARG")]
    args: Vec<String>,
    /// Record the executable's sha256: containers then refuse to run it once it changed
    /// (WebAssembly modules are always verified)
    #[arg(long)]
    pin: bool,
    /// Native hooks: leave background processes the hook started running after it exited
    /// successfully (as runc does). By default hookhost reads the hook's output for 100 ms
    /// after it exits, then kills what is left of its process group
    #[arg(long)]
    leave_helpers: bool,
    /// What a failure of this hook does: fail (stop the container; not at poststop), warn (let
    /// it start, warn in the runtime's log and the audit trail), ignore (only record it)
    /// [default: fail at every stage but poststop, which warns]
    #[arg(long, value_name = "fail|warn|ignore")]
    on_failure: Option<hookhost_hooks::hook::OnFailure>,
    /// Precreate hooks: what of the container's config.json the hook may change, e.g.
    /// env=GPU_*,mounts=/opt/gpu/**:from=/usr/lib/gpu/**,devices=/dev/gpu*. Areas:
    /// env[=NAME-GLOB], mounts[=DESTINATION-GLOB[:from=SOURCE-GLOB[:rw]]] (a mount of a host
    /// path needs its source granted; read-only unless :rw), devices[=PATH-GLOB],
    /// annotations[=KEY-GLOB], rlimits, hooks, resources, args, all. Paths match in normal form
    /// only (no `.`, `..`, `//`). Any other change refuses the container [default: none: the
    /// hook may only accept or refuse]
    #[arg(long, value_name = "AREA[=GLOB],…")]
    may_adjust: Vec<String>,
    #[command(flatten)]
    wasm: WasmFlags,
    #[command(flatten)]
    when: WhenFlags,
    #[command(flatten)]
    verify: super::oci::VerifyFlags,
    /// Name of the hook: [a-zA-Z0-9][a-zA-Z0-9_.-]*
    name: String,
    /// Path of the executable or WebAssembly module (a relative one is resolved against the
    /// working directory and stored absolute), or oci://HOST/REPO:TAG (or @sha256:…) of a
    /// WebAssembly module in an OCI registry
    path: PathBuf,
}

/// Limits and capability grants of a WebAssembly hook, fixed here by whoever registers it.
#[derive(Debug, Args)]
#[command(next_help_heading = "WebAssembly hooks")]
struct WasmFlags {
    /// Compute budget in fuel units, deterministic [default: 1000000000]
    #[arg(long, value_parser = |s: &str| limits::parse_fuel(s).map_err(|e| e.to_string()), value_name = "N", allow_negative_numbers = true)]
    fuel: Option<u64>,
    /// Memory cap for all of the module's memories, tables and GC heap together, e.g. 64MiB,
    /// 512KiB [default: 64MiB]
    #[arg(long, value_parser = |s: &str| limits::parse_size(s).map_err(|e| e.to_string()), value_name = "SIZE")]
    memory: Option<u64>,
    /// Bytes one run may write through its writable (:rw) directories, e.g. 1MiB; a run also
    /// creates at most 1000 files [default: 64MiB]
    #[arg(long, value_parser = |s: &str| limits::parse_size(s).map_err(|e| e.to_string()), value_name = "SIZE")]
    write_limit: Option<u64>,
    /// Give the hook a host directory, read-only unless :rw
    #[arg(long, value_name = "HOST[:GUEST][:ro|rw]")]
    allow_dir: Vec<DirGrant>,
    /// Give the hook the container's bundle directory at /bundle
    #[arg(long, value_name = "ro|rw", num_args = 0..=1, require_equals = true, default_missing_value = "ro")]
    allow_bundle: Option<Access>,
    /// Give the hook the container's root filesystem at /rootfs
    #[arg(long, value_name = "ro|rw", num_args = 0..=1, require_equals = true, default_missing_value = "ro")]
    allow_rootfs: Option<Access>,
    /// Pass this host environment variable to the hook
    #[arg(long, value_name = "NAME")]
    allow_env: Vec<String>,
}

impl WasmFlags {
    fn limits(&self) -> Option<WasmLimits> {
        if self.fuel.is_none() && self.memory.is_none() && self.write_limit.is_none() {
            return None;
        }
        let defaults = WasmLimits::default();
        Some(WasmLimits {
            fuel: self.fuel.unwrap_or(defaults.fuel),
            memory: self.memory.unwrap_or(defaults.memory),
            writes: self.write_limit.unwrap_or(defaults.writes),
        })
    }

    fn grants(&self) -> Option<Grants> {
        let grants = Grants {
            dirs: self.allow_dir.clone(),
            bundle: self.allow_bundle,
            rootfs: self.allow_rootfs,
            env: self.allow_env.clone(),
        };
        (!grants.is_empty()).then_some(grants)
    }
}

/// Conditions that make a hook global: it then runs for every container they match (all set
/// conditions must hold, as in hooks.d), without being named.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global hooks")]
struct WhenFlags {
    /// Run for every container
    #[arg(long)]
    when_always: bool,
    /// Run when the container has annotation KEY with a value matching REGEX
    #[arg(long, value_name = "KEY=REGEX")]
    when_annotation: Vec<String>,
    /// Run when the container's process.args[0] matches REGEX
    #[arg(long, value_name = "REGEX")]
    when_command: Vec<String>,
    /// Run when the container has bind mounts
    #[arg(long)]
    when_bind_mounts: bool,
}

impl WhenFlags {
    fn when(&self) -> anyhow::Result<Option<When>> {
        let when = When::from_flags(
            self.when_always,
            &self.when_annotation,
            &self.when_command,
            self.when_bind_mounts,
        )?;
        Ok((!when.is_empty()).then_some(when))
    }
}

/// Show hooks in detail, as JSON.
#[derive(Debug, Args)]
pub struct InspectArgs {
    #[arg(required = true, value_name = "NAME")]
    names: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ListFormat {
    Table,
    Json,
}

/// List registered hooks.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only print names
    #[arg(long, short)]
    quiet: bool,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    format: ListFormat,
}

/// Remove hooks. Containers already created keep running the hooks they were created with.
#[derive(Debug, Args)]
pub struct RmArgs {
    #[arg(required = true, value_name = "NAME")]
    names: Vec<String>,
}

pub fn create(cli: &Cli, args: &CreateArgs) -> anyhow::Result<ExitCode> {
    let registry = cli.registry()?;
    let reference = hookhost_oci::is_reference(&args.path.to_string_lossy());
    // A relative path is resolved against the working directory and stored absolute.
    let path = match reference {
        true => args.path.clone(),
        false => std::path::absolute(&args.path)
            .with_context(|| format!("cannot resolve {}", args.path.display()))?,
    };
    let def = Definition {
        name: args.name.clone(),
        path,
        stages: parse_stages(&args.stages)?,
        args: listarg::parse_all(&args.args, Split::Always).context("--args")?,
        env: listarg::parse_all(&args.env, Split::KeyValue).context("--env")?,
        timeout: args.timeout.as_deref().map(RawTimeout::from),
        limits: args.wasm.limits(),
        grants: args.wasm.grants(),
        leave_helpers: args.leave_helpers,
        on_failure: args.on_failure,
        may_adjust: match args.may_adjust.is_empty() {
            true => None,
            false => Some(hookhost_hooks::may_adjust::MayAdjust::parse_all(
                &args.may_adjust,
            )?),
        },
        when: args.when.when()?,
        pin: args.pin,
    };
    let hook = if reference {
        super::oci::build(cli, def, &registry, &args.verify)?
    } else {
        anyhow::ensure!(
            args.verify.verify_key.is_empty(),
            "--verify-key applies to oci:// references only: {} is a local file",
            args.path.display()
        );
        let _progress = super::progress::Progress::start(format!(
            "validating and precompiling {}",
            args.path.display()
        ));
        define::build(def, &registry)?
    };
    registry.create(&hook)?;
    println!("{}", hook.name);
    Ok(ExitCode::SUCCESS)
}

pub fn parse_stages(values: &[String]) -> anyhow::Result<Vec<Stage>> {
    let names = listarg::parse_all(values, Split::Always).context("--type")?;
    names
        .iter()
        .map(|n| n.parse::<Stage>().context("--type"))
        .collect()
}

pub fn inspect(cli: &Cli, args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let registry = cli.registry()?;
    let mut found = Vec::new();
    let mut code = ExitCode::SUCCESS;
    let generation = registry
        .generation()
        .map(serde_json::to_value)
        .transpose()?;
    for name in &args.names {
        match registry.get(name) {
            Ok(hook) => {
                let mut view = hook.inspect_view();
                if let (Some(generation), Some(map)) = (&generation, view.as_object_mut()) {
                    map.insert("Generation".into(), generation.clone());
                }
                found.push(view);
            }
            Err(e) => {
                report(&e.into());
                code = ExitCode::FAILURE;
            }
        }
    }
    println!("{}", serde_json::to_string_pretty(&found)?);
    Ok(code)
}

pub fn ls(cli: &Cli, args: &LsArgs) -> anyhow::Result<ExitCode> {
    let registry = cli.registry()?;
    if args.quiet {
        for name in registry.names()? {
            println!("{name}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (hooks, errors) = registry.list()?;
    match args.format {
        ListFormat::Json => {
            let views: Vec<_> = hooks.iter().map(Hook::inspect_view).collect();
            println!("{}", serde_json::to_string_pretty(&views)?);
        }
        ListFormat::Table => print_table(&hooks),
    }
    for err in &errors {
        eprintln!("Warning: {}", hookhost_core::error_chain(err));
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_table(hooks: &[Hook]) {
    let mut rows = vec![[
        "NAME".to_string(),
        "TYPE".into(),
        "PATH".into(),
        "ARGS".into(),
    ]];
    for hook in hooks {
        rows.push([
            hook.name.clone(),
            hook.type_label(),
            hook.spec.path.display().to_string(),
            hook.spec.args.join(" "),
        ]);
    }
    let widths: Vec<usize> = (0..3)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let mut line = String::new();
        for (cell, width) in row.iter().zip(&widths) {
            line.push_str(&format!("{cell:<width$}   ", width = *width));
        }
        line.push_str(&row[3]);
        println!("{}", line.trim_end());
    }
}

pub fn rm(cli: &Cli, args: &RmArgs) -> anyhow::Result<ExitCode> {
    let registry = cli.registry()?;
    let mut failed = false;
    for name in &args.names {
        match registry.remove(name) {
            Ok(()) => println!("{name}"),
            Err(e) => {
                report(&e.into());
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
