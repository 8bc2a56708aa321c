//! What both benchmarks share: medians, and a description of the executable under test, so a
//! figure is never read without knowing how hookhost was linked.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// The rounds to run: `full` under `cargo bench`, 2 under `cargo test` (a smoke test, so that a
/// benchmark cannot rot), once the executable under test is read back from disk and described.
pub fn rounds(exe: &str, full: usize) -> usize {
    let path = Path::new(exe);
    as_read_from_disk(path);
    println!(
        "hookhost under test: {exe} ({}, read back from disk)",
        linkage(path)
    );
    match std::env::args().any(|a| a == "--bench") {
        true => full,
        false => 2,
    }
}

/// How long `cmd` takes to run to its end (stdout discarded); panics when it fails.
pub fn timed(cmd: &mut Command) -> Duration {
    let started = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .unwrap();
    let took = started.elapsed();
    assert!(status.success(), "{cmd:?} failed");
    took
}

/// The first and third quartiles of `samples`.
pub fn quartiles(samples: &[Duration]) -> (Duration, Duration) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let n = sorted.len();
    (sorted[n / 4], sorted[n * 3 / 4])
}

/// Prints the medians of `a` and `b`, their ratio, and each one's quartiles (the spread).
pub fn report(what: &str, a: Vec<Duration>, b: Vec<Duration>) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let quartiles = |samples: &[Duration]| {
        let (low, high) = quartiles(samples);
        format!("{:.2}–{:.2}", ms(low), ms(high))
    };
    let (qa, qb) = (quartiles(&a), quartiles(&b));
    let (ma, mb) = (median(a), median(b));
    println!(
        "{what}: {:.2} ms vs {:.2} ms, ratio {:.3}x (quartiles {qa} vs {qb} ms)",
        ms(ma),
        ms(mb),
        ma.as_secs_f64() / mb.as_secs_f64()
    );
}

/// "static, non-PIE", "dynamic, PIE", …, read from the ELF header: the dynamic loader and the
/// relocations it applies are a large part of a fresh process's start.
pub fn linkage(exe: &Path) -> String {
    let elf = std::fs::read(exe).unwrap();
    let u16_at = |at: usize| usize::from(u16::from_le_bytes([elf[at], elf[at + 1]]));
    let u32_at = |at: usize| u32::from_le_bytes(elf[at..at + 4].try_into().unwrap());
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    const PT_INTERP: u32 = 3;
    const ET_DYN: usize = 3;
    let dynamic = (0..phnum).any(|i| u32_at(phoff + i * phentsize) == PT_INTERP);
    format!(
        "{}, {}",
        if dynamic { "dynamic" } else { "static" },
        if u16_at(0x10) == ET_DYN {
            "PIE"
        } else {
            "non-PIE"
        }
    )
}

/// Puts the executable under test in the page cache as a deployed one is: read from disk.
///
/// The linker writes its output in small pieces, and the kernel keeps what was written that
/// way in small page-cache folios; a file read from disk (after a reboot, or installed by
/// copying) gets large ones, and then needs fewer and cheaper page faults to start. Measured
/// here, the linker's own output started ~0.4 ms slower than the same bytes read back. So the
/// file is flushed, dropped from the page cache and read back before anything is timed.
pub fn as_read_from_disk(exe: &Path) {
    use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
    let mut file = std::fs::File::open(exe).unwrap();
    file.sync_all().unwrap();
    posix_fadvise(&file, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED).unwrap();
    std::io::copy(&mut file, &mut std::io::sink()).unwrap();
}
