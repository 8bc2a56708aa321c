//! cosign signatures checked with a public key, offline, in both formats cosign writes:
//!
//! - **Sigstore bundle** (cosign 3's default): an OCI 1.1 referrer of the signed manifest, an
//!   artifact whose layer is a bundle holding a DSSE envelope; its payload is an in-toto
//!   statement whose subject is the manifest digest. Found through the referrers API, or on
//!   registries without one under the fallback tag `sha256-<hex>` (an index of referrers).
//! - **simple signing** (legacy, `--new-bundle-format=false`): the tag `sha256-<hex>.sig`, a
//!   manifest whose layers are "cosign container image signature" payloads naming the
//!   manifest digest, each signed in its `dev.cosignproject.cosign/signature` annotation.
//!
//! A signature counts when it verifies with one of the keys AND names the pulled manifest's
//! digest. No transparency log is consulted: keyless (Fulcio certificate + Rekor entry)
//! verification would add a [`Signature`] variant checking the bundle's certificate chain
//! against a trusted root and its tlog inclusion proof (see the README).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use hookhost_hooks::config::Config;
use hookhost_hooks::hook::Signer;
use oci_client::Reference;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature as EcdsaSignature, VerifyingKey};
use p256::pkcs8::{DecodePublicKey as _, EncodePublicKey as _};
use serde::Deserialize;

use crate::OciError;
use crate::artifact::{INDEX_MEDIA_TYPE, Index, MANIFEST_MEDIA_TYPE, Manifest};
use crate::client::{MAX_DOCUMENT_BYTES, Session};

/// The artifact type (and layer media type) of a Sigstore bundle.
const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The payload type of the DSSE envelope cosign signs.
const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The layer media type of a simple-signing signature.
const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The most referrers (signatures, attestations, SBOMs…) read for one artifact.
const MAX_REFERRERS: usize = 32;
/// The annotation holding a simple-signing signature.
const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// The signature formats hookhost verifies; keyless verification would be another variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// cosign 3's default.
    SigstoreBundle,
    /// The legacy `.sig` tag.
    SimpleSigning,
}

impl Signature {
    /// As recorded in [`Signer::format`].
    pub fn as_str(self) -> &'static str {
        match self {
            Signature::SigstoreBundle => "sigstore-bundle",
            Signature::SimpleSigning => "simple-signing",
        }
    }
}

/// Which keys must have signed a pulled module.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// `--verify-key` files; when empty, the config file's `verifyKeys`.
    pub keys: Vec<PathBuf>,
}

/// A loaded public key.
pub struct Key {
    file: PathBuf,
    key: VerifyingKey,
    digest: String,
}

impl Policy {
    /// The keys to verify with, or `None` when no signature is required.
    pub fn keys(&self, config: &Config) -> Result<Option<Vec<Key>>, OciError> {
        let files = if self.keys.is_empty() {
            &config.verify_keys
        } else {
            &self.keys
        };
        if files.is_empty() {
            return match config.require_signatures {
                Some(true) => Err(OciError::NoKeys),
                _ => Ok(None),
            };
        }
        files
            .iter()
            .map(|f| load_key(f))
            .collect::<Result<_, _>>()
            .map(Some)
    }
}

fn load_key(file: &Path) -> Result<Key, OciError> {
    let bad = |reason: String| OciError::Key {
        file: file.to_path_buf(),
        reason,
    };
    // The key decides what runs as root: another user must not be able to swap it.
    hookhost_exec::fs::check_trusted_path(file).map_err(|e| bad(e.to_string()))?;
    let pem = std::fs::read_to_string(file).map_err(|e| bad(e.to_string()))?;
    let key = VerifyingKey::from_public_key_pem(&pem).map_err(|e| {
        bad(format!(
            "not an ECDSA P-256 public key in PEM ({e}); give the cosign.pub that \
                 `cosign generate-key-pair` wrote"
        ))
    })?;
    let der = key
        .to_public_key_der()
        .map_err(|e| bad(format!("cannot encode it ({e})")))?;
    Ok(Key {
        file: file.to_path_buf(),
        digest: format!("sha256:{}", hookhost_exec::fs::sha256_hex(der.as_bytes())),
        key,
    })
}

