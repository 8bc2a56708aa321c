//! Pulling a module: manifest, signature, then the one layer, each bounded and checked.

use hookhost_hooks::hook::Source;
use hookhost_hooks::registry::Registry;

use crate::artifact::{self, MANIFEST_MEDIA_TYPE, MAX_MODULE_BYTES};
use crate::client::{Session, block_on};
use crate::{OciError, Options, reference};

/// A module pulled and verified, and where it came from.
pub struct Pulled {
    /// The module.
    pub bytes: Vec<u8>,
    /// The reference, resolved digests and verified signer.
    pub source: Source,
}

/// Pulls the module `text` names, verifying its signature when the policy asks for one.
/// Writes nothing.
pub fn pull(text: &str, options: &Options) -> Result<Pulled, OciError> {
    let reference = reference::parse(text)?;
    let keys = options.policy.keys(options.config)?;
    let session = Session::new(&reference, &options.config.insecure_registries);
    block_on(async {
        let (manifest, digest) = session.manifest(&reference, &[MANIFEST_MEDIA_TYPE]).await?;
        let (layer, definition) =
            artifact::module_layer(&manifest).map_err(|reason| OciError::NotWasm {
                reference: text.to_string(),
                reason,
            })?;
        if layer.size > MAX_MODULE_BYTES {
            return Err(too_large(text, layer.size));
        }
        let signer = match &keys {
            Some(keys) => {
                Some(crate::verify::verify(&session, &reference, text, &digest, keys).await?)
            }
            None => None,
        };
        let bytes = session
            .blob(
                &reference,
                &layer.digest,
                MAX_MODULE_BYTES,
                &|done, total| options.progress.downloaded(done, total),
            )
            .await?;
        Ok(Pulled {
            bytes,
            source: Source {
                reference: text.to_string(),
                manifest_digest: digest,
                module_digest: layer.digest,
                signer,
                definition,
            },
        })
    })
}

fn too_large(reference: &str, size: u64) -> OciError {
    OciError::TooLarge {
        what: "the module layer".into(),
        reference: reference.to_string(),
        size,
        limit: MAX_MODULE_BYTES,
    }
}

/// `hookhost pull`: pulls (and verifies), validates and precompiles the module, and stores
/// it in the registry's module store by digest, without registering a hook. Returns what was
/// pulled, without its bytes.
pub fn pull_into_store(
    text: &str,
    registry: &Registry,
    options: &Options,
) -> Result<Source, OciError> {
    let Pulled { bytes, source } = pull(text, options)?;
    options.progress.precompiling();
    hookhost_hooks::define::store_wasm(text.as_ref(), &bytes, registry)?;
    Ok(source)
}
