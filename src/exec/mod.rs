//! Running one hook: a native process or a WebAssembly module.

pub mod native;
pub mod wasm;
