//! The node side of a fleet: apply a hook set from a registry (`hookhost apply -f oci://…`), and
//! converge on the set a reference names, again and again (`hookhost apply --watch oci://…`,
//! the loop a DaemonSet runs).
//!
//! Each attempt resolves the reference (one manifest request); when the node's generation is
//! already that manifest, nothing else happens. Otherwise the set is pulled, verified and
//! applied as a new generation. A failed attempt changes nothing on the node (the apply is one
//! switch, [`hookhost_hooks::generation`]): the node keeps its generation, the status file says
//! why, and the next attempt waits longer (doubling up to [`MAX_BACKOFF_FACTOR`] intervals).
//! Every wait is spread by up to a tenth, so that a fleet's requests do not arrive together.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;

use crate::set::{self, pull_set};
use crate::{OciError, Options};
use hookhost_hooks::apply::{self, Applied, Document};
use hookhost_hooks::define::Fetched;
use hookhost_hooks::fleet::{Outcome, Status, StatusError};
use hookhost_hooks::generation::{Next, Record};
use hookhost_hooks::hook::Source;
use hookhost_hooks::registry::{Registry, RegistryError};

/// After failures, the wait grows to at most this many intervals.
pub const MAX_BACKOFF_FACTOR: u32 = 8;

/// Pulls the set `text` names, verifies it (every layer's digest, and the signature when the
/// policy asks for one) and applies it as the registry's next generation, named by the set's
/// manifest digest.
pub fn apply_set(
    text: &str,
    registry: &Registry,
    options: &Options,
    apply_options: apply::Options,
) -> Result<Applied, OciError> {
    let set = pull_set(text, options)?;
    let fetch = |path: &Path| -> Option<Result<Fetched, String>> {
        let title = path.to_string_lossy();
        match set.modules.get(title.as_ref()) {
            Some((digest, bytes)) => Some(Ok(Fetched {
                bytes: bytes.clone(),
                source: Source {
                    reference: text.to_string(),
                    manifest_digest: set.digest.clone(),
                    module_digest: digest.clone(),
                    signer: set.signer.clone(),
                    // A set's file defines its hooks; the artifact carries no other definition.
                    definition: None,
                },
            })),
            None if !path.is_absolute() => {
                Some(Err(format!("the set has no module layer titled {title}")))
            }
            None => None,
        }
    };
    let doc = Document {
        file: set::file_name(text, &set.digest),
        bytes: set.file.clone(),
        next: Next {
            id: set.digest.clone(),
            source: text.to_string(),
        },
    };
    Ok(apply::apply_document(doc, registry, apply_options, &fetch)?)
}

/// What one attempt did.
#[derive(Debug)]
pub enum Attempt {
    /// The node was already on the set the reference names.
    Unchanged(Record),
    /// The node switched to the set.
    Applied(Applied),
    /// Nothing changed on the node.
    Failed {
        /// The manifest digest the reference named, when it could be resolved.
        target: Option<String>,
        /// Why.
        error: OciError,
    },
}

impl Attempt {
    /// The manifest digest the reference named.
    pub fn target(&self) -> Option<&str> {
        match self {
            Attempt::Unchanged(record) => Some(&record.id),
            Attempt::Applied(applied) => applied.generation.as_ref().map(|g| g.id.as_str()),
            Attempt::Failed { target, .. } => target.as_deref(),
        }
    }
}

/// One attempt: resolve, and unless the node is on it already, pull, verify and apply.
pub fn converge(
    text: &str,
    registry: &Registry,
    options: &Options,
    apply_options: apply::Options,
) -> Attempt {
    let digest = match set::resolve(text, options) {
        Ok(digest) => digest,
        Err(error) => {
            return Attempt::Failed {
                target: None,
                error,
            };
        }
    };
    if let Some(now) = registry.generation().filter(|g| g.id == digest) {
        return Attempt::Unchanged(now.clone());
    }
    match apply_set(text, registry, options, apply_options) {
        Ok(applied) => Attempt::Applied(applied),
        Err(error) => Attempt::Failed {
            target: Some(digest),
            error,
        },
    }
}

