//! # backcall-abi: per-ABI knowledge
//!
//! Layering, bottom up:
//! 1. [`types`]: ABI-independent C types and signatures ([`Type`], [`Signature`]).
//! 2. [`layout`]: size, alignment and member offsets of a type on one [`Abi`] ([`Layout`]).
//! 3. [`plan`]: where each argument's bytes live and how the result returns ([`CallPlan`]).
//! 4. One file per ABI (`i386_sysv.rs`, `x86_64_sysv.rs`, ...) implementing [`AbiSpec`]: the
//!    only place an ABI rule is written.
//!
//! ```
//! use backcall_abi::{Abi, Scalar, Signature, Type};
//!
//! let sig = Signature::new(Type::scalar(Scalar::Double), vec![Type::scalar(Scalar::Int)]);
//! let plan = Abi::X86_64Sysv.plan(&sig).unwrap();
//! assert_eq!(plan.stack_bytes, 0);
//! println!("{plan}");
//! ```

pub mod abi;
pub mod arch;
pub mod blobs;
pub mod context;
pub mod layout;
pub mod plan;
pub mod reg;
pub mod stubs;
pub mod thunks;
pub mod types;

#[cfg(feature = "proptest")]
pub mod arbitrary;

pub mod aarch64_aapcs64;
pub mod aarch64_apple;
pub mod i386;
pub mod i386_sysv;
pub mod i386_win32;
pub mod x86_64_sysv;
pub mod x86_64_win64;

use std::fmt;

pub use abi::{Abi, AbiSpec, Authority, Judge, RegisterFile, Toolchain};
pub use arch::Arch;
pub use layout::{BitRange, FieldLayout, Layout, Leaf, RecordRules, Shape, VaList, COMPLEX_PARTS};
pub use plan::{
    ArgPass, ArgPlan, CallPlan, Extend, Loc, Piece, RetPlan, ReturnCode, VaStart, VaStartState,
};
pub use reg::{Reg, RegClass};
pub use types::{
    Aggregate, AggregateKind, Convention, Field, Packing, Scalar, Signature, Type,
    MAX_SIGNATURE_NODES, PRAGMA_PACK_VALUES,
};

/// Why a signature or type has no plan on an ABI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbiError {
    /// the ABI that refused
    pub abi: Abi,
    /// what kind of refusal
    pub kind: AbiErrorKind,
    /// what was refused, in words
    pub what: String,
}

/// The kind of an [`AbiError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbiErrorKind {
    /// valid C that this ABI does not support (yet): `__int128` on i386, `...`
    Unsupported,
    /// not a valid C signature for this ABI (an array argument, `__stdcall` on x86-64)
    Invalid,
}

impl AbiError {
    /// Valid C the ABI does not support yet.
    pub fn unsupported(abi: Abi, what: &str) -> AbiError {
        AbiError { abi, kind: AbiErrorKind::Unsupported, what: what.to_string() }
    }

    /// Not valid for this ABI.
    pub fn invalid(abi: Abi, what: &str) -> AbiError {
        AbiError { abi, kind: AbiErrorKind::Invalid, what: what.to_string() }
    }
}

impl fmt::Display for AbiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            AbiErrorKind::Unsupported => {
                write!(f, "{} is not supported on ABI {}", self.what, self.abi)
            }
            AbiErrorKind::Invalid => write!(f, "invalid on ABI {}: {}", self.abi, self.what),
        }
    }
}

impl std::error::Error for AbiError {}

/// Whether integer scalar `s` is signed on `abi` (plain `char` differs between ABIs).
pub fn is_signed(abi: Abi, s: Scalar) -> bool {
    use Scalar::*;
    match s {
        Char => abi.spec().char_is_signed(),
        WChar => abi.spec().wchar().1,
        SChar | Short | Int | Long | LongLong | Int128 | I8 | I16 | I32 | I64 | SSizeT | IntPtr => {
            true
        }
        Float | Double | LongDouble | Binary128 => true,
        _ => false,
    }
}
