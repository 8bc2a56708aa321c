//! `new`: scaffold a hook crate.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use hookhost_hooks::hook::Stage;
use hookhost_hooks::scaffold;

/// Names the guest SDK `hookhost new` depends on when --sdk is not given.
const SDK_ENV: &str = "HOOKHOST_GUEST_SDK";

/// Start a new WebAssembly hook: a Rust crate in ./NAME that builds for wasm32-wasip1 and
/// passes `hookhost try` as generated.
///
/// The crate depends on the guest SDK (hookhost-guest) by path: --sdk DIR, else
/// $HOOKHOST_GUEST_SDK, else the guest-sdk/ of the source tree this hookhost was built from
/// (the SDK is not published to a crate registry). Set CARGO_TARGET_DIR to one directory for
/// all your hooks (e.g. ~/.cache/hookhost-hooks): their common dependencies (oci-spec, serde)
/// are then built once, not once per hook (minutes on a small machine).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    export CARGO_TARGET_DIR=~/.cache/hookhost-hooks      # shared by all your hooks\n  \
    hookhost new require-owner --stage createRuntime\n  \
    cd require-owner && cargo build --release\n  \
    hookhost try $CARGO_TARGET_DIR/wasm32-wasip1/release/require-owner.wasm --type createRuntime\n  \
    hookhost create --type createRuntime require-owner $CARGO_TARGET_DIR/wasm32-wasip1/release/require-owner.wasm")]
pub struct NewArgs {
    /// The crate (and hook) name: letters, digits, '-' and '_'
    name: String,
    /// The stage the hook is meant for
    #[arg(long, default_value = "createRuntime", value_parser = super::container::parse_stage)]
    stage: Stage,
    /// The guest-sdk/ directory of a hookhost source tree to depend on [default:
    /// $HOOKHOST_GUEST_SDK, else the one this hookhost was built from]
    #[arg(long, value_name = "DIR")]
    sdk: Option<PathBuf>,
    /// Where to create NAME/ [default: the working directory]
    #[arg(long, value_name = "DIR", default_value = ".")]
    dir: PathBuf,
}

pub fn new(args: &NewArgs) -> anyhow::Result<ExitCode> {
    let sdk = sdk_dir(args.sdk.as_deref())?;
    let files = scaffold::new_hook(&args.dir, &args.name, args.stage, &sdk)?;
    for file in &files {
        println!("created {}", file.display());
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from);
    let target_dir = target_dir
        .map(|dir| std::path::absolute(&dir).unwrap_or(dir))
        .filter(|dir| !dir.as_os_str().is_empty());
    let module = scaffold::module_path(&args.name, target_dir.as_deref());
    println!(
        "next: cd {} && cargo build --release",
        args.dir.join(&args.name).display()
    );
    println!("try:  {}", scaffold::try_command(args.stage, &module));
    println!(
        "then: {}",
        scaffold::create_command_for(&args.name, args.stage, &module)
    );
    if let Some(hint) = scaffold::grant_hint(args.stage) {
        println!("grants: {hint}");
    }
    if target_dir.is_none() {
        println!(
            "tip: export CARGO_TARGET_DIR=~/.cache/hookhost-hooks before building, so that all \
             your hooks share their dependencies' builds"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The guest SDK to depend on: `given`, else `$HOOKHOST_GUEST_SDK`, else the `guest-sdk/` of
/// the source tree hookhost was built from; it must be there (a dependency that does not
/// resolve would fail the crate's first build).
fn sdk_dir(given: Option<&std::path::Path>) -> anyhow::Result<PathBuf> {
    let (dir, from) = match (given, std::env::var_os(SDK_ENV)) {
        (Some(dir), _) => (dir.to_path_buf(), "--sdk"),
        (None, Some(dir)) => (PathBuf::from(dir), SDK_ENV),
        (None, None) => (
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("guest-sdk"),
            "the default",
        ),
    };
    let dir = std::path::absolute(&dir)?;
    anyhow::ensure!(
        dir.join("Cargo.toml").is_file(),
        "{from} {}: no guest SDK there (no Cargo.toml). hookhost-guest is not published to a \
         crate registry: give --sdk DIR or set {SDK_ENV} to the guest-sdk/ directory of a \
         hookhost source tree",
        dir.display()
    );
    Ok(dir)
}
