//! Capabilities granted to a WebAssembly hook by whoever registers it. Filled in by the WASM work.

use serde::{Deserialize, Serialize};

/// Placeholder: the WASM work replaces this with the full grant set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {}
