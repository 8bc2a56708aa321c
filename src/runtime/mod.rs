//! The runc-compatible runtime wrapper.

pub mod argv;
pub mod log;
pub mod select;
pub mod wrapper;
