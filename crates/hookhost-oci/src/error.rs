//! The errors of pulling, pushing and verifying.

use std::path::PathBuf;

use thiserror::Error;

/// Why a pull, a push or a verification failed. Every variant names what failed and, where
/// there is one, the fix.
#[derive(Debug, Error)]
pub enum OciError {
    /// Not an `oci://` reference.
    #[error(
        "unsupported reference {0:?}: hooks come from a local absolute path or an \
         oci://HOST/REPO:TAG (or oci://HOST/REPO@sha256:…) reference"
    )]
    Scheme(String),
    /// An `oci://` reference that does not parse, or names no registry host.
    #[error("invalid OCI reference {reference:?}: {reason}")]
    Reference {
        /// As given.
        reference: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The registry could not be reached or answered with an error.
    #[error("registry {registry}: cannot {action}{hint}")]
    Registry {
        /// The registry host.
        registry: String,
        /// What was being done, e.g. "fetch the manifest of …".
        action: String,
        /// How to fix a connection failure, or nothing.
        hint: &'static str,
        /// The client's error.
        #[source]
        source: oci_client::errors::OciDistributionError,
    },
    /// A download broke off.
    #[error("registry {registry}: download of {digest} failed")]
    Download {
        /// The registry host.
        registry: String,
        /// The blob.
        digest: String,
        /// The transport's error.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is not the CNCF Wasm OCI artifact layout.
    #[error(
        "{reference} is not a WebAssembly artifact: {reason} (push the module with \
         `hookhost push` or `oras push REF --config cfg.json:application/vnd.wasm.config.v0+json \
         module.wasm:application/wasm`)"
    )]
    NotWasm {
        /// The reference.
        reference: String,
        /// What in the manifest does not fit.
        reason: String,
    },
    /// A manifest or blob larger than hookhost accepts.
    #[error("{what} of {reference} is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge {
        /// Which document.
        what: String,
        /// The reference.
        reference: String,
        /// Its size (as announced, or received so far).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The module's content does not match the digest the manifest names.
    #[error(
        "the module of {reference} was altered: its sha256 is {actual}, but the manifest names \
         {expected}"
    )]
    Tampered {
        /// The reference.
        reference: String,
        /// The layer digest in the manifest.
        expected: String,
        /// What arrived.
        actual: String,
    },
    /// The manifest is not a hook set.
    #[error(
        "{reference} is not a hookhost hook set: {reason} (publish one with `hookhost push \
         --set FILE {reference}`)"
    )]
    NotSet {
        /// The reference.
        reference: String,
        /// What in the manifest does not fit.
        reason: String,
    },
    /// An apply file that cannot be published as a set.
    #[error("cannot publish {} as a hook set: {reason}", file.display())]
    BadSet {
        /// The apply file.
        file: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Applying a pulled set failed.
    #[error(transparent)]
    Apply(#[from] hookhost_hooks::apply::ApplyError),
    /// A public key file that is not a cosign (ECDSA P-256) key.
    #[error("cannot use the verification key {}: {reason}", file.display())]
    Key {
        /// The key file.
        file: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The policy requires a signature but names no key.
    #[error(
        "the config file's requireSignatures is true but no key is given: pass --verify-key \
         FILE or list the keys in verifyKeys"
    )]
    NoKeys,
    /// No signature of the artifact verifies with the keys.
    #[error("{reference} ({digest}) is refused: {reason}")]
    Unverified {
        /// The reference.
        reference: String,
        /// The manifest digest that was to be signed.
        digest: String,
        /// What was found and why none verified.
        reason: String,
    },
    /// Only WASM hooks can be pushed.
    #[error("hook {0} is not a WebAssembly hook: only modules can be pushed to a registry")]
    NotPushable(String),
    /// The stored module of a hook cannot be read.
    #[error("cannot read the stored module {}", path.display())]
    ReadModule {
        /// The module file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The async runtime could not start.
    #[error("cannot start the network runtime")]
    Runtime(#[source] std::io::Error),
    /// Registering the pulled module failed.
    #[error(transparent)]
    Define(#[from] hookhost_hooks::define::DefineError),
    /// Reading the registry failed.
    #[error(transparent)]
    Store(#[from] hookhost_hooks::registry::RegistryError),
    /// The artifact's definition asks for grants nobody accepted.
    #[error(transparent)]
    Grants(#[from] hookhost_hooks::published::GrantsNotAccepted),
    /// A module file to push cannot be read, or is not a WebAssembly module.
    #[error("cannot push {}: {reason}", path.display())]
    NotAModule {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}
