//! The precompiled-module cache.
//!
//! Layout under the caller's cache dir:
//! `<module-sha256>-<engine-fingerprint>.cwasm` and, next to it, `….cwasm.sum`: the sha256 of
//! the cwasm bytes and the file's identity (device, inode, size, mtime, ctime) right after
//! hookhost wrote it. `Module::deserialize_*` is unsafe because a crafted or damaged artifact can
//! make wasmtime run arbitrary code, so an entry is used only when it was written by hookhost for
//! this exact module digest and engine and is unchanged since:
//!
//! - identity equal to the recorded one: the very file hookhost wrote, not modified since (any
//!   write or replacement changes ctime, which only the kernel sets). Trusted without re-hashing,
//!   which keeps loading a large hook fast (hashing a 6 MB artifact costs ~5 ms);
//! - identity different (copied, restored, rewritten): trusted only if its bytes hash to the
//!   recorded sha256.
//!
//! Anything else (missing, stale, corrupt, unreadable, refused by wasmtime) is recompiled from the
//! module blob, whose own sha256 is checked against the registered digest first, under the
//! bounds of [`compile`]. Both files are
//! written to a temporary name and renamed into place, so readers never see a partial file.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::{Engine, Module};

use super::compile::{self, CompileLimits};
use super::{WasmError, engine};
use crate::fs::{sha256_hex, write_atomic};

/// Where a module's artifact and its checksum live.
struct Entry {
    cwasm: PathBuf,
    checksum: PathBuf,
}

/// How an artifact's file name ends, after the module digest and `-`, and how its sidecar's
/// name ends after the artifact's.
const ARTIFACT: &str = ".cwasm";
const SIDECAR: &str = ".sum";

fn entry(cache_dir: &Path, digest: &str) -> Entry {
    let base = format!("{digest}{}", this_build());
    Entry {
        cwasm: cache_dir.join(&base),
        checksum: cache_dir.join(format!("{base}{SIDECAR}")),
    }
}

/// The end of this build's artifact names: `-FINGERPRINT.cwasm`.
fn this_build() -> String {
    format!("-{}{ARTIFACT}", engine::fingerprint())
}

/// The module for `digest`, loaded in the runtime engine: from the cache when a verified entry
/// exists, else compiled under `limits` from `module_path` (after checking the blob against
/// `digest`) and cached for next time.
pub(crate) fn load_or_compile(
    module_path: &Path,
    digest: &str,
    cache_dir: &Path,
    limits: &CompileLimits,
) -> Result<Module, WasmError> {
    match lookup(module_path, digest, cache_dir)? {
        Lookup::Cached(module) => Ok(module),
        Lookup::Missing(bytes, entry) => compile_and_store(&bytes, &entry, limits),
    }
}

/// Compiles the module at `module_path` into the cache under `limits` unless a verified entry
/// is there already; returns whether it compiled. Unlike a run, fails when the cache cannot
/// be written: filling it is the point.
pub(crate) fn ensure(
    module_path: &Path,
    digest: &str,
    cache_dir: &Path,
    limits: &CompileLimits,
) -> Result<bool, WasmError> {
    let Lookup::Missing(bytes, entry) = lookup(module_path, digest, cache_dir)? else {
        return Ok(false);
    };
    let artifact = compile::compile(&bytes, limits)?;
    store(&artifact, &entry).map_err(|source| WasmError::WriteCache {
        path: entry.cwasm.clone(),
        source,
    })?;
    Ok(true)
}

/// What the cache holds for a module.
enum Lookup {
    /// A verified entry, loaded.
    Cached(Module),
    /// Nothing usable: the module's checked bytes, and where their entry goes.
    Missing(Vec<u8>, Entry),
}

fn lookup(module_path: &Path, digest: &str, cache_dir: &Path) -> Result<Lookup, WasmError> {
    check_digest_shape(digest)?;
    let entry = entry(cache_dir, digest);
    if let Some(module) = load_verified(engine::runtime()?, &entry) {
        return Ok(Lookup::Cached(module));
    }
    Ok(Lookup::Missing(read_checked(module_path, digest)?, entry))
}

/// The module blob at `module_path`, refused unless its sha256 is `digest`.
fn read_checked(module_path: &Path, digest: &str) -> Result<Vec<u8>, WasmError> {
    let bytes = fs::read(module_path).map_err(|source| WasmError::ReadModule {
        path: module_path.to_path_buf(),
        source,
    })?;
    let actual = sha256_hex(&bytes);
    if actual != digest {
        return Err(WasmError::DigestMismatch {
            path: module_path.to_path_buf(),
            expected: digest.to_string(),
            actual,
        });
    }
    Ok(bytes)
}

