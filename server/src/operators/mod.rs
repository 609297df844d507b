//! Streaming operators: pure functions and accumulators, no I/O.

pub mod latency;
pub mod stats;
pub mod window;
