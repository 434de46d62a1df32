//! Calls into C function pointers with control Rust's own calls do not give: the hidden result
//! buffer a caller passes, and the stack bytes a callee pops. The failure paths of the runtime
//! (stale, panicking and refused calls) must honour both exactly as a live call does.

use std::ffi::c_void;

/// Calls `f`, a C function `R f(int)` whose `R` is returned through a hidden pointer, with
/// `buf` as that pointer and `arg` as the `int`; answers the pointer `f` returned where the ABI
/// makes it return one (`rax` on x86-64, `eax` on i386; AArch64 returns none).
///
/// # Safety
/// `f` must be such a function and `buf` big enough for its `R`.
pub unsafe fn call_with_result_buffer(f: *const c_void, buf: *mut u8, arg: i32) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        // SysV §3.2.3: the hidden pointer is the first argument (rdi) and comes back in rax, so
        // the call is exactly a call of `R *f(R *, int)`.
        // SAFETY: the caller's contract; the two types are passed identically.
        let g: extern "C" fn(*mut u8, i32) -> *mut u8 = unsafe { std::mem::transmute(f) };
        Some(g(buf, arg) as usize)
    }
    #[cfg(target_arch = "x86")]
    {
        // i386 psABI §2.2.3: the hidden pointer is pushed last (lowest), the callee pops it
        // (`ret $4`) and returns it in eax.
        let ret: usize;
        // SAFETY: the caller's contract; the stack is 16-aligned at the call and balanced after.
        unsafe {
            std::arch::asm!(
                "sub esp, 8",
                "push {arg}",
                "push {buf}",
                "call {f}",
                "add esp, 12",
                f = in(reg) f,
                buf = in(reg) buf,
                arg = in(reg) arg,
                lateout("eax") ret,
                clobber_abi("C"),
            );
        }
        Some(ret)
    }
    #[cfg(target_arch = "aarch64")]
    {
        // AAPCS64 §6.9: the result's address goes in x8 and is not returned.
        // SAFETY: the caller's contract.
        unsafe {
            std::arch::asm!(
                "blr {f}",
                f = in(reg) f,
                in("x8") buf,
                in("w0") arg,
                clobber_abi("C"),
            );
        }
        None
    }
}

/// Calls `f`, an i386 `int __stdcall f(int, int)`, and answers its result and the bytes of
/// stack arguments it popped (8 for a correct stdcall callee).
///
/// # Safety
/// `f` must be callable that way and pop what it pops.
#[cfg(target_arch = "x86")]
pub unsafe fn call_stdcall_measuring_pop(f: *const c_void, a: i32, b: i32) -> (i32, i32) {
    let (ret, popped): (i32, i32);
    // SAFETY: the caller's contract; edi keeps the stack pointer, restored whatever `f` popped.
    unsafe {
        std::arch::asm!(
            "mov edi, esp",
            "sub esp, 8",
            "push {b}",
            "push {a}",
            "call {f}",
            "mov ecx, esp",
            "lea edx, [edi - 16]",
            "sub ecx, edx",
            "mov esp, edi",
            f = in(reg) f,
            a = in(reg) a,
            b = in(reg) b,
            out("edi") _,
            lateout("eax") ret,
            lateout("ecx") popped,
            clobber_abi("C"),
        );
    }
    (ret, popped)
}