/// Compiles `bytes` (whose digest the caller computed) under `limits` into the cache and loads
/// the result in the runtime engine, as a hook run will; used at create time.
pub(crate) fn precompile(
    bytes: &[u8],
    digest: &str,
    cache_dir: &Path,
    limits: &CompileLimits,
) -> Result<Module, WasmError> {
    compile_and_store(bytes, &entry(cache_dir, digest), limits)
}

/// Removes the entries of other fingerprints (see [`super::remove_foreign_artifacts`]).
pub(crate) fn remove_foreign(cache_dir: &Path) -> io::Result<usize> {
    let current = this_build();
    let mut removed = 0;
    for dirent in fs::read_dir(cache_dir)? {
        let path = dirent?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let base = name.strip_suffix(SIDECAR).unwrap_or(name);
        if base.ends_with(ARTIFACT) && !base.ends_with(&current) {
            fs::remove_file(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Digests become file names: refuse anything but 64 lower-case hex digits.
fn check_digest_shape(digest: &str) -> Result<(), WasmError> {
    let ok = digest.len() == 64
        && digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(WasmError::BadDigest(digest.to_string()))
    }
}

/// What the sidecar records about an artifact.
#[derive(Debug, PartialEq, Eq)]
struct Sum {
    sha256: String,
    identity: String,
}

impl Sum {
    fn parse(text: &str) -> Option<Sum> {
        let (sha256, identity) = text.trim_end().split_once('\n')?;
        Some(Sum {
            sha256: sha256.to_string(),
            identity: identity.to_string(),
        })
    }

    fn render(&self) -> String {
        format!("{}\n{}\n", self.sha256, self.identity)
    }
}

/// Device, inode, size, mtime and ctime (ns): changes whenever the file is written or replaced.
fn identity(meta: &fs::Metadata) -> String {
    let mtime = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
    let ctime = i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec());
    format!(
        "{} {} {} {mtime} {ctime}",
        meta.dev(),
        meta.ino(),
        meta.len()
    )
}

/// Loads an entry only if it is verified (see the module docs); `None` means "recompile".
fn load_verified(engine: &Engine, entry: &Entry) -> Option<Module> {
    let sum = Sum::parse(&fs::read_to_string(&entry.checksum).ok()?)?;
    let mut file = File::open(&entry.cwasm).ok()?;
    if identity(&file.metadata().ok()?) != sum.identity {
        let mut hasher = Sha256::new();
        io::copy(&mut file, &mut hasher).ok()?;
        if hex::encode(hasher.finalize()) != sum.sha256 {
            return None;
        }
    }
    // SAFETY: the open file is the one `compile_and_store` wrote (same identity and untouched
    // since) or has exactly the bytes it wrote (same sha256); files are only ever replaced by
    // rename, never modified in place, and wasmtime itself rejects artifacts from another
    // version or engine configuration.
    unsafe { Module::deserialize_open_file(engine, file) }.ok()
}

fn compile_and_store(
    bytes: &[u8],
    entry: &Entry,
    limits: &CompileLimits,
) -> Result<Module, WasmError> {
    let artifact = compile::compile(bytes, limits)?;
    // The cache is an optimisation: failing to write it must not fail the run.
    let _ = store(&artifact, entry);
    // SAFETY: `artifact` was produced just now by the compiler engine of this very executable
    // (in this process or in its compiler child) or of the trusted hookhost the stage
    // executable was installed with; wasmtime checks its version and settings against the
    // runtime engine's and refuses a mismatch.
    unsafe { Module::deserialize(engine::runtime()?, &artifact) }
        .map_err(|e| WasmError::InvalidModule(format!("{e:#}")))
}

/// Artifact first, then the sidecar recording its identity after the rename. A reader that
/// sees a new artifact with an old sidecar (or the reverse) falls back to hashing or
/// recompiling; concurrent writers produce identical bytes, so the hash still matches.
fn store(artifact: &[u8], entry: &Entry) -> io::Result<()> {
    let dir = entry.cwasm.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    write_atomic(&entry.cwasm, artifact, 0o600)?;
    let sum = Sum {
        sha256: sha256_hex(artifact),
        identity: identity(&fs::metadata(&entry.cwasm)?),
    };
    write_atomic(&entry.checksum, sum.render().as_bytes(), 0o600)
}

/// Paths of the cache entry for a digest, for tests that damage it.
#[cfg(test)]
pub(crate) fn entry_paths(cache_dir: &Path, digest: &str) -> (PathBuf, PathBuf) {
    let entry = entry(cache_dir, digest);
    (entry.cwasm, entry.checksum)
}
