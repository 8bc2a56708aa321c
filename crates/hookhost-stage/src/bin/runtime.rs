//! `hookhost-runtime`: the runc-compatible runtime wrapper as a small executable of its own,
//! installed beside `hookhost` (`hookhost install docker` names it then). Engines run their
//! runtime at every create, start, state, kill and delete; this program is that call's wrapper
//! without the CLI, the OCI registry client or Cranelift. The stage entries it writes name the
//! `hookhost` beside it (and so its stage executable), which also compiles a module that has
//! no artifact yet.

use std::process::ExitCode;

use hookhost_runtime::Hookhost;
use hookhost_types::HOOKHOST_EXECUTABLE;

#[global_allocator]
static ALLOCATOR: hookhost_stage::Allocator = hookhost_stage::allocator();

fn main() -> ExitCode {
    hookhost_exec::wasm::compile::use_compiler_beside(HOOKHOST_EXECUTABLE);
    let args = std::env::args_os().skip(1).collect();
    hookhost_runtime::main(args, Hookhost::Beside)
}
