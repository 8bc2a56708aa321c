//! Links the small executables with the functions a container start runs next to each other,
//! as `hookhost` is (the root package's build.rs): `build/small-symbol-order.txt`, written by
//! `scripts/symbol-order.sh small`, passed to lld as `--symbol-ordering-file`.
//!
//! Only for x86-64 musl, the target `scripts/build-stage.sh` builds there: the musl target links
//! with the C compiler's own linker (GNU ld), which has no such option, so lld is asked for by
//! name, from the toolchain's own `gcc-ld` directory (rust-lld, which the x86-64 glibc target
//! uses by default). A stale list is harmless: a renamed function is merely left where the
//! linker puts it.
use std::path::{Path, PathBuf};
use std::process::Command;

const LIST: &str = "../../build/small-symbol-order.txt";

fn main() {
    println!("cargo:rerun-if-changed={LIST}");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target != "x86_64-unknown-linux-musl" {
        return;
    }
    let (Some(gcc_ld), Ok(host)) = (sysroot(), std::env::var("HOST")) else {
        println!("cargo:warning=no rustc sysroot: linked without the symbol order");
        return;
    };
    let gcc_ld = gcc_ld.join(format!("lib/rustlib/{host}/bin/gcc-ld"));
    if !gcc_ld.join("ld.lld").exists() {
        println!(
            "cargo:warning=no rust-lld in {}: linked without the symbol order",
            gcc_ld.display()
        );
        return;
    }
    // A copy in OUT_DIR, as for hookhost: a build cache shared by clones at other paths.
    let list = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join(LIST);
    let order = Path::new(&std::env::var("OUT_DIR").unwrap()).join("small-symbol-order.txt");
    std::fs::copy(&list, &order).expect("build/small-symbol-order.txt is readable");
    println!("cargo:rustc-link-arg-bins=-B{}", gcc_ld.display());
    println!("cargo:rustc-link-arg-bins=-fuse-ld=lld");
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
        order.display()
    );
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}

/// The sysroot of the rustc building this crate.
fn sysroot() -> Option<PathBuf> {
    let rustc = std::env::var_os("RUSTC")?;
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    Some(PathBuf::from(text.trim())).filter(|p| out.status.success() && p.is_dir())
}
