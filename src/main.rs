//! One binary, three names: `hookhost`, `hookhost-runtime` (the runc wrapper) and `docker-hook`
//! (the Docker CLI plugin); and, as its own child, the bounded compiler of WASM modules.

mod cli;

use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let name = argv
        .first()
        .and_then(|a| Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // hookhost re-executing itself to compile a module under bounds, whatever its name.
    if argv
        .get(1)
        .is_some_and(|a| a == hookhost_exec::wasm::compile::CHILD_COMMAND)
    {
        return cli::recompile::compile_child(&lossy(argv[2..].to_vec()));
    }
    const THIS: hookhost_runtime::Hookhost = hookhost_runtime::Hookhost::ThisExecutable;
    match name.as_str() {
        hookhost_types::RUNTIME_EXECUTABLE => hookhost_runtime::main(argv[1..].to_vec(), THIS),
        "docker-hook" => cli::plugin::main(lossy(argv)),
        _ if argv.get(1).is_some_and(|a| a == "runtime") => {
            hookhost_runtime::main(argv[2..].to_vec(), THIS)
        }
        _ => cli::main(lossy(argv)),
    }
}

fn lossy(argv: Vec<OsString>) -> Vec<String> {
    argv.into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}
