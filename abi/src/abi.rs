//! The ABI ids (DESIGN §3) and the one trait that isolates every per-ABI decision.

use std::fmt;
use std::str::FromStr;

use crate::layout::Layout;
use crate::plan::CallPlan;
use crate::types::{Scalar, Signature};
use crate::AbiError;

/// One calling convention on one architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Abi {
    /// i386 System V (Linux): everything on the stack, x87 float results.
    I386Sysv,
    /// i386 Windows (MSVC): cdecl, stdcall, fastcall, thiscall.
    I386Win32,
    /// x86-64 System V (Linux, BSD, macOS).
    X86_64Sysv,
    /// x86-64 Windows.
    X86_64Win64,
    /// AArch64 AAPCS64 (Linux).
    Aarch64Aapcs64,
    /// AArch64 Apple (Darwin) variant of AAPCS64.
    Aarch64Apple,
}

impl Abi {
    /// Every ABI backcall covers, in report order.
    pub const ALL: [Abi; 6] = [
        Abi::I386Sysv,
        Abi::I386Win32,
        Abi::X86_64Sysv,
        Abi::X86_64Win64,
        Abi::Aarch64Aapcs64,
        Abi::Aarch64Apple,
    ];

    /// The id used by the CLI, snapshots and reports.
    pub fn id(self) -> &'static str {
        match self {
            Abi::I386Sysv => "i386-sysv",
            Abi::I386Win32 => "i386-win32",
            Abi::X86_64Sysv => "x86_64-sysv",
            Abi::X86_64Win64 => "x86_64-win64",
            Abi::Aarch64Aapcs64 => "aarch64-aapcs64",
            Abi::Aarch64Apple => "aarch64-apple",
        }
    }

    /// The `clang --target=` triple whose C compiler is this ABI's oracle.
    pub fn clang_target(self) -> &'static str {
        match self {
            Abi::I386Sysv => "i686-linux-gnu",
            Abi::I386Win32 => "i686-pc-windows-msvc",
            Abi::X86_64Sysv => "x86_64-linux-gnu",
            Abi::X86_64Win64 => "x86_64-pc-windows-msvc",
            Abi::Aarch64Aapcs64 => "aarch64-linux-gnu",
            Abi::Aarch64Apple => "arm64-apple-macos",
        }
    }

    /// Bytes in a pointer / general register.
    pub fn word_size(self) -> u32 {
        match self {
            Abi::I386Sysv | Abi::I386Win32 => 4,
            _ => 8,
        }
    }

    /// The ABI the host runs natively, if backcall covers it.
    pub fn host() -> Option<Abi> {
        if cfg!(all(target_arch = "x86_64", unix)) {
            Some(Abi::X86_64Sysv)
        } else if cfg!(all(target_arch = "x86_64", windows)) {
            Some(Abi::X86_64Win64)
        } else if cfg!(all(target_arch = "x86", windows)) {
            Some(Abi::I386Win32)
        } else if cfg!(target_arch = "x86") {
            Some(Abi::I386Sysv)
        } else if cfg!(all(target_arch = "aarch64", target_vendor = "apple")) {
            Some(Abi::Aarch64Apple)
        } else if cfg!(target_arch = "aarch64") {
            Some(Abi::Aarch64Aapcs64)
        } else {
            None
        }
    }

    /// This ABI's rules.
    pub fn spec(self) -> &'static dyn AbiSpec {
        match self {
            Abi::I386Sysv => &crate::i386_sysv::I386Sysv,
            Abi::I386Win32 => &crate::i386_win32::I386Win32,
            Abi::X86_64Sysv => &crate::x86_64_sysv::X86_64Sysv,
            Abi::X86_64Win64 => &crate::x86_64_win64::X86_64Win64,
            Abi::Aarch64Aapcs64 => &crate::aarch64_aapcs64::Aarch64Aapcs64,
            Abi::Aarch64Apple => &crate::aarch64_apple::Aarch64Apple,
        }
    }

    /// The size and alignment of a type, with field offsets, on this ABI.
    pub fn layout(self, ty: &crate::Type) -> Result<Layout, AbiError> {
        crate::layout::layout_of(self, ty)
    }

    /// Where every argument and the result of `sig` live on this ABI.
    pub fn plan(self, sig: &Signature) -> Result<CallPlan, AbiError> {
        crate::plan::plan_for(self, sig)
    }
}

impl fmt::Display for Abi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl FromStr for Abi {
    type Err = String;

    fn from_str(s: &str) -> Result<Abi, String> {
        Abi::ALL.into_iter().find(|abi| abi.id() == s).ok_or_else(|| {
            let ids: Vec<_> = Abi::ALL.iter().map(|a| a.id()).collect();
            format!("unknown ABI `{s}`: expected one of {}", ids.join(", "))
        })
    }
}

/// Every per-ABI decision, in one small trait (the Cranelift `ABIMachineSpec` model).
///
/// An implementation lives in `abi/src/<abi>.rs` and states only its own ABI's rules,
/// citing the ABI document section for each.
pub trait AbiSpec: Sync {
    /// Which ABI this is.
    fn abi(&self) -> Abi;

    /// `(size, alignment)` of a scalar, or `None` when the ABI does not support it yet.
    fn scalar_layout(&self, s: Scalar) -> Option<(u32, u32)>;

    /// Whether plain `char` is signed.
    fn char_is_signed(&self) -> bool {
        true
    }

    /// Name of integer argument register `i` under `conv` (`rdi`, `ecx`, `x0`, ...).
    fn int_arg_reg_name(&self, i: u8, conv: crate::Convention) -> &'static str;

    /// Name of integer result register `i` (`rax`, `edx`, `x1`, ...).
    fn int_ret_reg_name(&self, i: u8) -> &'static str;

    /// Name of float/vector register `i` (`xmm0`, `v3`, ...).
    fn float_reg_name(&self, i: u8) -> &'static str;

    /// Assigns every argument and the result of `sig` (whose layouts are given) a place.
    fn plan(&self, sig: &Signature, args: &[Layout], ret: &Layout) -> Result<CallPlan, AbiError>;
}
