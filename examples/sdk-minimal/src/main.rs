//! The smallest hook as users write one: the guest SDK reads the container's state from stdin
//! and parses it (with the stage, args and environment), the body accepts it, exit 0. What
//! `benches/stage.rs` times as "a real hook", beside the hand-written `noop`.

use std::process::ExitCode;

use hookhost_guest::run;

fn main() -> ExitCode {
    run(|hook| {
        // Parsed, not merely drained: a malformed state fails here, as in any real hook.
        let _ = (&hook.state.id, &hook.state.status);
        Ok(())
    })
}
