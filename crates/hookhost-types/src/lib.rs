//! The vocabulary shared by hookhost (the host) and the hooks it runs (guests built with
//! `hookhost-guest`): OCI stages, the one lenient OCI state, hook kinds, the constants of the
//! host/guest contract, and the format of the stage call the runtime makes back into hookhost.
//!
//! This crate builds for `wasm32-wasip1` and depends on nothing but serde: every literal of the
//! contract is written here once and used by both sides.
#![warn(missing_docs)]

mod call;
mod contract;
mod kind;
mod stage;
mod state;

pub use call::{
    HOOKHOST_EXECUTABLE, RUNTIME_EXECUTABLE, STAGE_EXECUTABLE, START_ANNOTATION, StageCall,
    StartCalls,
};
pub use contract::{
    BUNDLE_GUEST, CDI_ANNOTATION_PREFIX, CDI_SDK_ANNOTATION, ROOTFS_GUEST, STAGE_ENV,
};
pub use kind::HookKind;
pub use stage::{Stage, UnknownStage};
pub use state::{State, StateError};
