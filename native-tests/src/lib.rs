//! native-tests: host-native suites, and the C generation the compiler oracles share.
//!
//! * [`cgen`]: C text for the compiler oracle (types as declarations, layouts as
//!   `_Static_assert`s), used by the native suites here and by `backcall-emu-tests`.
//! * [`oracle`]: the host compiler oracle: generated C callers, compiled by the host's C
//!   compiler, call callbacks with graffiti values and check every byte both ways.
//! * [`suite`]: how the oracle suites of both crates drive an oracle: the corpus as cases,
//!   random signatures, shrinking the failing ones.

pub mod cgen;
pub mod errors;
pub mod oracle;
pub mod suite;
