//! Conditions under which a global hook applies to a container (hooks.d 1.0.0 `when` semantics).

use serde::{Deserialize, Serialize};

/// Placeholder: the hooks.d work replaces this with the full condition set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct When {}
