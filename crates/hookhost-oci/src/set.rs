//! Hook sets: an apply file and every WebAssembly module it references, as one OCI artifact
//! (`hookhost push --set FILE REF`, `hookhost apply -f REF`).
//!
//! The manifest is an OCI 1.1 artifact: `artifactType` [`SET_ARTIFACT_TYPE`], the empty config,
//! first layer the apply file ([`SET_FILE_MEDIA_TYPE`], titled `hooks.json`), then one
//! `application/wasm` layer per module, titled `NAME.wasm` after its hook. In the file as
//! pushed, a WASM hook's `Path` is that title and its `Digest` the module's sha256, so every
//! module is named by digest twice: by the layer (checked as it downloads) and by the entry
//! (checked when the hook is built). Native hooks keep their absolute paths: the programs must
//! be on every node (and are digest-pinned there when the entry has a `Digest`).
//! The manifest digest names the set: cosign signs it as it signs a single module, and the
//! node's generation is named after it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::artifact::{
    Descriptor, MANIFEST_MEDIA_TYPE, MAX_MODULE_BYTES, Manifest, TITLE_ANNOTATION,
    WASM_LAYER_MEDIA_TYPE,
};
use crate::client::{MAX_DOCUMENT_BYTES, Session, block_on};
use crate::{OciError, Options, reference};
use hookhost_hooks::config::Config;
use hookhost_hooks::hook::Signer;

/// The artifact type of a hook set.
pub const SET_ARTIFACT_TYPE: &str = "application/vnd.hookhost.set.v1+json";
/// The media type of its apply-file layer.
pub const SET_FILE_MEDIA_TYPE: &str = "application/vnd.hookhost.set.hooks.v1+json";
/// The title of the apply-file layer.
pub const SET_FILE_TITLE: &str = "hooks.json";
/// OCI's empty config (an artifact has no config of its own).
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
const EMPTY_CONFIG: &[u8] = b"{}";
/// The most bytes of modules one set may carry (each module also has its own bound).
pub const MAX_SET_BYTES: u64 = 512 << 20;

/// A set pulled and verified.
pub struct PulledSet {
    /// The apply file.
    pub file: Vec<u8>,
    /// The modules by layer title: (digest `sha256:…`, bytes).
    pub modules: BTreeMap<String, (String, Vec<u8>)>,
    /// The set's manifest digest.
    pub digest: String,
    /// The key that signed it, when a signature was required.
    pub signer: Option<Signer>,
}

/// What `push --set` uploads: the rewritten file, its modules by title, and the manifest.
struct Packed {
    file: Vec<u8>,
    modules: Vec<(String, Vec<u8>)>,
    manifest: Manifest,
}

/// Publishes the apply file `file` and the modules it references as one set at `text`;
/// returns the manifest digest.
pub fn push_set(file: &Path, text: &str, config: &Config) -> Result<String, OciError> {
    reference::parse(text)?;
    let packed = pack(file)?;
    let manifest = &packed.manifest;
    let blobs = [
        (EMPTY_CONFIG.to_vec(), manifest.config.digest.clone()),
        (packed.file, manifest.layers[0].digest.clone()),
    ]
    .into_iter()
    .chain(
        (packed.modules.into_iter().zip(&manifest.layers[1..]))
            .map(|((_, bytes), layer)| (bytes, layer.digest.clone())),
    )
    .collect();
    crate::push::push_artifact(text, blobs, manifest, config)
}

/// Reads the apply file and its modules, rewriting each WASM entry to name its layer.
fn pack(file: &Path) -> Result<Packed, OciError> {
    let bad = |reason: String| OciError::BadSet {
        file: file.to_path_buf(),
        reason,
    };
    let text = std::fs::read(file).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let mut entries: Vec<Value> = serde_json::from_slice(&text)
        .map_err(|e| bad(format!("not a JSON array of hooks (what apply reads): {e}")))?;
    let base = file.parent().unwrap_or(Path::new("."));
    let mut modules = Vec::new();
    for (index, entry) in entries.iter_mut().enumerate() {
        let named = |reason: String| {
            let name = entry.get("Name").and_then(Value::as_str).unwrap_or("?");
            bad(format!("entry {index} ({name}): {reason}"))
        };
        let (name, path) = match (
            entry.get("Name").and_then(Value::as_str),
            entry.get("Path").and_then(Value::as_str),
        ) {
            (Some(name), Some(path)) => (name.to_string(), path.to_string()),
            _ => return Err(named("needs a Name and a Path".into())),
        };
        if reference::is_reference(&path) {
            return Err(named(format!(
                "Path {path} is a reference: a set carries its modules, give the module's file"
            )));
        }
        let Some(bytes) = module_at(&base.join(&path)) else {
            if !Path::new(&path).is_absolute() {
                return Err(named(format!(
                    "Path {path} is neither a WebAssembly module here nor an absolute path \
                     of a native program on the nodes"
                )));
            }
            continue;
        };
        let digest = hookhost_exec::fs::sha256_hex(&bytes);
        if let Some(given) = entry.get("Digest").and_then(Value::as_str)
            && given != digest
        {
            return Err(named(format!(
                "Digest is {given} but {path} has sha256 {digest}"
            )));
        }
        let title = format!("{name}.wasm");
        let map = entry
            .as_object_mut()
            .expect("an entry with a Name is an object");
        map.insert("Path".into(), title.clone().into());
        map.insert("Kind".into(), "wasm".into());
        map.insert("Digest".into(), digest.into());
        map.remove("Source");
        modules.push((title, bytes));
    }
    let mut file_bytes = serde_json::to_vec_pretty(&entries).expect("JSON values serialise");
    file_bytes.push(b'\n');
    let manifest = manifest(&file_bytes, &modules);
    Ok(Packed {
        file: file_bytes,
        modules,
        manifest,
    })
}

