//! native-tests: the host-native suites and the host front end of the compiler oracle.
//!
//! * [`host`]: the host compiler oracle: callers from `backcall-oracle`, compiled by the
//!   host's C compiler into a shared library, call real callbacks with graffiti values; every
//!   byte is checked both ways.
//! * [`errors`]: the runtime's error reports, collected for assertions.
//! * [`alloc_meter`]: a counting allocator: what one parse or plan allocates at its peak.
//! * [`raw_call`]: calls with a chosen hidden result buffer, and measuring a callee's pop.

pub mod alloc_meter;
pub mod errors;
pub mod host;
pub mod raw_call;
