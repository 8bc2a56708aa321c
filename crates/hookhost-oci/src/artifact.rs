//! The CNCF Wasm OCI artifact layout (tag-group-runtime's "Wasm OCI Artifact"): an OCI image
//! manifest whose config has media type `application/vnd.wasm.config.v0+json` and whose one
//! layer, `application/wasm`, is the module. `oras push … module.wasm:application/wasm`
//! writes it, and so does `hookhost push`.

use std::collections::BTreeMap;

use hookhost_hooks::published::{self, Published};
use serde::{Deserialize, Serialize};

/// The media type of an OCI image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The media type of an OCI image index (cosign's fallback tag for referrers).
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The config media type of a Wasm artifact.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The media type of the module layer.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The annotation `oras pull` names the file after.
pub const TITLE_ANNOTATION: &str = "org.opencontainers.image.title";
/// The largest module pulled: far above any hook (the examples are under 200 KiB), far
/// below what would fill a node's disk or memory.
pub const MAX_MODULE_BYTES: u64 = 64 << 20;

/// A content descriptor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Descriptor {
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest: format!("sha256:{}", hookhost_exec::fs::sha256_hex(bytes)),
            size: bytes.len() as u64,
            urls: None,
            artifact_type: None,
            annotations: BTreeMap::new(),
        }
    }
}

/// An OCI image manifest (the fields hookhost reads or writes).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An OCI image index (the fields hookhost reads).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// The module layer of a Wasm artifact manifest and the hook definition it carries, or what
/// makes it something else.
pub fn module_layer(manifest: &[u8]) -> Result<(Descriptor, Option<Published>), String> {
    let manifest: Manifest = serde_json::from_slice(manifest)
        .map_err(|e| format!("its manifest is not an OCI image manifest ({e})"))?;
    let published = match manifest.annotations.get(published::ANNOTATION) {
        Some(text) => Some(serde_json::from_str(text).map_err(|e| {
            format!(
                "its {} annotation is not a hook definition ({e})",
                published::ANNOTATION
            )
        })?),
        None => None,
    };
    if let Some(other) = manifest
        .media_type
        .as_deref()
        .filter(|t| *t != MANIFEST_MEDIA_TYPE)
    {
        return Err(format!("its manifest has media type {other}"));
    }
    if manifest.config.media_type != WASM_CONFIG_MEDIA_TYPE {
        return Err(format!(
            "its config has media type {}, not {WASM_CONFIG_MEDIA_TYPE}",
            manifest.config.media_type
        ));
    }
    let [layer] = <[Descriptor; 1]>::try_from(manifest.layers)
        .map_err(|layers| format!("it has {} layers, not one module layer", layers.len()))?;
    if layer.media_type != WASM_LAYER_MEDIA_TYPE {
        return Err(format!(
            "its layer has media type {}, not {WASM_LAYER_MEDIA_TYPE}",
            layer.media_type
        ));
    }
    if layer.urls.is_some() {
        return Err(
            "its layer names external URLs; hookhost fetches from the registry only".into(),
        );
    }
    Ok((layer, published))
}

/// The config blob and manifest of a module, as `hookhost push` writes them, with the hook
/// definition it publishes, if any.
pub fn for_module(
    module: &[u8],
    title: &str,
    definition: Option<&Published>,
) -> (Vec<u8>, Manifest) {
    let mut layer = Descriptor::of(WASM_LAYER_MEDIA_TYPE, module);
    layer
        .annotations
        .insert(TITLE_ANNOTATION.into(), title.to_string());
    let config = serde_json::json!({
        "architecture": "wasm",
        "os": "wasip1",
        "layerDigests": [layer.digest],
    });
    let config = serde_json::to_vec(&config).expect("a JSON value serialises");
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MANIFEST_MEDIA_TYPE.into()),
        artifact_type: None,
        config: Descriptor::of(WASM_CONFIG_MEDIA_TYPE, &config),
        layers: vec![layer],
        subject: None,
        annotations: definition
            .map(|d| {
                let json = serde_json::to_string(d).expect("a definition serialises");
                BTreeMap::from([(published::ANNOTATION.to_string(), json)])
            })
            .unwrap_or_default(),
    };
    (config, manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_push_writes_is_what_pull_accepts() {
        let (_, manifest) = for_module(b"\0asm\x01\0\0\0", "noop.wasm", None);
        let text = serde_json::to_vec(&manifest).unwrap();
        let (layer, published) = module_layer(&text).unwrap();
        assert_eq!(layer.size, 8);
        assert_eq!(layer.annotations[TITLE_ANNOTATION], "noop.wasm");
        assert_eq!(published, None);
        let definition = Published {
            args: vec!["noop".into()],
            ..Published::default()
        };
        let (_, manifest) = for_module(b"\0asm\x01\0\0\0", "noop.wasm", Some(&definition));
        let text = serde_json::to_vec(&manifest).unwrap();
        assert_eq!(module_layer(&text).unwrap().1, Some(definition));
        let mut bad = manifest;
        bad.annotations
            .insert(published::ANNOTATION.into(), "{\"Grants\":1}".into());
        let err = module_layer(&serde_json::to_vec(&bad).unwrap()).unwrap_err();
        assert!(err.contains("annotation is not a hook definition"), "{err}");
    }

    #[test]
    fn other_layouts_are_named() {
        let image = r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:00","size":1},"layers":[]}"#;
        let err = module_layer(image.as_bytes()).unwrap_err();
        assert!(
            err.contains("application/vnd.oci.image.config.v1+json"),
            "{err}"
        );
        let two = r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.wasm.config.v0+json","digest":"sha256:00","size":1},"layers":[{"mediaType":"application/wasm","digest":"sha256:01","size":1},{"mediaType":"application/wasm","digest":"sha256:02","size":1}]}"#;
        assert!(
            module_layer(two.as_bytes())
                .unwrap_err()
                .contains("2 layers")
        );
        assert!(
            module_layer(b"[]")
                .unwrap_err()
                .contains("not an OCI image manifest")
        );
        let external = r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.wasm.config.v0+json","digest":"sha256:00","size":1},"layers":[{"mediaType":"application/wasm","digest":"sha256:01","size":1,"urls":["http://elsewhere/x.wasm"]}]}"#;
        assert!(
            module_layer(external.as_bytes())
                .unwrap_err()
                .contains("external URLs")
        );
    }
}
