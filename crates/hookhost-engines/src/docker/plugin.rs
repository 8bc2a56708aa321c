//! The Docker CLI plugin `docker-hook`: `docker hook create|inspect|ls|rm|run`.
//!
//! Docker runs a plugin with its own argv: `docker-hook [global flags] hook SUBCOMMAND …`, and
//! `docker-hook docker-cli-plugin-metadata` to discover it.

use serde_json::{Value, json};

use super::args;

/// The command name under `docker`.
pub const NAME: &str = "hook";

/// The answer to `docker-cli-plugin-metadata`.
pub fn metadata() -> Value {
    json!({
        "SchemaVersion": "0.1.0",
        "Vendor": "hookhost",
        "Version": env!("CARGO_PKG_VERSION"),
        "ShortDescription": "Manage container lifecycle hooks and run containers with them",
        "URL": "https://github.com/hookhost/hookhost",
    })
}

/// What Docker asked the plugin.
#[derive(Debug, PartialEq, Eq)]
pub enum PluginCall {
    Metadata,
    /// `hook ARGS…`, with the Docker global flags that came before it (long names).
    Hook {
        globals: Vec<String>,
        args: Vec<String>,
    },
    /// Not called by Docker the way plugins are.
    Unknown(Vec<String>),
}

/// Reads the argv after the program name.
pub fn parse(argv: &[String]) -> PluginCall {
    if argv.first().map(String::as_str) == Some("docker-cli-plugin-metadata") {
        return PluginCall::Metadata;
    }
    let (globals, rest) = args::split_globals(argv);
    match rest.split_first() {
        Some((name, args)) if name == NAME => PluginCall::Hook {
            globals,
            args: args.to_vec(),
        },
        _ => PluginCall::Unknown(argv.to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_plugin_argv() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            parse(&v(&["docker-cli-plugin-metadata"])),
            PluginCall::Metadata
        );
        assert_eq!(
            parse(&v(&["-H", "unix:///s", "hook", "run", "busybox"])),
            PluginCall::Hook {
                globals: v(&["--host", "unix:///s"]),
                args: v(&["run", "busybox"])
            }
        );
        assert!(matches!(parse(&v(&["ls"])), PluginCall::Unknown(_)));
        assert_eq!(metadata()["SchemaVersion"], "0.1.0");
    }
}
