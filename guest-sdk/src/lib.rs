//! Write hookhost container hooks in Rust, compiled to `wasm32-wasip1`.
//!
//! A hook is `fn main` plus one closure:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     hookhost_guest::run(|hook| {
//!         eprintln!("container {} is {}", hook.state.id, hook.state.status);
//!         Ok(())
//!     })
//! }
//! ```
//!
//! hookhost runs it with the OCI state on stdin, the hook's args as argv, only the granted
//! environment plus `HOOKHOST_STAGE`, and only the granted directories: the bundle at `/bundle`
//! (`--allow-bundle`), the root filesystem at `/rootfs` (`--allow-rootfs`), and `--allow-dir`s.
//! Precreate hooks ([`precreate`], [`Precreate`]) get the proposed `config.json` on stdin
//! instead and write the whole, possibly edited, document on stdout.
//!
//! Log with [`info!`] (`hookhost_guest::info!("msg", key = value)`; also `debug!`, `warn!`,
//! `error!`, and functions in [`log`]): bounded `logfmt` lines on
//! stderr, whose end hookhost keeps in every run's audit event (`hookhost events --hook NAME`).
//!
//! The crate also builds natively, so hook logic can be unit-tested with `cargo test` by building
//! a [`Hook`] by hand and pointing it at temporary directories; `testing::check_edit` checks a
//! precreate hook's edit against its `--may-adjust` grants with hookhost's own checker.

mod hook;
mod invocation;
pub mod log;
mod precreate;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod time;

use std::process::ExitCode;

pub use hook::{GuestError, Hook};
pub use hookhost_types::{
    BUNDLE_GUEST, HookKind, ROOTFS_GUEST, STAGE_ENV, Stage, State, StateError, UnknownStage,
};
pub use oci_spec;
pub use precreate::{Precreate, PrecreateError};
pub use serde_json;

/// Compiles the README's example hook as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// Any error a hook returns; its message goes to stderr and the hook exits 1.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Runs a hook: reads the invocation, calls `body`, reports an error on stderr with exit code 1.
pub fn run<F>(body: F) -> ExitCode
where
    F: FnOnce(&Hook) -> Result<(), Error>,
{
    let outcome = Hook::from_process()
        .map_err(Error::from)
        .and_then(|hook| body(&hook));
    finish(outcome)
}

/// Runs a precreate hook: reads the proposed config.json from stdin, lets `body` read and edit
/// it, and writes the whole document to stdout (exit 0). An `Err` from `body` refuses the
/// container: its message goes to stderr, nothing to stdout, and the hook exits 1.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     hookhost_guest::precreate(|config| {
///         if config.container_env("TZ").is_none() {
///             config.set_env("TZ", "UTC")?;
///         }
///         Ok(())
///     })
/// }
/// ```
pub fn precreate<F>(body: F) -> ExitCode
where
    F: FnOnce(&mut Precreate) -> Result<(), Error>,
{
    let outcome = precreate::from_process()
        .map_err(Error::from)
        .and_then(|config| precreate::apply(config, body, std::io::stdout().lock()));
    finish(outcome)
}

/// Turns a hook's result into its exit status, printing the error (the reason reaches the user
/// through hookhost, which reports a failing hook's stderr).
fn finish(outcome: Result<(), Error>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}
