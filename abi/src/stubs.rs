//! The typed route: which typed stub (if any) turns a C call of a signature into a call of the
//! same arguments with one more argument in front, the slot word as a `void *`.
//!
//! A typed callback's Rust entry is an ordinary function of the signature with a leading
//! pointer. The stub between the thunk and that entry must move every argument from where the
//! C caller put it (the signature's [`CallPlan`]) to where the entry expects it (the plan of the
//! same signature with a leading `void *`): a parallel move. Each ABI's stubs are a small family
//! of static assembly ([`StubFamily`], `abi/asm/<abi>/entry.s`); a signature takes a stub only
//! when the two plans, compared piece by piece, differ by exactly that stub's moves. Otherwise
//! it takes the context route, which fits every signature.

use std::fmt;

use crate::plan::{ArgPass, CallPlan, Loc, Piece};
use crate::thunks::CodePage;
use crate::{Abi, AbiError, Convention, Scalar, Signature, Type};

/// The moves an ABI's typed stubs can make.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StubFamily {
    /// `bc_stub_shift_<k>`: integer argument registers `0..k` each move up one, the slot word
    /// goes in integer register 0; float registers and the stack stay.
    ShiftInt,
    /// `bc_stub_shift_<k>`: the first `k` argument *positions* (an integer and a float register
    /// each) move up one, the slot word goes in position 0; the stack stays.
    ShiftPosition,
    /// i386: `bc_stub_thiscall` puts the slot word in `ecx` for a callee-pops signature (the
    /// entry is `thiscall`: `ecx` and the caller's stack arguments, popped by the callee);
    /// `bc_stub_copy` copies a caller-pops signature's stack arguments below a new first one.
    Frame,
}

/// A typed stub, and what its record needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stub {
    /// `bc_stub_shift_<k>`
    Shift(u32),
    /// `bc_stub_thiscall`
    Thiscall,
    /// `bc_stub_copy`, copying this many bytes of stack arguments
    Copy {
        /// the caller's stack argument bytes
        stack_bytes: u32,
    },
}

/// The i386 stub that passes the slot in `ecx` to a `thiscall` entry.
pub const STUB_THISCALL: &str = "bc_stub_thiscall";
/// The i386 stub that copies the stack arguments below a new first one.
pub const STUB_COPY: &str = "bc_stub_copy";

impl Stub {
    /// The stub's symbol in the code page.
    pub fn symbol(self) -> String {
        match self {
            Stub::Shift(k) => format!("{}{k}", crate::thunks::STUB_SHIFT),
            Stub::Thiscall => STUB_THISCALL.into(),
            Stub::Copy { .. } => STUB_COPY.into(),
        }
    }

    /// The convention of the entry the stub calls (the signature's own, except `thiscall`
    /// behind [`Stub::Thiscall`]).
    pub fn entry_convention(self, sig: &Signature) -> Convention {
        match self {
            Stub::Thiscall => Convention::Thiscall,
            _ => sig.conv,
        }
    }

    /// The record's third word: the stack bytes [`Stub::Copy`] copies, else 0.
    pub fn stack_bytes(self) -> u32 {
        match self {
            Stub::Copy { stack_bytes } => stack_bytes,
            _ => 0,
        }
    }
}

impl fmt::Display for Stub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stub::Copy { stack_bytes } => write!(f, "{} ({stack_bytes} bytes)", self.symbol()),
            _ => f.write_str(&self.symbol()),
        }
    }
}

/// The signature of a typed entry for `sig` behind `stub`: a `void *` in front.
pub fn entry_signature(sig: &Signature, stub: Stub) -> Signature {
    let mut args = Vec::with_capacity(sig.args.len() + 1);
    args.push(Type::Scalar(Scalar::Pointer));
    args.extend(sig.args.iter().cloned());
    Signature { ret: sig.ret.clone(), args, conv: stub.entry_convention(sig), variadic: false }
}

