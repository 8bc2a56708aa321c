//! `create`, `update`, `inspect`, `ls`, `rm`: the registry, managed like Docker objects.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};

use super::{Cli, report};
use hookhost_core::events::text_field;
use hookhost_core::exec::limits::{self, WasmLimits};
use hookhost_hooks::apply::Action;
use hookhost_hooks::define::{self, Definition};
use hookhost_hooks::drift::DriftCheck;
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
///
/// `--replace` registers the hook whether or not the name is taken, as `kubectl replace`
/// does: the new definition is exactly what this command line says (nothing is kept from the
/// old one), checked as a new one is, and swapped in atomically. To change a few settings and
/// keep the rest, use `hookhost update NAME`. Either way, containers already created keep the
/// hooks they were created with.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    hookhost create --type prestart --env platform=linux --timeout 5 --args ls,/tmp/a myFirstHook /bin/ls\n  \
    hookhost create --type prestart,poststop --args '[\"register\", \"--verbose\"]' systemd /usr/libexec/oci/systemd-hook\n  \
    hookhost create --verify-key /etc/hookhost/cosign.pub audit oci://registry.example.com/hooks/audit:v1\n  \
    hookhost create --replace --type createContainer --allow-rootfs=rw motd target/wasm32-wasip1/release/motd.wasm\n\n\
    List values may be given as A,B, as a JSON list '[\"A\",\"B\"]', or by repeating the flag.")]
pub struct CreateArgs {
    #[command(flatten)]
    flags: HookFlags,
    /// Replace the hook of that name if there is one (keeping nothing of it); create it if not
    #[arg(long)]
    replace: bool,
    /// For an oci:// artifact carrying a hook definition: grant what it asks for (without
    /// this, or grant flags of your own, such an artifact is refused)
    #[arg(long)]
    accept_grants: bool,
    #[command(flatten)]
    verify: super::oci::VerifyFlags,
    #[command(flatten)]
    shadow: super::shadow::ShadowFlags,
    /// Name of the hook: [a-zA-Z0-9][a-zA-Z0-9_.-]*
    name: String,
    /// Path of the executable or WebAssembly module (a relative one is resolved against the
    /// working directory and stored absolute), or oci://HOST/REPO:TAG (or @sha256:…) of a
    /// WebAssembly module in an OCI registry
    path: PathBuf,
}

/// Change a registered hook, keeping what is not given.
///
/// The program is read again from its Path (or from --path): after a rebuild, `hookhost
/// update NAME` registers the new module under the same name with the same flags, as
/// `docker update` changes a container's settings in place. A flag given here replaces that
/// setting (a list flag such as --env or --args replaces the whole list; each --allow-* and
/// WASM limit flag replaces that one grant or limit; any --when-* flag replaces the
/// conditions). To drop a setting, register the hook again with `hookhost create --replace`.
/// The result gets every check `create` makes and replaces the entry atomically; containers
/// already created keep the hooks they were created with.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    cargo build --release && hookhost update motd      # the rebuilt module, same flags\n  \
    hookhost update motd --timeout 10 --allow-rootfs=rw\n  \
    hookhost update motd --path ../motd-v2/target/wasm32-wasip1/release/motd.wasm")]
pub struct UpdateArgs {
    #[command(flatten)]
    flags: HookFlags,
    /// Read the program from this path instead of the registered one (relative: against the
    /// working directory), or an oci:// reference
    #[arg(long, value_name = "PATH")]
    path: Option<PathBuf>,
    #[command(flatten)]
    verify: super::oci::VerifyFlags,
    /// Name of the registered hook
    name: String,
}

/// What a hook is registered with: shared by `create`, `update` and `try` of a file.
#[derive(Debug, Args)]
pub struct HookFlags {
    /// Stages to run at: prestart (default), createRuntime, createContainer, startContainer,
    /// poststart, poststop, startRuntime (through the runtime wrapper), precreate (before the
    /// container is created: the hook gets config.json on stdin and writes it back on stdout)
    #[arg(long = "type", visible_alias = "stage", value_name = "STAGE[,STAGE]")]
    pub stages: Vec<String>,
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
    /// annotations[=KEY-GLOB], cdi[=NAME-GLOB] (CDI devices by name, cdi=example.com/gpu=*),
    /// rlimits, hooks, resources, args, all. Paths match in normal form
    /// only (no `.`, `..`, `//`). Any other change refuses the container [default: none: the
    /// hook may only accept or refuse]
    #[arg(long, value_name = "AREA[=GLOB],…")]
    may_adjust: Vec<String>,
    #[command(flatten)]
    wasm: WasmFlags,
    #[command(flatten)]
    when: WhenFlags,
}

