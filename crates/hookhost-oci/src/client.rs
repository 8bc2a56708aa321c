//! One configured registry client: HTTPS except for loopback hosts and the config file's
//! `insecureRegistries`, credentials from the Docker config file, and small documents fetched
//! with a size bound.

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

use crate::OciError;
use crate::reference::is_loopback;

/// The largest manifest, index or signature document read: distribution's own limit.
pub const MAX_DOCUMENT_BYTES: u64 = 4 << 20;

/// A client for the registry of one reference, and its credentials.
pub struct Session {
    pub client: Client,
    pub auth: RegistryAuth,
    pub registry: String,
    /// Whether plain HTTP is allowed for this registry.
    plain_http: bool,
}

/// Said when the registry refuses the credentials (or their absence).
const AUTH_HINT: &str = " (log in with `docker login HOST`: hookhost reads the registry's \
     auths entry in $DOCKER_CONFIG/config.json or ~/.docker/config.json)";
/// Said when a registry reached over HTTPS cannot be connected to.
const HTTPS_HINT: &str = " (hookhost uses HTTPS except for loopback registries; list a \
     registry served over plain HTTP in the config file's insecureRegistries)";

impl Session {
    pub fn new(reference: &Reference, insecure: &[String]) -> Session {
        let registry = reference.resolve_registry().to_string();
        let mut plain: Vec<String> = insecure.to_vec();
        if is_loopback(&registry) {
            plain.push(registry.clone());
        }
        let plain_http = plain.contains(&registry);
        // rustls is built with ring only (Cargo.toml): reqwest needs it installed as the
        // process's crypto provider. Err means one already is, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::new(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(plain),
            ..ClientConfig::default()
        });
        Session {
            client,
            auth: crate::auth::for_registry(&registry),
            registry,
            plain_http,
        }
    }

    /// Whether the registry is reached over plain HTTP.
    pub fn plain_http(&self) -> bool {
        self.plain_http
    }

    /// The error of a failed registry call.
    pub fn failed(
        &self,
        action: impl Into<String>,
    ) -> impl FnOnce(oci_client::errors::OciDistributionError) -> OciError {
        let registry = self.registry.clone();
        let action = action.into();
        let plain_http = self.plain_http;
        move |source| OciError::Registry {
            registry,
            action,
            hint: hint(&source, plain_http),
            source,
        }
    }

    /// A manifest or index, its digest checked by the client, refused above
    /// [`MAX_DOCUMENT_BYTES`].
    pub async fn manifest(
        &self,
        reference: &Reference,
        accepted: &[&str],
    ) -> Result<(bytes::Bytes, String), OciError> {
        let (body, digest) = self
            .client
            .pull_manifest_raw(reference, &self.auth, accepted)
            .await
            .map_err(self.failed(format!("fetch the manifest of {reference}")))?;
        if body.len() as u64 > MAX_DOCUMENT_BYTES {
            return Err(OciError::TooLarge {
                what: "the manifest".into(),
                reference: reference.to_string(),
                size: body.len() as u64,
                limit: MAX_DOCUMENT_BYTES,
            });
        }
        Ok((body, digest))
    }

    /// A blob, streamed into memory: refused as soon as it passes `limit`, and checked
    /// against `digest`. `progress` sees the bytes received so far.
    pub async fn blob(
        &self,
        reference: &Reference,
        digest: &str,
        limit: u64,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<Vec<u8>, OciError> {
        use futures_util::StreamExt as _;
        let mut stream = self
            .client
            .pull_blob_stream(reference, digest)
            .await
            .map_err(self.failed(format!("fetch {digest} of {reference}")))?;
        let total = stream.content_length.unwrap_or(0);
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| self.download_error(reference, digest, source))?;
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > limit {
                return Err(OciError::TooLarge {
                    what: format!("the blob {digest}"),
                    reference: reference.to_string(),
                    size: bytes.len() as u64,
                    limit,
                });
            }
            progress(bytes.len() as u64, total);
        }
        check_digest(reference, digest, &bytes)?;
        Ok(bytes)
    }

    /// A digest mismatch found by the client's verifying stream (its message: "Invalid
    /// digest. Expected …, got …") is tampering, not a network failure.
    fn download_error(
        &self,
        reference: &Reference,
        digest: &str,
        source: std::io::Error,
    ) -> OciError {
        if source.to_string().starts_with("Invalid digest.") {
            return OciError::Tampered {
                reference: reference.to_string(),
                expected: digest.to_string(),
                actual: source.to_string(),
            };
        }
        OciError::Download {
            registry: self.registry.clone(),
            digest: digest.to_string(),
            source,
        }
    }
}

/// The fix for a refused login or a failed HTTPS connection, or nothing.
fn hint(error: &oci_client::errors::OciDistributionError, plain_http: bool) -> &'static str {
    use oci_client::errors::{OciDistributionError as E, OciErrorCode as C};
    match error {
        E::UnauthorizedError { .. } | E::ServerError { code: 401, .. } => AUTH_HINT,
        E::RegistryError { envelope, .. }
            if envelope.errors.iter().any(|e| e.code == C::Unauthorized) =>
        {
            AUTH_HINT
        }
        E::RequestError(_) if !plain_http => HTTPS_HINT,
        _ => "",
    }
}

/// The content's sha256 must be the digest that named it.
pub fn check_digest(reference: &Reference, digest: &str, bytes: &[u8]) -> Result<(), OciError> {
    let actual = format!("sha256:{}", hookhost_exec::fs::sha256_hex(bytes));
    if actual != digest {
        return Err(OciError::Tampered {
            reference: reference.to_string(),
            expected: digest.to_string(),
            actual,
        });
    }
    Ok(())
}

/// Runs one network operation to completion on a small runtime of its own.
pub fn block_on<T>(work: impl Future<Output = Result<T, OciError>>) -> Result<T, OciError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(OciError::Runtime)?
        .block_on(work)
}