/// The typed stub for `plan` in `code`, or why the signature takes the context route.
pub fn typed_stub(plan: &CallPlan, code: &CodePage) -> Result<Stub, String> {
    let abi = plan.abi;
    if plan.signature.variadic {
        // The stubs move a fixed set of arguments; a handler reads unnamed ones by the plan.
        return Err("a variadic signature takes the context route".into());
    }
    let candidate = match abi.spec().stub_family() {
        StubFamily::ShiftInt => Stub::Shift(int_registers(plan)),
        StubFamily::ShiftPosition => Stub::Shift(plan.args.len() as u32),
        StubFamily::Frame if plan.callee_pop > 0 => Stub::Thiscall,
        StubFamily::Frame => Stub::Copy { stack_bytes: plan.stack_bytes },
    };
    if code.symbol(&candidate.symbol()).is_none() {
        return Err(format!("{abi} has no typed stub `{}`", candidate.symbol()));
    }
    let entry = abi.plan(&entry_signature(&plan.signature, candidate)).map_err(reason)?;
    let moved = moves(abi.spec().stub_family(), candidate);
    matches(plan, &entry, moved).map(|()| candidate)
}

fn reason(e: AbiError) -> String {
    format!("the entry's signature has no plan: {e}")
}

/// How many integer argument registers `plan` uses (the highest one, plus one).
fn int_registers(plan: &CallPlan) -> u32 {
    let mut n = 0;
    for a in &plan.args {
        let locs: Vec<Loc> = match &a.pass {
            ArgPass::Direct(pieces) => pieces.iter().map(|p| p.loc).collect(),
            ArgPass::Indirect { pointer } => vec![*pointer],
        };
        for loc in locs {
            if let Loc::Int(r) = loc {
                n = n.max(u32::from(r) + 1);
            }
        }
    }
    n
}

/// Where a stub moves an argument location, and where it puts the slot word.
struct Moves {
    map: fn(Stub, Loc) -> Option<Loc>,
    stub: Stub,
    slot: Loc,
}

fn moves(family: StubFamily, stub: Stub) -> Moves {
    match (family, stub) {
        (StubFamily::ShiftInt, _) => Moves { map: shift_int, stub, slot: Loc::Int(0) },
        (StubFamily::ShiftPosition, _) => Moves { map: shift_position, stub, slot: Loc::Int(0) },
        (StubFamily::Frame, Stub::Thiscall) => Moves { map: keep, stub, slot: Loc::Int(0) },
        (StubFamily::Frame, _) => Moves { map: copy_frame, stub, slot: Loc::Stack(0) },
    }
}

fn shift_int(stub: Stub, loc: Loc) -> Option<Loc> {
    let Stub::Shift(k) = stub else { return None };
    match loc {
        Loc::Int(r) if u32::from(r) < k => Some(Loc::Int(r + 1)),
        Loc::Int(_) => None,
        other => Some(other),
    }
}

fn shift_position(stub: Stub, loc: Loc) -> Option<Loc> {
    let Stub::Shift(k) = stub else { return None };
    match loc {
        Loc::Int(r) | Loc::Float(r) if u32::from(r) >= k => None,
        Loc::Int(r) => Some(Loc::Int(r + 1)),
        Loc::Float(r) => Some(Loc::Float(r + 1)),
        other => Some(other),
    }
}

fn keep(_: Stub, loc: Loc) -> Option<Loc> {
    Some(loc)
}

/// `bc_stub_copy` pushes the slot word below the copied arguments: every stack offset grows by
/// a word; registers are not touched.
fn copy_frame(_: Stub, loc: Loc) -> Option<Loc> {
    match loc {
        Loc::Stack(o) => Some(Loc::Stack(o + 4)),
        other => Some(other),
    }
}

