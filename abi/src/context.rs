//! The `CallbackContext` layout (as OpenSmalltalk's VMCallbackContext), per word size.
//!
//! thunkEntry builds one context in its own stack frame per call, fills the argument areas,
//! and hands its address to the dispatcher; the dispatcher writes the result areas and answers
//! a [`crate::ReturnCode`]; thunkEntry returns from the result areas by that code. The assembly in
//! `abi/asm/<abi>/` uses exactly these offsets; the native `CallbackContext` struct of the
//! `backcall` crate is checked against them by a test, and so is the emulated harness.
//!
//! | field | meaning |
//! | --- | --- |
//! | `thunk` | the thunk's address (the callback's identity), filled in by the dispatcher |
//! | `record` | the address of the thunk's record in its data page (slot word, target) |
//! | `stack_args` | address of the first stack argument (above the return address on x86) |
//! | `saved_sp`, `saved_fp` | stack and frame pointer [`resume`](Self::resume) runs with |
//! | `resume` | where `return_from_context` jumps back into thunkEntry |
//! | `previous` | the context of the enclosing callback on this thread (LIFO chain) |
//! | `callee_pop` | bytes of stack arguments thunkEntry pops on return (i386 `ret $n`) |
//! | `int_regs` | integer argument registers as spilled, in the ABI's order (+ x8 on AArch64) |
//! | `float_regs` | float argument registers as spilled, one two-word slot each: the low 64 bits on x86, all 128 bits of `v0`–`v7` on AArch64 (binary128 `long double`) |
//! | `result_int` | integer result registers thunkEntry loads (`eax`/`edx`, `rax`/`rdx`, `x0`/`x1`) |
//! | `result_float` | float result registers thunkEntry loads (`xmm0`/`xmm1`, `v0`–`v3`, x87 `st(0)`) |

/// Number of integer argument register slots (AArch64: x0–x7 plus x8).
pub const INT_REG_SLOTS: u32 = 10;
/// Number of float argument register slots.
pub const FLOAT_REG_SLOTS: u32 = 8;
/// Number of integer result register slots.
pub const RESULT_INT_SLOTS: u32 = 2;
/// Number of float result register slots (an AArch64 HFA of four doubles).
pub const RESULT_FLOAT_SLOTS: u32 = 4;

/// Byte offsets of every `CallbackContext` field for one word size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextLayout {
    /// bytes per word (4 or 8)
    pub word: u32,
    /// `thunk`
    pub thunk: u32,
    /// `record`
    pub record: u32,
    /// `stack_args`
    pub stack_args: u32,
    /// `saved_sp`
    pub saved_sp: u32,
    /// `saved_fp`
    pub saved_fp: u32,
    /// `resume`
    pub resume: u32,
    /// `previous`
    pub previous: u32,
    /// `callee_pop`
    pub callee_pop: u32,
    /// `int_regs[0]`; slot `i` is at `int_regs + i * word`
    pub int_regs: u32,
    /// `float_regs[0]`; slot `i` is at `float_regs + i * float_slot`
    pub float_regs: u32,
    /// `result_int[0]`; slot `i` is at `result_int + i * word`
    pub result_int: u32,
    /// `result_float[0]`; slot `i` is at `result_float + i * float_slot`
    pub result_float: u32,
    /// bytes per float register slot, two words: 8 on i386 (an x87 result spans slots), 16 on
    /// the 64-bit machines (room for a whole `q` register: AArch64's binary128 `long double`)
    pub float_slot: u32,
    /// total size, a multiple of 16
    pub size: u32,
}

impl ContextLayout {
    /// The layout for `word`-byte words: eight word-sized fields, then the register areas
    /// (float slots are two words, 16-aligned on 64-bit machines: `ldp q` needs it).
    pub const fn for_word(word: u32) -> ContextLayout {
        let float_slot = 2 * word;
        let int_regs = 8 * word;
        let float_regs = int_regs + INT_REG_SLOTS * word;
        let result_int = float_regs + FLOAT_REG_SLOTS * float_slot;
        let result_float = result_int + RESULT_INT_SLOTS * word;
        let end = result_float + RESULT_FLOAT_SLOTS * float_slot;
        ContextLayout {
            word,
            thunk: 0,
            record: word,
            stack_args: 2 * word,
            saved_sp: 3 * word,
            saved_fp: 4 * word,
            resume: 5 * word,
            previous: 6 * word,
            callee_pop: 7 * word,
            int_regs,
            float_regs,
            result_int,
            result_float,
            float_slot,
            size: end.div_ceil(16) * 16,
        }
    }

    /// Offset of float argument register slot `i` (`Loc::Float(i)` as spilled).
    pub const fn float_reg(&self, i: u8) -> u32 {
        self.float_regs + i as u32 * self.float_slot
    }

    /// Offset of float result register slot `i` (`Loc::Float(i)` as loaded).
    pub const fn result_float_reg(&self, i: u8) -> u32 {
        self.result_float + i as u32 * self.float_slot
    }

