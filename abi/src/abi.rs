//! The ABI ids (ARCHITECTURE.md §3) and the one trait that isolates every per-ABI decision.

use std::fmt;
use std::str::FromStr;

use crate::arch::Arch;
use crate::layout::Layout;
use crate::plan::CallPlan;
use crate::reg::Reg;
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

    /// The `clang --target=` triple that compiles for this ABI ([`Toolchain::clang_target`]).
    pub fn clang_target(self) -> &'static str {
        self.spec().toolchain().clang_target
    }

    /// Whether this is a Windows ABI (COFF objects, `__chkstk` stack probes).
    pub fn is_windows(self) -> bool {
        matches!(self, Abi::I386Win32 | Abi::X86_64Win64)
    }

    /// The architecture this ABI's code runs on.
    pub fn arch(self) -> Arch {
        match self {
            Abi::I386Sysv | Abi::I386Win32 => Arch::X86,
            Abi::X86_64Sysv | Abi::X86_64Win64 => Arch::X86_64,
            Abi::Aarch64Aapcs64 | Abi::Aarch64Apple => Arch::Aarch64,
        }
    }

    /// Bytes in a pointer / general register.
    pub fn word_size(self) -> u32 {
        self.arch().word_size()
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
            Abi::I386Sysv => &crate::i386_sysv::SPEC,
            Abi::I386Win32 => &crate::i386_win32::SPEC,
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

    /// Where every argument of one call of the variadic `sig` lives, the `unnamed` ones
    /// (already promoted: [`crate::Type::promoted`]) after the named ones.
    ///
    /// ```
    /// use backcall_abi::{Abi, Scalar, Signature, Type};
    /// let printf_like = Signature {
    ///     variadic: true,
    ///     ..Signature::new(Type::scalar(Scalar::Int), vec![Type::scalar(Scalar::Pointer)])
    /// };
    /// let call = Abi::Aarch64Apple.plan_call(&printf_like, &[Type::scalar(Scalar::Double)]);
    /// // Apple arm64 puts every unnamed argument on the stack.
    /// assert!(call.unwrap().to_string().contains("unnamed double (size 8, align 8): [0..8] stack+0"));
    /// ```
    pub fn plan_call(self, sig: &Signature, unnamed: &[crate::Type]) -> Result<CallPlan, AbiError> {
        crate::plan::plan_call(self, sig, unnamed)
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

    /// How `packed` and `aligned(N)` combine in struct and union layouts.
    fn record_rules(&self) -> crate::layout::RecordRules {
        crate::layout::RecordRules::Gcc
    }

    /// What a `va_list` parameter is: a pointer (`char *`, or x86-64 SysV's `__va_list_tag[1]`
    /// adjusted to a pointer to its element), or a record passed by value.
    fn va_list(&self) -> crate::layout::VaList {
        crate::layout::VaList::Pointer
    }

    /// The form of the `va_list` that `va_start` makes (by default a `char *` into the stack
    /// arguments).
    fn va_start(&self) -> crate::plan::VaStart {
        crate::plan::VaStart::Stack
    }

    /// The scalar whose layout and passing `long double` takes: itself (x87's 80-bit format,
    /// the default), [`Scalar::Double`] (Windows, Apple arm64) or [`Scalar::Binary128`]
    /// (AArch64 Linux).
    fn long_double(&self) -> Scalar {
        Scalar::LongDouble
    }

    /// Whether an unnamed bit-field (`int : 3`, `int : 0`) aligns its record as a member of
    /// its type would; under [`crate::layout::RecordRules::Gcc`] only (System V ignores them).
    fn unnamed_bit_fields_align(&self) -> bool {
        false
    }

    /// Whether plain `char` is signed.
    fn char_is_signed(&self) -> bool {
        true
    }

    /// Whether functions of `conv` exist on this ABI. By default the ABI's own and the i386
    /// keywords, which the 64-bit compilers accept and ignore.
    fn has_convention(&self, conv: crate::Convention) -> bool {
        conv == crate::Convention::Default || conv.is_i386()
    }

    /// `wchar_t`'s size (its alignment too) and whether it is signed: by default a signed
    /// 32-bit integer (Linux on x86, Apple).
    fn wchar(&self) -> (u32, bool) {
        (4, true)
    }

    /// The integer argument registers under `conv`, in order (`rdi`, `rsi`, ...; `ecx`, `edx`).
    fn int_arg_regs(&self, conv: crate::Convention) -> &'static [Reg];

    /// The integer result registers, in order (`rax`, `rdx`; `x0`, `x1`, ...).
    fn int_ret_regs(&self) -> &'static [Reg];

    /// The float/vector argument and result registers, in order (`xmm0`, ...; `v0`, ...).
    fn float_regs(&self) -> &'static [Reg];

    /// Integer argument register `i` under `conv`, if there is one.
    fn int_arg_reg(&self, i: u8, conv: crate::Convention) -> Option<Reg> {
        self.int_arg_regs(conv).get(usize::from(i)).copied()
    }

    /// Integer result register `i`, if there is one.
    fn int_ret_reg(&self, i: u8) -> Option<Reg> {
        self.int_ret_regs().get(usize::from(i)).copied()
    }

    /// Float/vector register `i`, if there is one.
    fn float_reg(&self, i: u8) -> Option<Reg> {
        self.float_regs().get(usize::from(i)).copied()
    }

    /// What a call preserves and what it may destroy, and the stack alignment at a call.
    fn registers(&self) -> RegisterFile;

    /// Assigns every argument and the result of `sig` (whose layouts are given) a place;
    /// [`Abi::plan`] completes the answer into a [`CallPlan`].
    fn place(
        &self,
        conv: crate::Convention,
        args: &[Layout],
        ret: &Layout,
    ) -> Result<crate::plan::Placement, AbiError>;

    /// Places one call of a variadic function: `args[..named]` are its named parameters, the
    /// rest the unnamed arguments, already promoted ([`crate::Type::promoted`]). By default
    /// the unnamed arguments travel exactly as named ones would: x86-64 SysV (psABI §3.5.7
    /// "Variable Argument Lists": `al` only bounds the vector registers used), AAPCS64 on
    /// Linux (§6.8.2's rules do not tell named from unnamed arguments) and Win64 (Microsoft
    /// "x64 calling convention", Varargs: "the normal register parameter passing convention
    /// applies"; the caller puts a float in the integer register as well, so the float
    /// register holds it too).
    fn place_variadic(
        &self,
        conv: crate::Convention,
        args: &[Layout],
        named: usize,
        ret: &Layout,
    ) -> Result<crate::plan::Placement, AbiError> {
        let _ = named;
        self.place(conv, args, ret)
    }

    /// The compilers that emit code for this ABI, and the authority its plans follow.
    fn toolchain(&self) -> Toolchain;

    /// The moves this ABI's typed stubs make (`abi/asm/<abi>/entry.s`; see [`crate::stubs`]).
    fn stub_family(&self) -> crate::stubs::StubFamily;
}

/// The compilers that emit code for an ABI, and whose rules its plans follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Toolchain {
    /// the `clang --target=` triple
    pub clang_target: &'static str,
    /// the programs of the GCC that targets this ABI's platform, preferred first (none for
    /// Apple platforms)
    pub gcc: &'static [&'static str],
    /// whose rules the plans follow when compilers disagree
    pub authority: Authority,
}

