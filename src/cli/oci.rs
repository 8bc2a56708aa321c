//! `push` and `pull`, and `create` from an `oci://` reference: WASM hooks in OCI registries.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::Cli;
use super::progress::Progress;
use hookhost_hooks::define::Definition;
use hookhost_hooks::hook::Hook;
use hookhost_hooks::registry::Registry;
use hookhost_oci::{Options, Policy};

/// Publish a registered WebAssembly hook's module, or a hook set, to an OCI registry
///
/// A module: the CNCF Wasm artifact layout (config application/vnd.wasm.config.v0+json, one
/// application/wasm layer titled NAME.wasm) that `oras pull` and other Wasm tooling read.
/// A registered hook's definition travels with it (annotation io.hookhost.definition: stages,
/// args, limits, grants, the names of its variables but never their values): `pull` and
/// `inspect` show it, and `create NAME oci://…` takes from it what its flags do not give —
/// grants only with --accept-grants. A module file (a path with a `/`) is pushed alone.
///
/// A hook set (--set FILE): the apply file and every WebAssembly module it references, as one
/// artifact (artifactType application/vnd.hookhost.set.v1+json; the file, then one
/// application/wasm layer per module, each named by digest in the file). Nodes apply it with
/// `hookhost apply -f REFERENCE` or `--watch REFERENCE`. Sign it as a module is signed:
/// `cosign sign --key cosign.key REFERENCE@DIGEST`. Native hooks keep their paths, which must
/// exist on the nodes.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  hookhost push audit oci://registry.example.com/hooks/audit:v1\n  \
    hookhost push ./target/wasm32-wasip1/release/audit.wasm oci://registry.example.com/hooks/audit:dev\n  \
    hookhost push --set hooks.json oci://registry.example.com/fleet/hooks:v7\n\n\
    Credentials come from the Docker config file ($DOCKER_CONFIG/config.json or \
    ~/.docker/config.json) as `docker login` wrote them."
)]
pub struct PushArgs {
    /// NAME (the registered WebAssembly hook, or a module file: a path with a `/`) and
    /// oci://HOST/REPO:TAG; with --set, only the reference
    #[arg(value_name = "[NAME|FILE] REFERENCE", num_args = 1..=2, required = true)]
    operands: Vec<String>,
    /// Publish this apply file and the modules it references as one hook set
    #[arg(long, value_name = "FILE")]
    set: Option<PathBuf>,
}

/// Fetch a WebAssembly module from an OCI registry into the module store
///
/// The module is verified (with --verify-key or the config file's verifyKeys), validated and
/// precompiled, but no hook is registered. Prints the resolved source as JSON. Compiling is
/// bounded by the config file's compileCpuTime and compileMemory (default 10 s of CPU time, 512 MiB); a
/// module that needs more is refused.
#[derive(Debug, Args)]
pub struct PullArgs {
    #[command(flatten)]
    verify: VerifyFlags,
    /// oci://HOST/REPO:TAG or oci://HOST/REPO@sha256:…
    reference: String,
}

/// Signature checks of modules pulled from OCI registries.
#[derive(Debug, Args, Default)]
#[command(next_help_heading = "OCI registries")]
pub struct VerifyFlags {
    /// For oci:// references: require a cosign signature by this public key (cosign.pub),
    /// checked offline, in the Sigstore bundle or the legacy .sig format [default: the config
    /// file's verifyKeys]
    #[arg(long, value_name = "FILE")]
    pub verify_key: Vec<PathBuf>,
}

/// The one call that registers NAME from an `oci://` reference with these flags:
/// `create` and `apply` both use it. `def.path` is the reference. Pulls (with progress on a
/// terminal), verifies, validates, precompiles and stores the module; the caller registers
/// the returned hook.
pub fn build(
    cli: &Cli,
    def: Definition,
    registry: &Registry,
    verify: &VerifyFlags,
    accept_grants: bool,
) -> anyhow::Result<Hook> {
    let progress = Progress::start(format!("pulling {}", def.path.display()));
    let options = options(cli, verify, &progress, accept_grants);
    Ok(hookhost_oci::build(def, registry, &options)?)
}

/// What `apply` fetches for an `oci://` Path: the module pulled (and verified under the
/// config file's policy), nothing written; `None` for a local path.
pub fn fetch(
    cli: &Cli,
    path: &std::path::Path,
) -> Option<Result<hookhost_hooks::define::Fetched, String>> {
    let text = path.to_string_lossy();
    if !hookhost_oci::is_reference(&text) {
        return None;
    }
    let options = Options {
        config: &cli.settings,
        policy: Policy { keys: Vec::new() },
        progress: &hookhost_oci::Quiet,
        accept_grants: false,
    };
    Some(
        hookhost_oci::pull(&text, &options)
            .map(|p| hookhost_hooks::define::Fetched {
                bytes: p.bytes,
                source: p.source,
            })
            .map_err(|e| hookhost_core::error_chain(&e)),
    )
}

pub fn push(cli: &Cli, args: &PushArgs) -> anyhow::Result<ExitCode> {
    let (reference, digest) = match (&args.set, args.operands.as_slice()) {
        (Some(file), [reference]) => (
            reference,
            hookhost_oci::set::push_set(file, reference, &cli.settings)?,
        ),
        (None, [name, reference]) => {
            let registry = cli.registry()?;
            let what = match name.contains('/') {
                true => hookhost_oci::Pushed::File(std::path::Path::new(name)),
                false => hookhost_oci::Pushed::Hook(name),
            };
            let pushed = hookhost_oci::push(what, reference, &registry, &cli.settings)?;
            (reference, pushed)
        }
        (Some(_), _) => anyhow::bail!("with --set, give only the reference: push --set FILE REF"),
        (None, _) => anyhow::bail!("give the hook and the reference: push NAME REF"),
    };
    println!("{reference}@{digest}");
    Ok(ExitCode::SUCCESS)
}

/// The pull options of `--verify-key` (else the config file's keys), reporting to `progress`.
pub fn options<'a>(
    cli: &'a Cli,
    verify: &VerifyFlags,
    progress: &'a dyn hookhost_oci::Progress,
    accept_grants: bool,
) -> Options<'a> {
    Options {
        config: &cli.settings,
        policy: Policy {
            keys: verify.verify_key.clone(),
        },
        progress,
        accept_grants,
    }
}

pub fn pull(cli: &Cli, args: &PullArgs) -> anyhow::Result<ExitCode> {
    let registry = cli.registry()?;
    let progress = Progress::start(format!("pulling {}", args.reference));
    let options = options(cli, &args.verify, &progress, false);
    let source = hookhost_oci::pull_into_store(&args.reference, &registry, &options)?;
    drop(progress);
    println!("{}", serde_json::to_string_pretty(&source)?);
    Ok(ExitCode::SUCCESS)
}