/// Whether a failure is a refusal of what the registry served (a signature, a digest), as
/// opposed to not reaching it.
pub fn is_verification_failure(error: &OciError) -> bool {
    matches!(
        error,
        OciError::Unverified { .. }
            | OciError::Tampered { .. }
            | OciError::NotSet { .. }
            | OciError::NoKeys
            | OciError::Key { .. }
    )
}

/// The watch loop's settings.
pub struct Watch<'a> {
    /// The `oci://` reference of the set.
    pub reference: &'a str,
    /// How long between attempts when the last one succeeded.
    pub interval: Duration,
    /// One attempt, then return.
    pub once: bool,
    /// Prune and dry-run, as for one apply.
    pub apply: apply::Options,
    /// Where the status is kept.
    pub status_file: &'a Path,
}

/// Runs attempts until `once` (or forever), writing the status after each and handing it to
/// `report` with the attempt; returns the last status.
pub fn watch(
    watch: &Watch,
    open: &dyn Fn() -> Result<Registry, RegistryError>,
    options: &Options,
    report: &mut dyn FnMut(&Status, &Attempt),
) -> Result<Status, StatusError> {
    let mut status = Status::read(watch.status_file)?.filter(|s| s.reference == watch.reference);
    loop {
        let attempt = match open() {
            Ok(registry) => converge(watch.reference, &registry, options, watch.apply),
            Err(e) => Attempt::Failed {
                target: None,
                error: e.into(),
            },
        };
        let next = update(status.as_ref(), watch, &attempt);
        next.write(watch.status_file)?;
        report(&next, &attempt);
        let wait = (next.next_attempt - next.last_attempt)
            .to_std()
            .unwrap_or(watch.interval);
        status = Some(next);
        if watch.once {
            return Ok(status.expect("just set"));
        }
        std::thread::sleep(wait);
    }
}

/// The status after `attempt`.
fn update(before: Option<&Status>, watch: &Watch, attempt: &Attempt) -> Status {
    let now = Utc::now();
    let verification_failures = before.map_or(0, |s| s.verification_failures);
    let mut status = Status {
        reference: watch.reference.to_string(),
        target: attempt.target().map(str::to_string),
        generation: before.and_then(|s| s.generation.clone()),
        last_attempt: now,
        last_outcome: Outcome::Unchanged,
        last_success: Some(now),
        consecutive_failures: 0,
        verification_failures,
        last_error: None,
        next_attempt: now + spread(watch.interval),
    };
    match attempt {
        Attempt::Unchanged(record) => status.generation = Some(record.clone()),
        Attempt::Applied(applied) => {
            status.last_outcome = Outcome::Applied;
            if applied.generation.is_some() {
                status.generation = applied.generation.clone();
            }
        }
        Attempt::Failed { error, .. } => {
            let failures = before.map_or(0, |s| s.consecutive_failures) + 1;
            let verification = is_verification_failure(error);
            status.last_outcome = match verification {
                true => Outcome::Unverified,
                false => Outcome::Failed,
            };
            status.last_success = before.and_then(|s| s.last_success);
            status.consecutive_failures = failures;
            status.verification_failures += u64::from(verification);
            status.last_error = Some(hookhost_hooks::error_chain(error));
            status.next_attempt = now + spread(backoff(watch.interval, failures));
        }
    }
    status
}

/// The wait after `failures` failed attempts in a row: the interval doubled per failure, at
/// most [`MAX_BACKOFF_FACTOR`] intervals.
pub fn backoff(interval: Duration, failures: u64) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(3);
    interval * factor.min(MAX_BACKOFF_FACTOR)
}

/// `wait` and up to a tenth more, drawn anew each time: the nodes of a fleet started together
/// (or failing together, at a registry outage) spread their requests instead of arriving at
/// the registry in the same second, interval after interval.
fn spread(wait: Duration) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let seed = u64::from(now.subsec_nanos()) ^ (u64::from(std::process::id()) << 32);
    // One round of splitmix64: enough to decorrelate nodes, nothing secret.
    let mut x = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    wait + wait.mul_f64((x % 1000) as f64 / 10_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_back_off_up_to_eight_intervals_and_every_wait_is_spread() {
        let s = Duration::from_secs(30);
        let waits: Vec<u64> = (1..=6).map(|n| backoff(s, n).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 240, 240]);
        for _ in 0..100 {
            let spread = spread(s);
            assert!(spread >= s && spread < s + s / 10, "{spread:?}");
        }
    }
}