/// Where an ABI's truth comes from: a document, or the platform's own compiler where no
/// document covers a convention. The plans follow it; every other compiler is reported as
/// agreeing or disagreeing with it, never as backcall's failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Authority {
    /// the source, cited (the document and the compiler that implements it)
    pub source: &'static str,
    /// which compilers implement it, and so judge backcall
    pub judge: Judge,
}

/// Which compilers may judge an ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judge {
    /// the platform's GCC
    Gcc,
    /// clang from this major version on (the newest one installed judges)
    Clang {
        /// the oldest major version that implements the authority's rules
        since: u32,
    },
}

/// The register contract of a call on one ABI: what a caller may rely on across a call and
/// what it must expect to lose. Registers are named as the ABI documents and the rest of this
/// crate spell them (`rbx`, `xmm6`, `x19`, `v8`); a register named in neither list (x87's
/// stack, flags, AArch64's `x18`) is not described.
///
/// The emulated machine (`backcall-emu-tests`) puts canaries in every callee-saved register
/// around a guest call and poisons every caller-saved one at a dispatch (ARCHITECTURE.md §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegisterFile {
    /// the stack pointer (`esp`, `rsp`, `sp`)
    pub stack_pointer: Reg,
    /// where a call leaves its return address: the link register (`x30`), or `None` when the
    /// call instruction pushes it on the stack (x86)
    pub link_register: Option<Reg>,
    /// general registers a callee must preserve
    pub callee_saved: &'static [Reg],
    /// float/vector registers a callee must preserve, but only their low
    /// [`RegisterFile::callee_saved_float_bytes`] bytes, and named by that view where it is not
    /// the whole register (AArch64 `d8`, the low 64 bits of `v8`): the rest is caller-saved
    pub callee_saved_float: &'static [Reg],
    /// how many low bytes of each [`RegisterFile::callee_saved_float`] register survive a call
    pub callee_saved_float_bytes: u32,
    /// general registers a call may destroy: argument and result registers included
    pub caller_saved: &'static [Reg],
    /// float/vector registers a call may destroy whole
    pub caller_saved_float: &'static [Reg],
    /// the alignment of the stack pointer at a call instruction (on x86: before the call
    /// pushes the return address)
    pub call_alignment: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ArgPass, Convention, Loc, RetPlan, Type};

    /// Every register a plan puts an argument, a result or the hidden result pointer in.
    fn plan_registers(abi: Abi, conv: Convention) -> Vec<(String, bool)> {
        let s = Type::scalar;
        let big = Type::anon_struct(std::iter::repeat_n(s(Scalar::LongLong), 5));
        let mut args = vec![s(Scalar::Int); 10];
        args.extend(vec![s(Scalar::Double); 10]);
        let sigs = [
            Signature { conv, ..Signature::new(big, args.clone()) },
            Signature { conv, ..Signature::new(s(Scalar::LongLong), args.clone()) },
            Signature { conv, ..Signature::new(s(Scalar::Double), args) },
        ];
        let mut found = Vec::new();
        for sig in &sigs {
            let plan = abi.plan(sig).unwrap();
            let mut locs: Vec<(Loc, bool)> = Vec::new();
            for arg in &plan.args {
                match &arg.pass {
                    ArgPass::Direct(pieces) => locs.extend(pieces.iter().map(|p| (p.loc, false))),
                    ArgPass::Indirect { pointer } => locs.push((*pointer, false)),
                }
            }
            match &plan.ret {
                RetPlan::Direct { pieces, .. } => locs.extend(pieces.iter().map(|p| (p.loc, true))),
                RetPlan::Indirect { pointer, returned_in } => {
                    locs.push((*pointer, false));
                    locs.extend(returned_in.map(|r| (r, true)));
                }
                RetPlan::Void => {}
            }
            for (loc, ret) in locs {
                if let Loc::Int(_) | Loc::Float(_) = loc {
                    found.push((plan.loc_name(loc, ret), matches!(loc, Loc::Float(_))));
                }
            }
        }
        found
    }

    #[test]
    fn register_files_are_consistent_with_the_plans() {
        for abi in Abi::ALL {
            let r = abi.spec().registers();
            let lists =
                [r.callee_saved, r.caller_saved, r.callee_saved_float, r.caller_saved_float];
            let all: Vec<Reg> = lists.concat();
            let mut unique: Vec<&str> = all.iter().map(|r| r.name()).collect();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), all.len(), "{abi}: a register in two lists: {all:?}");
            assert!(!all.contains(&r.stack_pointer), "{abi}");
            assert!(r.link_register.is_none_or(|lr| !all.contains(&lr)), "{abi}");
            assert!(r.call_alignment.is_power_of_two() && r.call_alignment >= abi.word_size());
            assert!(r.callee_saved_float_bytes <= 16, "{abi}");
            assert_eq!(r.callee_saved_float.is_empty(), r.callee_saved_float_bytes == 0, "{abi}");
            // Argument and result registers are the callee's to destroy.
            let convs: &[Convention] = match abi.word_size() {
                4 => &[Convention::Default, Convention::Fastcall, Convention::Thiscall],
                _ => &[Convention::Default],
            };
            for &conv in convs {
                for (name, float) in plan_registers(abi, conv) {
                    let list = if float { r.caller_saved_float } else { r.caller_saved };
                    assert!(
                        list.iter().any(|r| r.name() == name),
                        "{abi} {conv:?}: {name} not caller-saved"
                    );
                }
            }
        }
    }
}
