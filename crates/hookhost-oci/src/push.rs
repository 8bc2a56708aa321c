//! `hookhost push NAME|FILE REF`: a registered hook's module, with its definition, or a module
//! file, written in the Wasm artifact layout.

use hookhost_hooks::hook::HookKind;
use hookhost_hooks::published::Published;
use hookhost_hooks::registry::Registry;
use http::HeaderValue;

use crate::artifact::{self, MANIFEST_MEDIA_TYPE, Manifest};
use crate::client::{Session, block_on};
use crate::{OciError, reference};
use hookhost_hooks::config::Config;

/// What to push.
pub enum Pushed<'a> {
    /// A registered WASM hook: its module, and its definition (all but its environment's
    /// values) in the manifest's annotation, for `create NAME oci://…` to take.
    Hook(&'a str),
    /// A module file, with no definition.
    File(&'a std::path::Path),
}

/// Pushes `what` to `text` (an `oci://` reference) and returns the manifest digest. The
/// layer is titled `NAME.wasm` (a file: its own name), so `oras pull` writes the module
/// under that name.
pub fn push(
    what: Pushed<'_>,
    text: &str,
    registry: &Registry,
    config: &Config,
) -> Result<String, OciError> {
    reference::parse(text)?;
    let (module, title, definition) = match what {
        Pushed::Hook(name) => {
            let hook = registry.get(name)?;
            let digest = match (hook.spec.kind, &hook.spec.digest) {
                (HookKind::Wasm, Some(digest)) => digest.clone(),
                _ => return Err(OciError::NotPushable(name.to_string())),
            };
            let module = read_module(registry, &digest)?;
            (module, format!("{name}.wasm"), Some(Published::of(&hook)))
        }
        Pushed::File(path) => (read_file(path)?, file_title(path), None),
    };
    let (config_blob, manifest) = artifact::for_module(&module, &title, definition.as_ref());
    let blobs = vec![
        (config_blob, manifest.config.digest.clone()),
        (module, manifest.layers[0].digest.clone()),
    ];
    push_artifact(text, blobs, &manifest, config)
}

/// Pushes `blobs` (bytes, digest; each digest once) then `manifest` to `text`; returns the
/// manifest digest.
pub(crate) fn push_artifact(
    text: &str,
    blobs: Vec<(Vec<u8>, String)>,
    manifest: &Manifest,
    config: &Config,
) -> Result<String, OciError> {
    let reference = reference::parse(text)?;
    let body = serde_json::to_vec(manifest).expect("a manifest serialises");
    let session = Session::new(&reference, &config.insecure_registries);
    block_on(async {
        session
            .client
            .auth(
                &reference,
                &session.auth,
                oci_client::RegistryOperation::Push,
            )
            .await
            .map_err(session.failed(format!("log in to push to {reference}")))?;
        let mut pushed = std::collections::BTreeSet::new();
        for (bytes, digest) in blobs {
            if !pushed.insert(digest.clone()) {
                continue;
            }
            session
                .client
                .push_blob(&reference, bytes, &digest)
                .await
                .map_err(session.failed(format!("push {digest} to {reference}")))?;
        }
        session
            .client
            .push_manifest_raw(
                &reference,
                body.clone(),
                HeaderValue::from_static(MANIFEST_MEDIA_TYPE),
            )
            .await
            .map_err(session.failed(format!("push the manifest of {reference}")))?;
        Ok(format!("sha256:{}", hookhost_exec::fs::sha256_hex(&body)))
    })
}

/// A module file's bytes; refused unless it is a WebAssembly module.
fn read_file(path: &std::path::Path) -> Result<Vec<u8>, OciError> {
    let bad = |reason: String| OciError::NotAModule {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    match hookhost_exec::wasm::is_wasm(&bytes) {
        true => Ok(bytes),
        false => Err(bad(
            "not a WebAssembly module (only WASM hooks travel through registries)".into(),
        )),
    }
}

/// The layer title of a pushed file: its name.
fn file_title(path: &std::path::Path) -> String {
    path.file_name()
        .map_or("module.wasm".into(), |n| n.to_string_lossy().into_owned())
}

/// The stored module, checked against its digest.
fn read_module(registry: &Registry, digest: &str) -> Result<Vec<u8>, OciError> {
    let path = registry.module_path(digest);
    let bytes = std::fs::read(&path).map_err(|source| OciError::ReadModule {
        path: path.clone(),
        source,
    })?;
    if hookhost_exec::fs::sha256_hex(&bytes) != digest {
        return Err(OciError::ReadModule {
            path,
            source: std::io::Error::other("its content no longer matches its digest"),
        });
    }
    Ok(bytes)
}
