//! WebAssembly hook execution (wasmtime). Temporary: replaced by the WASM work.

pub fn is_wasm(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\0asm")
}

pub fn validate_module(_bytes: &[u8]) -> Result<(), String> {
    Err("WASM hooks are not supported yet".into())
}