/// The cosign 3 command that signs the manifest `digest` of `reference` with the key file
/// `cosign.key`, offline: a plain `HOST/REPO@DIGEST` (cosign takes no `oci://`), no
/// transparency-log upload, no signing config fetched from the public TUF root, plain HTTP
/// allowed when hookhost used it.
pub fn sign_command(reference: &Reference, digest: &str, plain_http: bool) -> String {
    let http = match plain_http {
        true => " --allow-http-registry",
        false => "",
    };
    format!(
        "cosign sign --key cosign.key --tlog-upload=false --use-signing-config=false{http} \
         {}/{}@{digest}",
        reference.registry(),
        reference.repository()
    )
}

/// Finds a signature of `digest` by one of `keys`, in either format.
pub async fn verify(
    session: &Session,
    reference: &Reference,
    text: &str,
    digest: &str,
    keys: &[Key],
) -> Result<Signer, OciError> {
    let mut found = Vec::new();
    for format in [Signature::SigstoreBundle, Signature::SimpleSigning] {
        for (what, payload) in candidates(session, reference, digest, format).await? {
            match check(&payload, digest, keys) {
                Ok(key) => {
                    return Ok(Signer {
                        key: key.file.clone(),
                        key_digest: key.digest.clone(),
                        format: format.as_str().into(),
                    });
                }
                Err(reason) => found.push(format!("{what}: {reason}")),
            }
        }
    }
    let reason = if found.is_empty() {
        format!(
            "it is unsigned: no cosign signature was found (neither a Sigstore bundle referrer, \
             nor the tag {}.sig); sign it, offline, with the private key of the pair whose \
             public key is given here: `{}`",
            fallback_tag(digest),
            sign_command(reference, digest, session.plain_http())
        )
    } else {
        let keys: Vec<_> = keys.iter().map(|k| k.file.display().to_string()).collect();
        format!(
            "no signature verifies with {}: {}",
            keys.join(", "),
            found.join("; ")
        )
    };
    Err(OciError::Unverified {
        reference: text.to_string(),
        digest: digest.to_string(),
        reason,
    })
}

/// `sha256:abc…` → `sha256-abc…`, cosign's tag for what concerns that digest.
fn fallback_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

/// The signature documents of one format: (a name for messages, the signed document and its
/// signature as the format keeps them).
async fn candidates(
    session: &Session,
    reference: &Reference,
    digest: &str,
    format: Signature,
) -> Result<Vec<(String, Candidate)>, OciError> {
    match format {
        Signature::SigstoreBundle => bundles(session, reference, digest).await,
        Signature::SimpleSigning => simple_signatures(session, reference, digest).await,
    }
}

/// What one signature document holds.
pub enum Candidate {
    /// A Sigstore bundle's JSON.
    Bundle(Vec<u8>),
    /// A simple-signing payload and its base64 signature.
    Simple { payload: Vec<u8>, signature: String },
}

fn tagged(reference: &Reference, tag: String) -> Reference {
    Reference::with_tag(
        reference.registry().to_string(),
        reference.repository().to_string(),
        tag,
    )
}

fn by_digest(reference: &Reference, digest: &str) -> Reference {
    Reference::with_digest(
        reference.registry().to_string(),
        reference.repository().to_string(),
        digest.to_string(),
    )
}

/// A manifest that may not exist: `None` on "not found".
async fn optional_manifest(
    session: &Session,
    reference: &Reference,
    accepted: &[&str],
) -> Result<Option<bytes::Bytes>, OciError> {
    match session.manifest(reference, accepted).await {
        Ok((body, _)) => Ok(Some(body)),
        Err(OciError::Registry { source, .. }) if is_not_found(&source) => Ok(None),
        Err(other) => Err(other),
    }
}

fn is_not_found(error: &oci_client::errors::OciDistributionError) -> bool {
    use oci_client::errors::{OciDistributionError as E, OciErrorCode as C};
    match error {
        E::ImageManifestNotFoundError(_) => true,
        E::RegistryError { envelope, .. } => envelope
            .errors
            .iter()
            .any(|e| matches!(e.code, C::ManifestUnknown | C::NotFound | C::NameUnknown)),
        E::ServerError { code, .. } => *code == 404,
        _ => false,
    }
}

