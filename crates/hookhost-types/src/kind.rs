use std::fmt;

use serde::{Deserialize, Serialize};

/// What kind of program a hook is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookKind {
    /// An executable run as a process, exactly as runc runs an OCI hook.
    Native,
    /// A WebAssembly (WASI preview 1) module run inside hookhost by wasmtime.
    Wasm,
}

impl fmt::Display for HookKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HookKind::Native => "native",
            HookKind::Wasm => "wasm",
        })
    }
}
