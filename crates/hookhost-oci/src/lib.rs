//! WebAssembly hooks from OCI registries: `oci://HOST/REPO:TAG` references pulled in the CNCF
//! Wasm OCI artifact layout, verified against cosign public keys (offline, both of cosign's
//! signature formats), registered exactly like a local module; and `push`, which writes the
//! same layout. Hook sets ([`set`]): an apply file and its modules as one signed artifact,
//! applied by nodes as one generation ([`fleet`]).
//!
//! This crate holds the network and crypto dependencies, so that the container-start path
//! (hookhost-core, hookhost-exec) carries none of them. hookhost-core only records the plain
//! [`Source`](hookhost_hooks::hook::Source) data.
#![warn(missing_docs)]

mod artifact;
mod auth;
mod client;
mod error;
pub mod fleet;
mod pull;
mod push;
mod reference;
pub mod set;
mod verify;

pub use error::OciError;
pub use pull::{Pulled, pull, pull_into_store};
pub use push::{Pushed, push};
pub use reference::{SCHEME, is_reference};
pub use verify::{Policy, Signature};

use hookhost_hooks::config::Config;
use hookhost_hooks::define::{self, Definition, Fetched};
use hookhost_hooks::hook::Hook;
use hookhost_hooks::registry::Registry;

/// Where long work reports how it goes (the CLI draws it on a terminal).
pub trait Progress: Sync {
    /// Bytes of the module received so far, and the expected total (0: unknown).
    fn downloaded(&self, _done: u64, _total: u64) {}
    /// The module arrived and is being validated and precompiled.
    fn precompiling(&self) {}
}

/// No progress reports.
pub struct Quiet;

impl Progress for Quiet {}

/// What a pull needs besides the reference: the config file's registry settings, the
/// signature policy, and where to report download progress.
pub struct Options<'a> {
    /// `insecureRegistries` and the signature policy's defaults.
    pub config: &'a Config,
    /// The keys to verify with (`--verify-key`), else the config file's.
    pub policy: Policy,
    /// Told as the module's bytes arrive and when precompilation starts.
    pub progress: &'a dyn Progress,
    /// Whether the grants the artifact's definition asks for are accepted (`create
    /// --accept-grants`).
    pub accept_grants: bool,
}

/// "Register NAME from this reference with these flags": `def.path` is the `oci://`
/// reference. Pulls and verifies the module (nothing is written when that fails); what the
/// flags do not give is taken from the definition the artifact carries, if any (grants only
/// when accepted, see [`Published::fill`](hookhost_hooks::published::Published::fill)); then builds
/// the hook like a local module (validated, precompiled, stored by digest) with its
/// [`Source`](hookhost_hooks::hook::Source) recorded. The caller registers the returned hook, as with [`define::build`].
/// This is what `hookhost create` and `hookhost apply` call for an `oci://` path.
pub fn build(def: Definition, registry: &Registry, options: &Options) -> Result<Hook, OciError> {
    let reference = def.path.to_string_lossy().into_owned();
    let Pulled { bytes, source } = pull(&reference, options)?;
    let def = match &source.definition {
        Some(published) => published.fill(def, options.accept_grants)?,
        None => def,
    };
    options.progress.precompiling();
    Ok(define::build_fetched(
        def,
        Fetched { bytes, source },
        registry,
    )?)
}