/// Sigstore bundles that refer to `digest`: from the referrers API when the registry has
/// one, else from the fallback tag's index.
async fn bundles(
    session: &Session,
    reference: &Reference,
    digest: &str,
) -> Result<Vec<(String, Candidate)>, OciError> {
    let subject = by_digest(reference, digest);
    let entries = match session
        .client
        .pull_referrers(&subject, Some(BUNDLE_MEDIA_TYPE))
        .await
    {
        Ok(index) if !index.manifests.is_empty() => {
            index.manifests.into_iter().map(|m| m.digest).collect()
        }
        _ => fallback_entries(session, reference, digest).await?,
    };
    let mut found = Vec::new();
    // Index entries' artifactType is not reliable (cosign's fallback index says
    // "application/vnd.oci.empty.v1+json"): read the referrer manifests themselves.
    for entry in entries.into_iter().take(MAX_REFERRERS) {
        let manifest = by_digest(reference, &entry);
        let Some(body) = optional_manifest(session, &manifest, &[MANIFEST_MEDIA_TYPE]).await?
        else {
            continue;
        };
        let Ok(manifest_doc) = serde_json::from_slice::<Manifest>(&body) else {
            continue;
        };
        for layer in manifest_doc
            .layers
            .iter()
            .filter(|l| l.media_type == BUNDLE_MEDIA_TYPE)
        {
            let bytes = session
                .blob(reference, &layer.digest, MAX_DOCUMENT_BYTES, &|_, _| {})
                .await?;
            found.push((format!("bundle {entry}"), Candidate::Bundle(bytes)));
        }
    }
    Ok(found)
}

async fn fallback_entries(
    session: &Session,
    reference: &Reference,
    digest: &str,
) -> Result<Vec<String>, OciError> {
    let tag = tagged(reference, fallback_tag(digest));
    let Some(body) = optional_manifest(session, &tag, &[INDEX_MEDIA_TYPE]).await? else {
        return Ok(Vec::new());
    };
    let index: Index = serde_json::from_slice(&body).unwrap_or(Index {
        manifests: Vec::new(),
    });
    Ok(index.manifests.into_iter().map(|m| m.digest).collect())
}

/// The payloads and signatures under the legacy `sha256-<hex>.sig` tag.
async fn simple_signatures(
    session: &Session,
    reference: &Reference,
    digest: &str,
) -> Result<Vec<(String, Candidate)>, OciError> {
    let tag = format!("{}.sig", fallback_tag(digest));
    let Some(body) = optional_manifest(
        session,
        &tagged(reference, tag.clone()),
        &[MANIFEST_MEDIA_TYPE],
    )
    .await?
    else {
        return Ok(Vec::new());
    };
    let Ok(manifest) = serde_json::from_slice::<Manifest>(&body) else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for layer in manifest
        .layers
        .iter()
        .filter(|l| l.media_type == SIMPLE_SIGNING_MEDIA_TYPE)
    {
        let Some(signature) = layer.annotations.get(SIGNATURE_ANNOTATION) else {
            continue;
        };
        let payload = session
            .blob(reference, &layer.digest, MAX_DOCUMENT_BYTES, &|_, _| {})
            .await?;
        found.push((
            format!("signature {} in tag {tag}", layer.digest),
            Candidate::Simple {
                payload,
                signature: signature.clone(),
            },
        ));
    }
    Ok(found)
}

/// What a signature document commits to: the signed bytes, the signature, and the manifest
/// digests the signed bytes name.
pub struct Signed {
    message: Vec<u8>,
    signature: Vec<u8>,
    named: Vec<String>,
}

/// The key that made a valid signature of `digest`, or why there is none.
fn check<'k>(candidate: &Candidate, digest: &str, keys: &'k [Key]) -> Result<&'k Key, String> {
    let Signed {
        message,
        signature,
        named,
    } = match candidate {
        Candidate::Bundle(json) => dsse::open(json)?,
        Candidate::Simple { payload, signature } => Signed {
            named: simple::named_digest(payload)?,
            message: payload.clone(),
            signature: decode(signature)?,
        },
    };
    let key = keys
        .iter()
        .find(|k| verifies(&k.key, &message, &signature))
        .ok_or("the signature does not verify with the key (signed by another key, or altered)")?;
    if !named.iter().any(|n| n == digest) {
        return Err(format!(
            "the signature is valid but signs {}, not {digest}",
            named.join(", ")
        ));
    }
    Ok(key)
}

fn decode(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("the signature is not base64 ({e})"))
}

/// ECDSA P-256 with SHA-256, the signature ASN.1 DER (as cosign writes it) or raw r‖s.
fn verifies(key: &VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    let parsed =
        EcdsaSignature::from_der(signature).or_else(|_| EcdsaSignature::from_slice(signature));
    parsed.is_ok_and(|sig| key.verify(message, &sig).is_ok())
}

