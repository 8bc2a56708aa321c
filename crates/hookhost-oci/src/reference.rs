//! `oci://` references.

use std::net::IpAddr;

use oci_client::Reference;

use crate::OciError;

/// The one scheme hookhost pulls from.
pub const SCHEME: &str = "oci://";

/// Whether `path` is a reference (any `scheme://`) rather than a local path: the caller then
/// hands it to this crate, which refuses schemes other than [`SCHEME`].
pub fn is_reference(path: &str) -> bool {
    path.contains("://")
}

/// Parses `oci://HOST/REPO:TAG` or `oci://HOST/REPO@sha256:…`. The registry host must be
/// explicit: no silent default to Docker Hub.
pub fn parse(text: &str) -> Result<Reference, OciError> {
    let rest = text
        .strip_prefix(SCHEME)
        .ok_or_else(|| OciError::Scheme(text.to_string()))?;
    let invalid = |reason: String| OciError::Reference {
        reference: text.to_string(),
        reason,
    };
    let reference = Reference::try_from(rest).map_err(|e| invalid(e.to_string()))?;
    if rest.split('/').next() != Some(reference.registry()) || !rest.contains('/') {
        return Err(invalid(
            "name the registry host, e.g. oci://registry.example.com/hooks/audit:v1".into(),
        ));
    }
    Ok(reference)
}

/// Whether `registry` (`HOST`, `HOST:PORT`, `[V6]:PORT`) is this machine: plain HTTP to it
/// never leaves the host.
pub fn is_loopback(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => registry.split(':').next().unwrap_or(registry),
    };
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_oci_references_with_a_host_parse() {
        let ok = parse("oci://127.0.0.1:5000/hooks/noop:v1").unwrap();
        assert_eq!(ok.registry(), "127.0.0.1:5000");
        assert_eq!(ok.repository(), "hooks/noop");
        assert_eq!(ok.tag(), Some("v1"));
        for bad in ["https://r.io/a:v1", "docker://r.io/a", "r.io/a:v1"] {
            assert!(matches!(parse(bad), Err(OciError::Scheme(_))), "{bad}");
        }
        for bad in [
            "oci://noop:v1",
            "oci://hooks/noop:v1",
            "oci://",
            "oci://R.io/A",
        ] {
            assert!(
                matches!(parse(bad), Err(OciError::Reference { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for local in [
            "127.0.0.1:5000",
            "localhost:5000",
            "localhost",
            "[::1]:5000",
            "127.1.2.3",
        ] {
            assert!(is_loopback(local), "{local}");
        }
        for remote in [
            "10.0.0.1:5000",
            "registry.lan",
            "localhost.evil.com",
            "[::2]:5000",
        ] {
            assert!(!is_loopback(remote), "{remote}");
        }
    }
}
