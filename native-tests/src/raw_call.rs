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

/// Calls `f`, an x86-64 C function with the 32 bytes `stack` as its stack arguments and `n` as
/// its first `int`, returning `values` (1 or 2) x87 values: a `long double` in `st(0)`, or a
/// `long double _Complex` in `st(0)` and `st(1)` (psABI §3.2.3, X87 and COMPLEX_X87). Answers
/// those values' bytes, `st(0)` first, and how many values the call left on the x87 stack
/// besides them (from the status word's TOP before and after).
///
/// # Safety
/// `f` must be such a function (System V: Win64's `long double` is `double`).
#[cfg(all(target_arch = "x86_64", not(windows)))]
pub unsafe fn call_x87(
    f: *const c_void,
    stack: &[u8; 32],
    n: i32,
    values: u8,
) -> ([[u8; 10]; 2], u8) {
    let mut out = [[0u8; 10]; 2];
    let (before, after): (u64, u64);
    // SAFETY: the caller's contract; the stack is realigned to 16 for the call and restored from
    // r12, the status word before it kept in r13, the results' address in r14 and their count
    // in r15 (all callee-saved); every value the call returned is popped.
    unsafe {
        std::arch::asm!(
            "fnstsw ax",
            "movzx r13d, ax",
            "mov r12, rsp",
            "and rsp, -16",
            "sub rsp, 32",
            "movups xmm0, [{stack}]",
            "movups [rsp], xmm0",
            "movups xmm0, [{stack} + 16]",
            "movups [rsp + 16], xmm0",
            "call {f}",
            "mov rsp, r12",
            "fnstsw ax",
            "movzx eax, ax",
            "fstp tbyte ptr [r14]",
            "cmp r15, 2",
            "jne 3f",
            "fstp tbyte ptr [r14 + 10]",
            "3:",
            f = in(reg) f,
            stack = in(reg) stack.as_ptr(),
            in("edi") n,
            in("r14") out.as_mut_ptr(),
            in("r15") u64::from(values),
            out("r12") _,
            out("r13") before,
            out("rax") after,
            clobber_abi("C"),
        );
    }
    // A push decrements TOP (mod 8).
    let top = |status: u64| ((status >> 11) & 7) as u8;
    (out, top(before).wrapping_sub(top(after)).wrapping_sub(values) & 7)
}

/// Calls `f`, an AArch64 Linux C function `long double f(long double x, int n)`, with `x`'s 16
/// bytes in `q0` and `n` in `w0` (AAPCS64 §6.8.2 C.1, C.9); answers the 16 bytes of `q0` it
/// returns (§6.9): binary128, whole.
///
/// # Safety
/// `f` must be such a function.
#[cfg(all(target_arch = "aarch64", target_os = "linux"))]
pub unsafe fn call_binary128(f: *const c_void, x: [u8; 16], n: i32) -> [u8; 16] {
    let mut result = [0u8; 16];
    // SAFETY: the caller's contract; the result's address waits in x20, which the callee
    // preserves (§6.1.1), and everything else it may change is declared.
    unsafe {
        std::arch::asm!(
            "ldr q0, [{x}]",
            "blr {f}",
            "str q0, [x20]",
            f = in(reg) f,
            x = in(reg) x.as_ptr(),
            in("w0") n,
            inout("x20") result.as_mut_ptr() => _,
            clobber_abi("C"),
        );
    }
    result
}