impl HookFlags {
    /// Whether any flag but --type/--stage was given (what defines a hook, beyond its stage).
    pub fn defines(&self) -> bool {
        let w = &self.wasm;
        let when = &self.when;
        !(self.env.is_empty()
            && self.timeout.is_none()
            && self.args.is_empty()
            && !self.pin
            && !self.leave_helpers
            && self.on_failure.is_none()
            && self.may_adjust.is_empty()
            && w.fuel.is_none()
            && w.memory.is_none()
            && w.write_limit.is_none()
            && w.allow_dir.is_empty()
            && w.allow_bundle.is_none()
            && w.allow_rootfs.is_none()
            && w.allow_env.is_empty()
            && !when.when_always
            && when.when_annotation.is_empty()
            && when.when_command.is_empty()
            && !when.when_bind_mounts)
    }

    /// The definition these flags give the hook `name` at `path`, nothing else kept.
    pub fn definition(&self, name: &str, path: PathBuf) -> anyhow::Result<Definition> {
        self.overlay(Definition {
            name: name.to_string(),
            path,
            ..Definition::default()
        })
    }

    /// `def` with every setting these flags give replaced.
    pub fn overlay(&self, mut def: Definition) -> anyhow::Result<Definition> {
        if !self.stages.is_empty() {
            def.stages = parse_stages(&self.stages)?;
        }
        if !self.args.is_empty() {
            def.args = listarg::parse_all(&self.args, Split::Always).context("--args")?;
        }
        if !self.env.is_empty() {
            def.env = listarg::parse_all(&self.env, Split::KeyValue).context("--env")?;
        }
        if let Some(timeout) = &self.timeout {
            def.timeout = Some(RawTimeout::from(timeout.as_str()));
        }
        def.limits = self.wasm.limits(def.limits.take());
        def.grants = self.wasm.grants(def.grants.take());
        def.pin |= self.pin;
        def.leave_helpers |= self.leave_helpers;
        def.on_failure = self.on_failure.or(def.on_failure);
        if !self.may_adjust.is_empty() {
            def.may_adjust = Some(hookhost_hooks::may_adjust::MayAdjust::parse_all(
                &self.may_adjust,
            )?);
        }
        if let Some(when) = self.when.when()? {
            def.when = Some(when);
        }
        Ok(def)
    }
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
    /// `kept` (or the defaults) with the limits given here replaced; none when neither.
    fn limits(&self, kept: Option<WasmLimits>) -> Option<WasmLimits> {
        if self.fuel.is_none() && self.memory.is_none() && self.write_limit.is_none() {
            return kept;
        }
        let base = kept.unwrap_or_default();
        Some(WasmLimits {
            fuel: self.fuel.unwrap_or(base.fuel),
            memory: self.memory.unwrap_or(base.memory),
            writes: self.write_limit.unwrap_or(base.writes),
        })
    }

