//! `new`: scaffold a hook crate.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use hookhost_hooks::hook::Stage;
use hookhost_hooks::scaffold::{self, Sdk};

/// Start a new WebAssembly hook: a Rust crate in ./NAME that builds for wasm32-wasip1 and
/// passes `hookhost try` as generated.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    hookhost new require-owner --stage createRuntime --sdk ~/src/hookhost/guest-sdk\n  \
    cd require-owner && cargo build --release\n  \
    hookhost create --type createRuntime require-owner target/wasm32-wasip1/release/require-owner.wasm\n  \
    hookhost try require-owner")]
pub struct NewArgs {
    /// The crate (and hook) name: letters, digits, '-' and '_'
    name: String,
    /// The stage the hook is meant for
    #[arg(long, default_value = "createRuntime", value_parser = super::container::parse_stage)]
    stage: Stage,
    /// A local checkout of hookhost's guest-sdk/ to depend on [default: the published
    /// hookhost-guest crate]
    #[arg(long, value_name = "DIR")]
    sdk: Option<PathBuf>,
    /// Where to create NAME/ [default: the working directory]
    #[arg(long, value_name = "DIR", default_value = ".")]
    dir: PathBuf,
}

pub fn new(args: &NewArgs) -> anyhow::Result<ExitCode> {
    let sdk_dir = args.sdk.as_deref().map(std::path::absolute).transpose()?;
    if let Some(dir) = &sdk_dir {
        anyhow::ensure!(
            dir.join("Cargo.toml").is_file(),
            "--sdk {}: no Cargo.toml there; give the guest-sdk/ directory of a hookhost checkout",
            dir.display()
        );
    }
    let sdk = sdk_dir.as_deref().map_or(Sdk::Registry, Sdk::Path);
    let files = scaffold::new_hook(&args.dir, &args.name, args.stage, sdk)?;
    for file in &files {
        println!("created {}", file.display());
    }
    println!(
        "next: cd {} && cargo build --release && {}",
        args.dir.join(&args.name).display(),
        scaffold::create_command(&args.name, args.stage)
    );
    Ok(ExitCode::SUCCESS)
}
