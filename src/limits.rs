//! Resource limits of a WebAssembly hook. Filled in by the WASM work.

use serde::{Deserialize, Serialize};

/// Placeholder: the WASM work replaces this with fuel and memory limits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WasmLimits {}