    /// `kept` with each grant given here replaced; none when neither has any.
    fn grants(&self, kept: Option<Grants>) -> Option<Grants> {
        let mut grants = kept.unwrap_or_default();
        if !self.allow_dir.is_empty() {
            grants.dirs = self.allow_dir.clone();
        }
        grants.bundle = self.allow_bundle.or(grants.bundle);
        grants.rootfs = self.allow_rootfs.or(grants.rootfs);
        if !self.allow_env.is_empty() {
            grants.env = self.allow_env.clone();
        }
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
///
/// With no names (or --all), every registered hook: what `hookhost apply -f` takes back.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    hookhost inspect myFirstHook\n  \
    hookhost inspect > hooks.json && hookhost apply -f hooks.json      # on another node")]
pub struct InspectArgs {
    /// Every registered hook (the same as giving no names)
    #[arg(long, short, conflicts_with = "names")]
    all: bool,
    #[arg(value_name = "NAME")]
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
    if !args.replace {
        // Before the module is compiled and stored: a taken name changes nothing.
        registry.check_free(&args.name)?;
    }
    let mut def = args
        .flags
        .definition(&args.name, program_path(&args.path)?)?;
    let enforced = args.shadow.enforced(&registry, &mut def)?;
    let hook = build(cli, def, &registry, &args.verify, args.accept_grants)?;
    let hook = args.shadow.make(hook, enforced.as_ref())?;
    if args.replace {
        hookhost_hooks::shadow::check_replacement(&registry, &hook)?;
    }
    match args.replace {
        true => registry.put(&hook)?,
        false => registry.create(&hook)?,
    }
    println!("{}", hook.name);
    Ok(ExitCode::SUCCESS)
}

pub fn update(cli: &Cli, args: &UpdateArgs) -> anyhow::Result<ExitCode> {
    let registry = cli.registry()?;
    let old = registry.get(&args.name)?;
    let mut def = Definition::from_hook(&old);
    if let Some(path) = &args.path {
        def.path = program_path(path)?;
    }
    let def = args.flags.overlay(def)?;
    let mut hook = build(cli, def, &registry, &args.verify, false)?;
    // A shadow stays one (what it takes from its enforced hook is taken again at each run).
    hook.shadow = old.shadow.clone();
    hookhost_hooks::shadow::check_replacement(&registry, &hook)?;
    registry.put(&hook)?;
    println!("{}", hook.name);
    match hookhost_hooks::apply::diff(&old, &hook) {
        Action::Update(changes) => {
            for change in changes {
                println!("  {change}");
            }
        }
        _ => println!("  (unchanged)"),
    }
    Ok(ExitCode::SUCCESS)
}

/// A program path as given: an `oci://` reference as it is, a relative path resolved against
/// the working directory (and stored absolute).
fn program_path(given: &std::path::Path) -> anyhow::Result<PathBuf> {
    match hookhost_oci::is_reference(&given.to_string_lossy()) {
        true => Ok(given.to_path_buf()),
        false => std::path::absolute(given)
            .with_context(|| format!("cannot resolve {}", given.display())),
    }
}

/// Builds the hook `def` describes, as `create` does: pulled for an `oci://` reference,
/// else validated (and, for WASM, precompiled and stored) from the local file.
pub fn build(
    cli: &Cli,
    def: Definition,
    registry: &hookhost_hooks::registry::Registry,
    verify: &super::oci::VerifyFlags,
    accept_grants: bool,
) -> anyhow::Result<Hook> {
    if hookhost_oci::is_reference(&def.path.to_string_lossy()) {
        return super::oci::build(cli, def, registry, verify, accept_grants);
    }
    anyhow::ensure!(
        verify.verify_key.is_empty(),
        "--verify-key applies to oci:// references only: {} is a local file",
        def.path.display()
    );
    let _progress = super::progress::Progress::start(format!(
        "validating and precompiling {}",
        def.path.display()
    ));
    Ok(define::build(def, registry)?)
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
    if args.names.is_empty() {
        let (hooks, errors) = registry.list()?;
        for err in errors {
            report(&err.into());
            code = ExitCode::FAILURE;
        }
        found = hooks;
    }
    for name in &args.names {
        match registry.get(name) {
            Ok(hook) => found.push(hook),
            Err(e) => {
                report(&e.into());
                code = ExitCode::FAILURE;
            }
        }
    }
    let generation = registry
        .generation()
        .map(serde_json::to_value)
        .transpose()?;
    let views: Vec<_> = found
        .iter()
        .map(|hook| {
            let mut view = hook.inspect_view();
            if let (Some(generation), Some(map)) = (&generation, view.as_object_mut()) {
                map.insert("Generation".into(), generation.clone());
            }
            view
        })
        .collect();
    println!("{}", serde_json::to_string_pretty(&views)?);
    warn_drift(&found);
    Ok(code)
}

/// Warns (on stderr) of every hook whose file at Path was changed since it was registered:
/// a rebuilt module that is not what runs.
pub fn warn_drift<'a>(hooks: impl IntoIterator<Item = &'a Hook>) {
    let mut check = DriftCheck::default();
    for hook in hooks {
        if let Some(drift) = check.check(hook) {
            eprintln!("Warning: {drift}");
        }
    }
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
    warn_drift(&hooks);
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
        let kind = match &hook.shadow {
            Some(shadow) => format!("shadow of {}", shadow.of),
            None => hook.type_label(),
        };
        // Paths and arguments quoted as every text view quotes a value (spaces, newlines,
        // escapes): one row per hook, and each argument's boundaries visible.
        let args: Vec<_> = hook.spec.args.iter().map(|a| text_field(a)).collect();
        rows.push([
            hook.name.clone(),
            kind,
            text_field(&hook.spec.path.to_string_lossy()).into_owned(),
            args.join(" "),
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
