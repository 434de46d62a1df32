//! # backcall-oracle: what "correct" means
//!
//! An outside oracle decides whether backcall handles a signature right: C compiled by a real
//! compiler calls a callback with known values, and every byte must arrive both ways. This
//! crate is that oracle's model, shared by its two front ends: the native one
//! (`backcall-native-tests`: the host's compiler, `dlopen`, the host CPU) and the emulated one
//! (`backcall-emu-tests`: any compiler for any ABI, Unicorn). It links no emulator.
//!
//! Layering, bottom up:
//! 1. [`graffiti`]: the values passed and returned.
//! 2. [`case`]: a signature to check ([`Case`]) and its layouts on one ABI ([`Prepared`]).
//! 3. [`cgen`] and [`callers`]: C text for types, layout assertions and the callers.
//! 4. [`compiler`]: the compilers on this machine for an ABI, their versions, the authority.
//! 5. [`compile`]: a batch compiled, rejected callers failed one by one.
//! 6. [`compare`] and [`report`]: the byte comparison and what one run found.
//! 7. [`matrix`]: several compilers' reports of one batch judged together, with the known
//!    compiler disagreements ([`known`]).
//! 8. [`suite`]: the corpus and random signatures the test suites run.

pub mod callers;
pub mod case;
pub mod cgen;
pub mod compare;
pub mod compile;
pub mod compiler;
pub mod graffiti;
pub mod known;
pub mod matrix;
pub mod process;
pub mod report;
pub mod suite;

pub use case::{Case, Prepared};
pub use compare::{Compared, Mismatch, Part};
pub use compiler::{Compiler, Family, Opt, Version};
pub use report::{Failure, Report, RunError, Skip};
