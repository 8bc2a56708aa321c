//! The runc-compatible runtime wrapper.

pub mod argv;
pub mod log;
pub mod start;
pub mod wrapper;