mod simple {
    use super::Deserialize;

    #[derive(Deserialize)]
    struct Payload {
        critical: Critical,
    }

    #[derive(Deserialize)]
    struct Critical {
        #[serde(rename = "type")]
        kind: String,
        image: Image,
    }

    #[derive(Deserialize)]
    struct Image {
        #[serde(rename = "docker-manifest-digest")]
        digest: String,
    }

    /// The manifest digest a simple-signing payload names.
    pub fn named_digest(payload: &[u8]) -> Result<Vec<String>, String> {
        let payload: Payload = serde_json::from_slice(payload)
            .map_err(|e| format!("the payload is not a simple-signing document ({e})"))?;
        if payload.critical.kind != "cosign container image signature" {
            return Err(format!("the payload has type {:?}", payload.critical.kind));
        }
        Ok(vec![payload.critical.image.digest])
    }
}

mod dsse {
    use std::collections::BTreeMap;

    use base64::Engine as _;

    use super::{Deserialize, IN_TOTO_PAYLOAD_TYPE, Signed, decode};

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Bundle {
        dsse_envelope: Option<Envelope>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Envelope {
        payload: String,
        payload_type: String,
        signatures: Vec<EnvelopeSignature>,
    }

    #[derive(Deserialize)]
    struct EnvelopeSignature {
        sig: String,
    }

    #[derive(Deserialize)]
    struct Statement {
        subject: Vec<Subject>,
    }

    #[derive(Deserialize)]
    struct Subject {
        digest: BTreeMap<String, String>,
    }

    /// A bundle's signed bytes (the DSSE pre-authentication encoding of its payload), its
    /// signature, and the digests its in-toto statement names.
    pub fn open(json: &[u8]) -> Result<Signed, String> {
        let bundle: Bundle =
            serde_json::from_slice(json).map_err(|e| format!("not a Sigstore bundle ({e})"))?;
        let envelope = bundle
            .dsse_envelope
            .ok_or("the bundle holds no DSSE envelope")?;
        if envelope.payload_type != IN_TOTO_PAYLOAD_TYPE {
            return Err(format!(
                "the envelope's payload type is {}",
                envelope.payload_type
            ));
        }
        let payload = base64::engine::general_purpose::STANDARD
            .decode(&envelope.payload)
            .map_err(|e| format!("the envelope's payload is not base64 ({e})"))?;
        let [signature] = envelope.signatures.as_slice() else {
            return Err(format!(
                "the envelope has {} signatures, not one",
                envelope.signatures.len()
            ));
        };
        let statement: Statement = serde_json::from_slice(&payload)
            .map_err(|e| format!("the payload is not an in-toto statement ({e})"))?;
        let named = statement
            .subject
            .iter()
            .filter_map(|s| s.digest.get("sha256").map(|hex| format!("sha256:{hex}")))
            .collect();
        Ok(Signed {
            message: pae(&envelope.payload_type, &payload),
            signature: decode(&signature.sig)?,
            named,
        })
    }

    /// DSSE's pre-authentication encoding: `DSSEv1 SP len(type) SP type SP len(body) SP body`.
    fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "DSSEv1 {} {payload_type} {} ",
            payload_type.len(),
            payload.len()
        )
        .into_bytes();
        out.extend_from_slice(payload);
        out
    }

    #[cfg(test)]
    #[test]
    fn pae_matches_the_spec_example() {
        // The DSSE protocol's example: "DSSEv1 29 http://example.com/HelloWorld 11 hello world".
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }
}

#[cfg(test)]
mod tests {
    /// The advice is a cosign 3 command: no `oci://`, the digest not the tag, offline.
    #[test]
    fn the_sign_command_names_the_digest_offline() {
        let reference: oci_client::Reference = "127.0.0.1:5000/hooks/audit:v1".parse().unwrap();
        let digest = format!("sha256:{}", "a".repeat(64));
        let command = super::sign_command(&reference, &digest, true);
        assert_eq!(
            command,
            format!(
                "cosign sign --key cosign.key --tlog-upload=false --use-signing-config=false \
                 --allow-http-registry 127.0.0.1:5000/hooks/audit@{digest}"
            )
        );
        assert!(!super::sign_command(&reference, &digest, false).contains("http"));
    }
}
