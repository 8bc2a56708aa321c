//! `hookhost new NAME`: a hook crate to start from, outside any repository of hookhost's.
//!
//! It builds for `wasm32-wasip1` as generated (the target is preset in `.cargo/config.toml`)
//! and has a native unit test of its logic (`cargo test-native`); a hook for an OCI stage passes
//! `hookhost try` once registered. A precreate hook edits the proposed config.json through the
//! SDK's `precreate` API instead of reading the OCI state.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::hook::Stage;

#[derive(Debug, Error)]
pub enum ScaffoldError {
    #[error(
        "invalid hook crate name {0:?}: use letters, digits, '-' and '_', starting with a letter"
    )]
    BadName(String),
    #[error("{} already exists; choose another name or directory", .0.display())]
    Exists(PathBuf),
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Writes the crate `NAME/` under `parent`, depending on the guest SDK at `sdk` (the absolute
/// path of a `guest-sdk/` directory: hookhost-guest is not published to a registry); returns
/// the files written.
pub fn new_hook(
    parent: &Path,
    name: &str,
    stage: Stage,
    sdk: &Path,
) -> Result<Vec<PathBuf>, ScaffoldError> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.len() <= 64;
    if !valid {
        return Err(ScaffoldError::BadName(name.to_string()));
    }
    let dir = parent.join(name);
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir));
    }
    let files = [
        ("Cargo.toml", cargo_toml(name, sdk)),
        (".cargo/config.toml", CARGO_CONFIG.to_string()),
        ("src/main.rs", main_rs(name, stage)),
        (".gitignore", "/target\n".to_string()),
    ];
    let mut written = Vec::new();
    for (relative, content) in files {
        let path = dir.join(relative);
        let write = |path: &Path| -> std::io::Result<()> {
            std::fs::create_dir_all(path.parent().expect("a file in the crate"))?;
            std::fs::write(path, content.as_bytes())
        };
        write(&path).map_err(|source| ScaffoldError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

fn cargo_toml(name: &str, sdk: &Path) -> String {
    let dependency = format!("{{ path = {:?} }}", sdk.display().to_string());
    format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
hookhost-guest = {dependency}

# A small module: hookhost loads it on every container start.
[profile.release]
opt-level = "s"
strip = true

# Builds on its own, even inside another Cargo workspace.
[workspace]
"#
    )
}

const CARGO_CONFIG: &str = r#"# Hooks are WebAssembly modules: `cargo build --release` makes
# target/wasm32-wasip1/release/NAME.wasm ($CARGO_TARGET_DIR/… when that is set: one target
# directory shared by all your hooks builds their common dependencies once).
[build]
target = "wasm32-wasip1"

# `cargo test-native` runs the unit tests on this machine, whatever its architecture.
[alias]
test-native = ["test", "--target", "host-tuple"]
"#;

/// The variable a scaffolded precreate hook sets, and so the grant it is registered with.
const PRECREATE_VARIABLE: &str = "HELLO_FROM";

/// What a hook at `stage` is usually granted beyond what its template needs, as a hint for
/// the author: the container's files, or its config.
pub fn grant_hint(stage: Stage) -> Option<&'static str> {
    match stage {
        Stage::Precreate => None,
        Stage::CreateContainer | Stage::CreateRuntime | Stage::Prestart => Some(
            "to read or write the container's files add --allow-rootfs (=rw to write, as a \
             hook writing /rootfs/etc/motd needs); --allow-bundle gives config.json",
        ),
        _ => {
            Some("--allow-bundle gives the hook config.json; --allow-rootfs the container's files")
        }
    }
}

/// The flags a scaffolded hook needs for what its code does: a precreate template sets one
/// variable, which it must be granted.
fn template_grants(stage: Stage) -> String {
    template_may_adjust(stage).map_or(String::new(), |grant| format!(" --may-adjust {grant}"))
}

/// The `--may-adjust` a scaffolded precreate hook needs: the one variable it sets.
fn template_may_adjust(stage: Stage) -> Option<String> {
    stage
        .edits_config()
        .then(|| format!("env={PRECREATE_VARIABLE}"))
}

/// Where `cargo build --release` puts the scaffolded hook's module: under `target_dir`
/// (`$CARGO_TARGET_DIR`) when given, else under the crate's `target/`.
pub fn module_path(name: &str, target_dir: Option<&Path>) -> PathBuf {
    target_dir
        .unwrap_or(Path::new("target"))
        .join(format!("wasm32-wasip1/release/{name}.wasm"))
}

/// The `hookhost create` line that registers a scaffolded hook, with the grant its code needs.
pub fn create_command(name: &str, stage: Stage) -> String {
    create_command_for(name, stage, &module_path(name, None))
}

