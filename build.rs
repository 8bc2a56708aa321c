//! Links the hookhost executable as non-PIE.
//!
//! `hookhost stage` is a fresh process on every container start. As a PIE, the dynamic loader
//! applies ~37,000 relative relocations at each start, dirtying ~150 pages of wasmtime's
//! read-only data; measured here that was 295 page faults and 1.78 ms for `hookhost --version`
//! against 128 faults and 1.31 ms non-PIE. The cost is that the executable's own code is not
//! address-randomised (its heap, stack and libraries still are). Set HOOKHOST_PIE=1 to build a
//! PIE anyway.
//!
//! The shipped build (`scripts/cargo-static.sh`) links glibc statically and asks rustc itself
//! for no PIE (`-C relocation-model=static`); `-no-pie` is not added then, because with a static
//! C runtime and position-independent code it would produce an executable that cannot start.
fn main() {
    println!("cargo:rerun-if-env-changed=HOOKHOST_PIE");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let static_crt = std::env::var("CARGO_CFG_TARGET_FEATURE")
        .is_ok_and(|features| features.split(',').any(|f| f == "crt-static"));
    if linux && !static_crt && std::env::var_os("HOOKHOST_PIE").is_none() {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=build/symbol-order.txt");
    let x86_64_gnu = std::env::var("TARGET").is_ok_and(|t| t == "x86_64-unknown-linux-gnu");
    if x86_64_gnu && static_crt {
        // Linked from a copy in OUT_DIR: a build cache shared by clones at other paths (CI's)
        // reruns this script only when the list's mtime is newer than its last run, and would
        // otherwise keep naming a clone that may be gone.
        let list = std::path::Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap())
            .join("build/symbol-order.txt");
        let order =
            std::path::Path::new(&std::env::var("OUT_DIR").unwrap()).join("symbol-order.txt");
        std::fs::copy(&list, &order).expect("build/symbol-order.txt is readable");
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
