//! WebAssembly hook execution (wasmtime). Filled in by the WASM work.
