//! The native `CallbackContext` (as OpenSmalltalk's VMCallbackContext), built by thunkEntry in its
//! own stack frame for every call. Its layout is [`ContextLayout::for_word`] of the host word
//! size (checked by a test), which is what the assembly in `abi/asm/` uses.

use backcall_abi::context::{
    ContextLayout, FLOAT_REG_SLOTS, INT_REG_SLOTS, RESULT_FLOAT_SLOTS, RESULT_INT_SLOTS,
};

/// One call's context (see [`backcall_abi::context`] for what each field means).
#[repr(C)]
#[derive(Debug)]
pub struct CallbackContext {
    /// the thunk's address (the callback's identity)
    pub thunk: usize,
    /// the address of the thunk's record (its first word is the slot)
    pub record: usize,
    /// address of the first stack argument
    pub stack_args: usize,
    /// stack pointer the resume point runs with
    pub saved_sp: usize,
    /// frame pointer the resume point runs with
    pub saved_fp: usize,
    /// the resume point in thunkEntry
    pub resume: usize,
    /// the enclosing callback's context on this thread (LIFO chain)
    pub previous: *mut CallbackContext,
    /// stack argument bytes thunkEntry pops on return
    pub callee_pop: usize,
    /// integer argument registers, spilled
    pub int_regs: [usize; INT_REG_SLOTS as usize],
    /// float argument registers, spilled: slot `i` is the `u64`s from `i * FLOAT_SLOT_U64S`
    /// (two on 64-bit hosts, room for a whole `q` register)
    pub float_regs: [u64; FLOAT_REG_SLOTS as usize * FLOAT_SLOT_U64S],
    /// integer result registers
    pub result_int: [usize; RESULT_INT_SLOTS as usize],
    /// float result registers, slot `i` from `i * FLOAT_SLOT_U64S`
    pub result_float: [u64; RESULT_FLOAT_SLOTS as usize * FLOAT_SLOT_U64S],
}

/// The layout of [`CallbackContext`] on this host.
pub const HOST_LAYOUT: ContextLayout = ContextLayout::for_word(std::mem::size_of::<usize>() as u32);

/// The `u64`s of one float register slot on this host.
pub const FLOAT_SLOT_U64S: usize = HOST_LAYOUT.float_slot as usize / 8;

#[cfg(test)]
mod tests {
    use std::mem::{offset_of, size_of};

    use super::{CallbackContext, HOST_LAYOUT};

    #[test]
    fn native_struct_matches_the_abi_layout() {
        let l = HOST_LAYOUT;
        let actual = [
            ("thunk", offset_of!(CallbackContext, thunk)),
            ("record", offset_of!(CallbackContext, record)),
            ("stack_args", offset_of!(CallbackContext, stack_args)),
            ("saved_sp", offset_of!(CallbackContext, saved_sp)),
            ("saved_fp", offset_of!(CallbackContext, saved_fp)),
            ("resume", offset_of!(CallbackContext, resume)),
            ("previous", offset_of!(CallbackContext, previous)),
            ("callee_pop", offset_of!(CallbackContext, callee_pop)),
            ("int_regs", offset_of!(CallbackContext, int_regs)),
            ("float_regs", offset_of!(CallbackContext, float_regs)),
            ("result_int", offset_of!(CallbackContext, result_int)),
            ("result_float", offset_of!(CallbackContext, result_float)),
        ];
        for ((name, offset, _), (n, o)) in l.fields().into_iter().zip(actual) {
            assert_eq!((name, offset as usize), (n, o));
        }
        assert_eq!(size_of::<CallbackContext>(), l.size as usize);
    }
}