/// Whether `entry` (the plan with the slot word in front) is `plan` moved by `m`.
fn matches(plan: &CallPlan, entry: &CallPlan, m: Moves) -> Result<(), String> {
    let mismatch = |what: String| Err(format!("{} does not fit: {what}", m.stub.symbol()));
    match entry.args.first().map(|a| &a.pass) {
        Some(ArgPass::Direct(p)) if p.len() == 1 && p[0].loc == m.slot => {}
        Some(other) => {
            let (slot, at) = (entry.loc_name(m.slot, false), entry.pass_text(other));
            return mismatch(format!(
                "its slot word must arrive in {slot}, the plan puts it at {at}"
            ));
        }
        None => return mismatch("the plan has no slot word".into()),
    }
    if entry.ret != plan.ret || entry.code != plan.code {
        return mismatch("the result would return differently".into());
    }
    let pops_ok = match m.stub {
        // the thiscall entry pops what the stdcall caller pushed
        Stub::Thiscall | Stub::Shift(_) => entry.callee_pop == plan.callee_pop,
        // the stub's own frame holds the copy: neither side may pop
        Stub::Copy { .. } => entry.callee_pop == 0 && plan.callee_pop == 0,
    };
    if !pops_ok {
        return mismatch(format!(
            "the callee would pop {} bytes, not {}",
            entry.callee_pop, plan.callee_pop
        ));
    }
    for (i, (c, e)) in plan.args.iter().zip(&entry.args[1..]).enumerate() {
        let moved = match &c.pass {
            ArgPass::Direct(pieces) => pieces
                .iter()
                .map(|p| Some(Piece { loc: (m.map)(m.stub, p.loc)?, ..*p }))
                .collect::<Option<Vec<_>>>()
                .map(ArgPass::Direct),
            ArgPass::Indirect { pointer } => {
                (m.map)(m.stub, *pointer).map(|pointer| ArgPass::Indirect { pointer })
            }
        };
        if moved.as_ref() != Some(&e.pass) {
            let left = moved.map_or("nowhere it can reach".into(), |p| entry.pass_text(&p));
            let expected = entry.pass_text(&e.pass);
            return mismatch(format!("argument {i} would be left at {left}, not {expected}"));
        }
    }
    Ok(())
}

/// The typed stub for `sig` on `abi` with the ABI's own code page, or why there is none.
pub fn typed_stub_for(abi: Abi, sig: &Signature) -> Result<Stub, String> {
    let plan = abi.plan(sig).map_err(|e| e.to_string())?;
    let code =
        CodePage::template(abi, crate::arch::ASSEMBLED_PAGE_SIZE).map_err(|e| e.to_string())?;
    typed_stub(&plan, &code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Scalar::*;

    fn sig(ret: Scalar, args: &[Scalar], conv: Convention) -> Signature {
        let mut s =
            Signature::new(Type::Scalar(ret), args.iter().map(|&a| Type::Scalar(a)).collect());
        s.conv = conv;
        s
    }

    #[test]
    fn each_abi_picks_the_stub_its_plans_allow() {
        let d = Convention::Default;
        let two = sig(I64, &[I64, I64], d);
        let mix = sig(Double, &[Int, Double, I64, Float, Pointer, U16, Double, I64], d);
        let six = sig(Int, &[Int, Int, Int, Int, Int, Int], d);
        let pick = |abi: Abi, s: &Signature| typed_stub_for(abi, s).map_err(|_| ());
        assert_eq!(pick(Abi::X86_64Sysv, &two), Ok(Stub::Shift(2)));
        assert_eq!(pick(Abi::X86_64Sysv, &mix), Ok(Stub::Shift(5)));
        assert_eq!(pick(Abi::X86_64Sysv, &six), Err(()), "a seventh integer would spill");
        assert_eq!(pick(Abi::Aarch64Aapcs64, &mix), Ok(Stub::Shift(5)));
        assert_eq!(pick(Abi::Aarch64Apple, &six), Ok(Stub::Shift(6)));
        assert_eq!(pick(Abi::X86_64Win64, &two), Ok(Stub::Shift(2)));
        assert_eq!(pick(Abi::X86_64Win64, &mix), Err(()), "positions past the fourth");
        assert_eq!(pick(Abi::I386Sysv, &two), Ok(Stub::Copy { stack_bytes: 16 }));
        let stdcall = sig(Int, &[Int, Double], Convention::Stdcall);
        assert_eq!(pick(Abi::I386Win32, &stdcall), Ok(Stub::Thiscall));
        assert_eq!(pick(Abi::I386Sysv, &stdcall), Ok(Stub::Thiscall));
        let fastcall = sig(Int, &[Int, Int], Convention::Fastcall);
        assert_eq!(pick(Abi::I386Sysv, &fastcall), Err(()));
    }
}