/// The bytes at `path` when it is a WebAssembly module.
fn module_at(path: &Path) -> Option<Vec<u8>> {
    let bytes = std::fs::read(path).ok()?;
    hookhost_exec::wasm::is_wasm(&bytes).then_some(bytes)
}

fn titled(media_type: &str, bytes: &[u8], title: &str) -> Descriptor {
    let mut layer = Descriptor::of(media_type, bytes);
    layer
        .annotations
        .insert(TITLE_ANNOTATION.into(), title.to_string());
    layer
}

fn manifest(file: &[u8], modules: &[(String, Vec<u8>)]) -> Manifest {
    let mut layers = vec![titled(SET_FILE_MEDIA_TYPE, file, SET_FILE_TITLE)];
    layers.extend(
        modules
            .iter()
            .map(|(title, bytes)| titled(WASM_LAYER_MEDIA_TYPE, bytes, title)),
    );
    Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.into()),
        artifact_type: Some(SET_ARTIFACT_TYPE.into()),
        config: Descriptor::of(EMPTY_MEDIA_TYPE, EMPTY_CONFIG),
        layers,
        subject: None,
        annotations: Default::default(),
    }
}

/// The file layer and the module layers (by title) of a set manifest, or what makes it
/// something else.
fn set_layers(manifest: &[u8]) -> Result<(Descriptor, Vec<(String, Descriptor)>), String> {
    let manifest: Manifest = serde_json::from_slice(manifest)
        .map_err(|e| format!("its manifest is not an OCI image manifest ({e})"))?;
    if manifest.artifact_type.as_deref() != Some(SET_ARTIFACT_TYPE) {
        return Err(format!(
            "its artifact type is {}, not {SET_ARTIFACT_TYPE}",
            manifest.artifact_type.as_deref().unwrap_or("(none)")
        ));
    }
    let mut layers = manifest.layers.into_iter();
    let file = layers
        .next()
        .filter(|l| l.media_type == SET_FILE_MEDIA_TYPE)
        .ok_or_else(|| format!("its first layer is not the apply file ({SET_FILE_MEDIA_TYPE})"))?;
    let mut modules = Vec::new();
    for layer in layers {
        if layer.media_type != WASM_LAYER_MEDIA_TYPE {
            return Err(format!(
                "a layer has media type {}, not {WASM_LAYER_MEDIA_TYPE}",
                layer.media_type
            ));
        }
        let title = layer
            .annotations
            .get(TITLE_ANNOTATION)
            .cloned()
            .ok_or_else(|| format!("module layer {} has no title", layer.digest))?;
        if modules.iter().any(|(t, _)| *t == title) {
            return Err(format!("two module layers are titled {title}"));
        }
        modules.push((title, layer));
    }
    if std::iter::once(&file)
        .chain(modules.iter().map(|(_, l)| l))
        .any(|l| l.urls.is_some())
    {
        return Err("a layer names external URLs; hookhost fetches from the registry only".into());
    }
    Ok((file, modules))
}

/// Whether `text` is an `oci://` reference hookhost can pull from.
pub fn check_reference(text: &str) -> Result<(), OciError> {
    reference::parse(text).map(drop)
}

/// The manifest digest `text` resolves to now (a tag moves; a digest does not).
pub fn resolve(text: &str, options: &Options) -> Result<String, OciError> {
    let reference = reference::parse(text)?;
    let session = Session::new(&reference, &options.config.insecure_registries);
    block_on(async {
        let (_, digest) = session.manifest(&reference, &[MANIFEST_MEDIA_TYPE]).await?;
        Ok(digest)
    })
}