/// [`create_command`] for the module at `module`.
pub fn create_command_for(name: &str, stage: Stage, module: &Path) -> String {
    let grants = template_grants(stage);
    format!(
        "hookhost create --type {stage}{grants} {name} {}",
        module.display()
    )
}

/// The `hookhost try` line that runs a scaffolded hook's module without registering it.
pub fn try_command(stage: Stage, module: &Path) -> String {
    let grants = template_grants(stage);
    format!("hookhost try {} --type {stage}{grants}", module.display())
}

fn main_rs(name: &str, stage: Stage) -> String {
    let create = create_command(name, stage);
    if stage.edits_config() {
        return PRECREATE_MAIN_RS
            .replace("{CREATE}", &create)
            .replace("{GRANT}", &template_may_adjust(stage).unwrap_or_default())
            .replace("{VARIABLE}", PRECREATE_VARIABLE)
            .replace("{NAME}", name);
    }
    format!(
        r#"//! {name}: a hookhost hook for the {stage} stage.
//!
//!   cargo build --release
//!   {create}
//!   hookhost try {name}
//!   cargo test-native
//!
//! Grants (`--allow-bundle`, `--allow-rootfs`, `--allow-dir`, `--allow-env`) give the hook what
//! it may see; see the hookhost-guest documentation.

use std::process::ExitCode;

use hookhost_guest::{{Hook, run}};

fn main() -> ExitCode {{
    run(|hook| check(hook).map_err(Into::into))
}}

/// The hook's logic: `Ok` lets the container go on; `Err(reason)` stops it at a fatal stage,
/// and the reason is what the user sees.
fn check(hook: &Hook) -> Result<(), String> {{
    eprintln!("{name}: container {{}} is {{}}", hook.state.id, hook.state.status);
    Ok(())
}}

#[cfg(test)]
mod tests {{
    use super::*;
    use hookhost_guest::State;

    #[test]
    fn lets_a_container_go_on() {{
        let state = State::sample("c1", "creating", "/tmp".into(), 1);
        assert_eq!(check(&Hook::new(state)), Ok(()));
    }}
}}
"#
    )
}

/// A precreate hook: it sets one variable in the container's environment, which is exactly what
/// the `--may-adjust` of its header grants, and refuses a container without a process.
const PRECREATE_MAIN_RS: &str = r##"//! {NAME}: a hookhost hook for the precreate stage. It gets the container's proposed
//! config.json before the container is created and may change it.
//!
//!   cargo build --release
//!   {CREATE}
//!   hookhost try {NAME}
//!   cargo test-native
//!
//! hookhost refuses every change the hook was not granted with `--may-adjust` (`env=NAME-GLOB`,
//! `mounts=DESTINATION-GLOB[:from=HOST-SOURCE-GLOB[:rw]]`, `devices=PATH-GLOB`, `annotations=KEY-GLOB`, `rlimits`, `hooks`,
//! `resources`, `args`, `all`). Stdout carries the config: log with `eprintln!`.

use std::process::ExitCode;

use hookhost_guest::{Error, Precreate, precreate};

fn main() -> ExitCode {
    precreate(shape)
}

/// The hook's logic: edit the config through `config`'s methods, which change only what they
/// name and keep everything else as it came; `Err(reason)` refuses the container, and the
/// reason is what the user sees.
fn shape(config: &mut Precreate) -> Result<(), Error> {
    if config.spec().process().is_none() {
        return Err("{NAME}: the container has no process to run".into());
    }
    config.set_env("{VARIABLE}", "{NAME}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &[u8] = br#"{"ociVersion":"1.2.0","x-engine":{"kept":true},
        "process":{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0},"env":["PATH=/bin"]}}"#;

    #[test]
    fn sets_hello_from_and_keeps_the_rest() {
        let mut config = Precreate::parse(CONFIG).unwrap();
        shape(&mut config).unwrap();
        assert_eq!(config.container_env("{VARIABLE}"), Some("{NAME}"));
        assert_eq!(config.container_env("PATH"), Some("/bin"));
        assert_eq!(config.document()["x-engine"]["kept"], true);
    }

    /// The edit is within the grant the header registers the hook with, checked by hookhost
    /// itself (the `hookhost` on PATH, or $HOOKHOST_BIN): an edit outside it fails here,
    /// before the module is built.
    #[test]
    fn the_edit_is_within_its_grant() {
        let mut config = Precreate::parse(CONFIG).unwrap();
        shape(&mut config).unwrap();
        let checked = hookhost_guest::testing::check_edit(CONFIG, &config.to_json(), "{GRANT}");
        if let Err(refused) = checked {
            panic!("{refused}");
        }
    }

    #[test]
    fn refuses_a_container_without_a_process() {
        let mut config = Precreate::parse(br#"{"ociVersion":"1.2.0"}"#).unwrap();
        let reason = shape(&mut config).unwrap_err().to_string();
        assert!(reason.contains("no process"), "{reason}");
    }
}
"##;
