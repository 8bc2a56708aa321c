//! Registry credentials as `docker login` wrote them: `$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`, the `auths` entry of the registry host.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

#[derive(Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

fn config_file() -> Option<PathBuf> {
    let dir = std::env::var_os("DOCKER_CONFIG")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))?;
    Some(dir.join("config.json"))
}

/// The credentials for `registry`, anonymous when the file or its entry is missing.
/// Credential helpers (`credsStore`, `credHelpers`) are not run: hookhost runs as root and
/// does not execute programs a user's config names.
pub fn for_registry(registry: &str) -> RegistryAuth {
    let Some(text) = config_file().and_then(|f| std::fs::read_to_string(f).ok()) else {
        return RegistryAuth::Anonymous;
    };
    let config: DockerConfig = serde_json::from_str(&text).unwrap_or_default();
    config
        .auths
        .iter()
        .find(|(key, _)| host_of(key) == registry)
        .and_then(|(_, entry)| basic(entry))
        .unwrap_or(RegistryAuth::Anonymous)
}

/// `https://index.docker.io/v1/` → `index.docker.io`; a bare host stays as it is.
fn host_of(key: &str) -> &str {
    let key = key.split_once("://").map_or(key, |(_, rest)| rest);
    key.split('/').next().unwrap_or(key)
}

fn basic(entry: &AuthEntry) -> Option<RegistryAuth> {
    if let (Some(user), Some(password)) = (&entry.username, &entry.password) {
        return Some(RegistryAuth::Basic(user.clone(), password.clone()));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(entry.auth.as_deref()?.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some(RegistryAuth::Basic(user.into(), password.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_login_entries_give_basic_auth() {
        let entry = AuthEntry {
            auth: Some("dXNlcjpwYTpzcw==".into()),
            ..AuthEntry::default()
        };
        match basic(&entry) {
            Some(RegistryAuth::Basic(user, password)) => {
                assert_eq!((user.as_str(), password.as_str()), ("user", "pa:ss"));
            }
            other => panic!("{other:?}"),
        }
        assert!(basic(&AuthEntry::default()).is_none());
        assert_eq!(host_of("https://index.docker.io/v1/"), "index.docker.io");
        assert_eq!(host_of("127.0.0.1:5000"), "127.0.0.1:5000");
    }
}
