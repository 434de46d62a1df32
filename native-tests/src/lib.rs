//! native-tests: the host-native suites and the host front end of the compiler oracle.
//!
//! * [`host`]: the host compiler oracle: callers from `backcall-oracle`, compiled by the
//!   host's C compiler into a shared library, call real callbacks with graffiti values; every
//!   byte is checked both ways.
//! * [`errors`]: the runtime's error reports, collected for assertions.

pub mod errors;
pub mod host;