    /// The bytes of one slot of area `name` (`int_regs`, `float_regs`, ...): a float slot,
    /// or a word.
    pub fn slot_size(&self, name: &str) -> u32 {
        if name.contains("float") {
            self.float_slot
        } else {
            self.word
        }
    }

    /// `(name, offset, size)` of every field, in address order (for snapshots and docs).
    pub fn fields(&self) -> Vec<(&'static str, u32, u32)> {
        let w = self.word;
        vec![
            ("thunk", self.thunk, w),
            ("record", self.record, w),
            ("stack_args", self.stack_args, w),
            ("saved_sp", self.saved_sp, w),
            ("saved_fp", self.saved_fp, w),
            ("resume", self.resume, w),
            ("previous", self.previous, w),
            ("callee_pop", self.callee_pop, w),
            ("int_regs", self.int_regs, INT_REG_SLOTS * w),
            ("float_regs", self.float_regs, FLOAT_REG_SLOTS * self.float_slot),
            ("result_int", self.result_int, RESULT_INT_SLOTS * w),
            ("result_float", self.result_float, RESULT_FLOAT_SLOTS * self.float_slot),
        ]
    }
}

/// A thunk's record in the data page beside its code page, at the thunk's own offset: the
/// word the thunk's target reads (the callback's slot) and the target the thunk jumps to.
pub const RECORD_SLOT: u32 = 0;

/// 32-bit machines only: the record's third word, the bytes of stack arguments the i386
/// typed stub `bc_stub_copy` copies.
pub const RECORD_STACK_BYTES: u32 = 8;

/// The typed stubs' view of a slot (the runtime's `Slot`, `registry.rs`, asserts it): its
/// first word is its handler's vtable address with tag bits below [`SLOT_TAGS`] ...
pub const SLOT_STATE: u32 = 0;
/// ... the tag bits masked off the first word to get the vtable ...
pub const SLOT_TAGS: u32 = 7;

impl ContextLayout {
    /// ... and the vtable's third word is the handler's typed entry.
    pub const fn vtable_typed_entry(&self) -> u32 {
        2 * self.word
    }

    /// Offset of a record's target word (the word after [`RECORD_SLOT`]).
    pub const fn record_target(&self) -> u32 {
        self.word
    }

    /// The assembly constants every `abi/asm/<abi>/entry.s` and `thunk.s` is assembled with
    /// (the generator prepends them): the context's field offsets (`CTX_<FIELD>`, and
    /// `CTX_<FIELD>_<i>` for slot `i` of an area), the record's words, the page size the code
    /// is assembled for, and the return codes the entries switch on.
    pub fn asm_constants(&self, arch: crate::Arch) -> String {
        let c = arch.comment();
        let mut out = format!(
            "{c} @generated by `cargo run -p backcall-emu-tests --bin gen-blobs` from \
             abi/src/context.rs — do not edit.\n{c} The CallbackContext, record and return-code \
             constants of {} ({}-byte words).\n",
            arch.name(),
            self.word
        );
        let mut set = |name: &str, value: u32| {
            out.push_str(&format!("    .set {name}, {value}\n"));
        };
        for (name, offset, size) in self.fields() {
            let upper = name.to_uppercase();
            set(&format!("CTX_{upper}"), offset);
            let slot = self.slot_size(name);
            if size > self.word {
                for i in 1..size / slot {
                    set(&format!("CTX_{upper}_{i}"), offset + i * slot);
                }
            }
        }
        set("CTX_SIZE", self.size);
        set("RECORD_SLOT", RECORD_SLOT);
        set("RECORD_TARGET", self.record_target());
        if self.word == 4 {
            // A 16-byte record has room for a third word on 32-bit machines: the bytes of
            // stack arguments an i386 typed stub copies.
            set("RECORD_STACK_BYTES", RECORD_STACK_BYTES);
        }
        set("SLOT_STATE", SLOT_STATE);
        set("SLOT_TAGS", SLOT_TAGS);
        set("VTABLE_TYPED_ENTRY", self.vtable_typed_entry());
        set("PAGE_SIZE", crate::arch::ASSEMBLED_PAGE_SIZE);
        for code in crate::ReturnCode::ALL {
            set(&format!("RC_{}", code.asm_name()), code as u32);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::ContextLayout;

    #[test]
    fn float_areas_are_slot_aligned_and_size_is_16_aligned() {
        for word in [4, 8] {
            let l = ContextLayout::for_word(word);
            assert_eq!(l.float_regs % l.float_slot, 0);
            assert_eq!(l.result_float % l.float_slot, 0);
            assert_eq!(l.size % 16, 0);
            let fields = l.fields();
            for pair in fields.windows(2) {
                assert_eq!(pair[0].1 + pair[0].2, pair[1].1, "{pair:?} overlap or gap");
            }
        }
    }
}