/// Pulls the set `text` names: the manifest, its signature when the policy asks for one
/// (before any layer is fetched), then every layer, each checked against its digest.
/// Writes nothing.
pub fn pull_set(text: &str, options: &Options) -> Result<PulledSet, OciError> {
    let reference = reference::parse(text)?;
    let keys = options.policy.keys(options.config)?;
    let session = Session::new(&reference, &options.config.insecure_registries);
    block_on(async {
        let (manifest, digest) = session.manifest(&reference, &[MANIFEST_MEDIA_TYPE]).await?;
        let (file_layer, module_layers) =
            set_layers(&manifest).map_err(|reason| OciError::NotSet {
                reference: text.to_string(),
                reason,
            })?;
        let total: u64 = module_layers.iter().map(|(_, l)| l.size).sum();
        if let Some((_, layer)) = module_layers
            .iter()
            .find(|(_, l)| l.size > MAX_MODULE_BYTES)
        {
            return Err(too_large(text, &layer.digest, layer.size, MAX_MODULE_BYTES));
        }
        if total > MAX_SET_BYTES {
            return Err(too_large(text, "modules", total, MAX_SET_BYTES));
        }
        let signer = match &keys {
            Some(keys) => {
                Some(crate::verify::verify(&session, &reference, text, &digest, keys).await?)
            }
            None => None,
        };
        let none = |_, _| {};
        let file = session
            .blob(&reference, &file_layer.digest, MAX_DOCUMENT_BYTES, &none)
            .await?;
        let mut modules = BTreeMap::new();
        for (title, layer) in module_layers {
            let bytes = session
                .blob(&reference, &layer.digest, MAX_MODULE_BYTES, &|done, all| {
                    options.progress.downloaded(done, all)
                })
                .await?;
            modules.insert(title, (layer.digest, bytes));
        }
        Ok(PulledSet {
            file,
            modules,
            digest,
            signer,
        })
    })
}

fn too_large(reference: &str, what: &str, size: u64, limit: u64) -> OciError {
    OciError::TooLarge {
        what: format!("the set's {what}"),
        reference: reference.to_string(),
        size,
        limit,
    }
}

/// How the file of a set is named in apply's errors: `REF@DIGEST#hooks.json`.
pub fn file_name(text: &str, digest: &str) -> PathBuf {
    PathBuf::from(format!("{text}@{digest}#{SET_FILE_TITLE}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_pack_writes_set_layers_reads_and_modules_are_named_by_digest() {
        let dir = tempfile::tempdir().unwrap();
        let module = b"\0asm\x01\0\0\0".to_vec();
        std::fs::write(dir.path().join("m.wasm"), &module).unwrap();
        let file = dir.path().join("set.json");
        std::fs::write(
            &file,
            r#"[{"Name":"w","Path":"m.wasm"},{"Name":"n","Path":"/usr/bin/on-the-node"}]"#,
        )
        .unwrap();
        let packed = pack(&file).unwrap();
        let entries: Vec<Value> = serde_json::from_slice(&packed.file).unwrap();
        assert_eq!(entries[0]["Path"], "w.wasm");
        assert_eq!(entries[0]["Digest"], hookhost_exec::fs::sha256_hex(&module));
        assert_eq!(entries[1]["Path"], "/usr/bin/on-the-node");
        let body = serde_json::to_vec(&packed.manifest).unwrap();
        let (layer, modules) = set_layers(&body).unwrap();
        assert_eq!(layer.digest, Descriptor::of("", &packed.file).digest);
        assert_eq!(modules.len(), 1);
        assert_eq!(modules[0].0, "w.wasm");
        assert_eq!(modules[0].1.digest, Descriptor::of("", &module).digest);
    }

    #[test]
    fn bad_sets_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("set.json");
        for (body, want) in [
            (r#"{"Name":"x"}"#, "not a JSON array"),
            (r#"[{"Name":"x"}]"#, "needs a Name and a Path"),
            (
                r#"[{"Name":"x","Path":"oci://r.io/a:b"}]"#,
                "is a reference",
            ),
            (
                r#"[{"Name":"x","Path":"rel/prog"}]"#,
                "neither a WebAssembly",
            ),
        ] {
            std::fs::write(&file, body).unwrap();
            let err = pack(&file).err().unwrap().to_string();
            assert!(err.contains(want), "{body}: {err}");
        }
        let wasm_manifest = serde_json::to_vec(&crate::artifact::for_module(b"\0asm", "a", None).1);
        let err = set_layers(&wasm_manifest.unwrap()).unwrap_err();
        assert!(err.contains("artifact type is (none)"), "{err}");
    }
}
