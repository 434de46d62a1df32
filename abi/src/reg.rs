//! The registers the ABIs name, as one typed list: the ABI files state their register usage
//! with these, plans print their names, and the emulated machine maps each to its own register
//! id with an exhaustive match (no name is looked up at run time).

use std::fmt;

/// Which register file a [`Reg`] belongs to; [`Reg::number`] is its index there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegClass {
    /// IA-32 general registers `eax` .. `edi`, by encoding
    Gpr32,
    /// x86-64 general registers `rax` .. `r15`, by encoding
    Gpr64,
    /// SSE registers `xmm0` .. `xmm15`
    Xmm,
    /// AArch64 general registers `x0` .. `x30`
    X,
    /// the AArch64 stack pointer
    Sp,
    /// AArch64 vector registers `v0` .. `v31` (all 128 bits)
    V,
    /// AArch64 `d0` .. `d31`, the low 64 bits of `v0` .. `v31`
    D,
}

macro_rules! registers {
    ($($class:ident { $($name:ident = $text:literal $n:literal,)* })*) => {
        /// A machine register of one of backcall's architectures.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum Reg {
            $($($name,)*)*
        }

        impl Reg {
            /// Every register.
            pub const ALL: &'static [Reg] = &[$($(Reg::$name,)*)*];

            /// The name assembly and plans use (`rdi`, `xmm0`, `x30`, `d8`).
            pub fn name(self) -> &'static str {
                match self {
                    $($(Reg::$name => $text,)*)*
                }
            }

            /// Its register file.
            pub fn class(self) -> RegClass {
                match self {
                    $($(Reg::$name => RegClass::$class,)*)*
                }
            }

            /// Its index in its register file (the encoding on x86).
            pub fn number(self) -> u8 {
                match self {
                    $($(Reg::$name => $n,)*)*
                }
            }
        }
    };
}

registers! {
    Gpr32 {
        Eax = "eax" 0,
        Ecx = "ecx" 1,
        Edx = "edx" 2,
        Ebx = "ebx" 3,
        Esp = "esp" 4,
        Ebp = "ebp" 5,
        Esi = "esi" 6,
        Edi = "edi" 7,
    }
    Gpr64 {
        Rax = "rax" 0,
        Rcx = "rcx" 1,
        Rdx = "rdx" 2,
        Rbx = "rbx" 3,
        Rsp = "rsp" 4,
        Rbp = "rbp" 5,
        Rsi = "rsi" 6,
        Rdi = "rdi" 7,
        R8 = "r8" 8,
        R9 = "r9" 9,
        R10 = "r10" 10,
        R11 = "r11" 11,
        R12 = "r12" 12,
        R13 = "r13" 13,
        R14 = "r14" 14,
        R15 = "r15" 15,
    }
    Xmm {
        Xmm0 = "xmm0" 0,
        Xmm1 = "xmm1" 1,
        Xmm2 = "xmm2" 2,
        Xmm3 = "xmm3" 3,
        Xmm4 = "xmm4" 4,
        Xmm5 = "xmm5" 5,
        Xmm6 = "xmm6" 6,
        Xmm7 = "xmm7" 7,
        Xmm8 = "xmm8" 8,
        Xmm9 = "xmm9" 9,
        Xmm10 = "xmm10" 10,
        Xmm11 = "xmm11" 11,
        Xmm12 = "xmm12" 12,
        Xmm13 = "xmm13" 13,
        Xmm14 = "xmm14" 14,
        Xmm15 = "xmm15" 15,
    }
    X {
        X0 = "x0" 0,
        X1 = "x1" 1,
        X2 = "x2" 2,
        X3 = "x3" 3,
        X4 = "x4" 4,
        X5 = "x5" 5,
        X6 = "x6" 6,
        X7 = "x7" 7,
        X8 = "x8" 8,
        X9 = "x9" 9,
        X10 = "x10" 10,
        X11 = "x11" 11,
        X12 = "x12" 12,
        X13 = "x13" 13,
        X14 = "x14" 14,
        X15 = "x15" 15,
        X16 = "x16" 16,
        X17 = "x17" 17,
        X18 = "x18" 18,
        X19 = "x19" 19,
        X20 = "x20" 20,
        X21 = "x21" 21,
        X22 = "x22" 22,
        X23 = "x23" 23,
        X24 = "x24" 24,
        X25 = "x25" 25,
        X26 = "x26" 26,
        X27 = "x27" 27,
        X28 = "x28" 28,
        X29 = "x29" 29,
        X30 = "x30" 30,
    }
    Sp {
        Sp = "sp" 0,
    }
    V {
        V0 = "v0" 0,
        V1 = "v1" 1,
        V2 = "v2" 2,
        V3 = "v3" 3,
        V4 = "v4" 4,
        V5 = "v5" 5,
        V6 = "v6" 6,
        V7 = "v7" 7,
        V8 = "v8" 8,
        V9 = "v9" 9,
        V10 = "v10" 10,
        V11 = "v11" 11,
        V12 = "v12" 12,
        V13 = "v13" 13,
        V14 = "v14" 14,
        V15 = "v15" 15,
        V16 = "v16" 16,
        V17 = "v17" 17,
        V18 = "v18" 18,
        V19 = "v19" 19,
        V20 = "v20" 20,
        V21 = "v21" 21,
        V22 = "v22" 22,
        V23 = "v23" 23,
        V24 = "v24" 24,
        V25 = "v25" 25,
        V26 = "v26" 26,
        V27 = "v27" 27,
        V28 = "v28" 28,
        V29 = "v29" 29,
        V30 = "v30" 30,
        V31 = "v31" 31,
    }
    D {
        D0 = "d0" 0,
        D1 = "d1" 1,
        D2 = "d2" 2,
        D3 = "d3" 3,
        D4 = "d4" 4,
        D5 = "d5" 5,
        D6 = "d6" 6,
        D7 = "d7" 7,
        D8 = "d8" 8,
        D9 = "d9" 9,
        D10 = "d10" 10,
        D11 = "d11" 11,
        D12 = "d12" 12,
        D13 = "d13" 13,
        D14 = "d14" 14,
        D15 = "d15" 15,
        D16 = "d16" 16,
        D17 = "d17" 17,
        D18 = "d18" 18,
        D19 = "d19" 19,
        D20 = "d20" 20,
        D21 = "d21" 21,
        D22 = "d22" 22,
        D23 = "d23" 23,
        D24 = "d24" 24,
        D25 = "d25" 25,
        D26 = "d26" 26,
        D27 = "d27" 27,
        D28 = "d28" 28,
        D29 = "d29" 29,
        D30 = "d30" 30,
        D31 = "d31" 31,
    }
}

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_numbers_count_up_per_class() {
        let mut names: Vec<_> = Reg::ALL.iter().map(|r| r.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Reg::ALL.len());
        // (class, number) names one register; numbers count up from 0 within a class
        let of = |class, n| Reg::ALL.iter().filter(move |r| r.class() == class && r.number() == n);
        for r in Reg::ALL {
            assert_eq!(of(r.class(), r.number()).collect::<Vec<_>>(), [r], "{r}");
            assert!(r.number() == 0 || of(r.class(), r.number() - 1).count() == 1, "{r}");
        }
        assert_eq!(of(RegClass::Gpr64, 10).collect::<Vec<_>>(), [&Reg::R10]);
        assert_eq!(of(RegClass::X, 31).count(), 0);
    }
}
