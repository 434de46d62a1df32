//! The probe itself (Linux: `prctl(PR_SET_MDWE)`).

use std::ffi::{c_long, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use backcall::{Callback, Error, ThreadPolicy, Value};

/// `<linux/prctl.h>`: PR_SET_MDWE, PR_GET_MDWE and PR_MDWE_REFUSE_EXEC_GAIN (Linux 6.3).
const PR_SET_MDWE: libc::c_int = 65;
const PR_GET_MDWE: libc::c_int = 66;
const PR_MDWE_REFUSE_EXEC_GAIN: libc::c_ulong = 1;

type Cmp = extern "C" fn(*const c_void, *const c_void) -> i32;

extern "C" {
    fn qsort(base: *mut c_void, n: usize, size: usize, cmp: Cmp);
}

#[repr(C)]
#[derive(Debug, PartialEq)]
struct Big {
    a: c_long,
    b: c_long,
    c: c_long,
}

pub fn main() {
    let expect_denied = std::env::args().any(|a| a == "--expect-denied");
    if let Err(why) = refuse_exec_gain() {
        eprintln!("mdwe-probe: {why}");
        std::process::exit(2);
    }
    let outcome = if expect_denied { denied() } else { core_cases() };
    match outcome {
        Ok(()) => println!("mdwe-probe: all checks passed"),
        Err(why) => {
            eprintln!("mdwe-probe: FAILED: {why}");
            std::process::exit(1);
        }
    }
}

/// Sets the policy, and proves it bites: a written anonymous page can no longer be made
/// executable.
fn refuse_exec_gain() -> Result<(), String> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) } != 0 {
        return Err(format!(
            "prctl(PR_SET_MDWE) failed: {} (Linux 6.3 or newer is needed)",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: as above.
    let flags = unsafe { libc::prctl(PR_GET_MDWE, 0, 0, 0, 0) };
    if flags != PR_MDWE_REFUSE_EXEC_GAIN as libc::c_int {
        return Err(format!("PR_GET_MDWE answers {flags} after PR_SET_MDWE"));
    }
    let size = 4096;
    // SAFETY: a fresh anonymous mapping, unmapped below.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if page == libc::MAP_FAILED {
        return Err("mmap of a scratch page failed".into());
    }
    // SAFETY: our own page.
    let gained = unsafe { libc::mprotect(page, size, libc::PROT_READ | libc::PROT_EXEC) } == 0;
    // SAFETY: our own page, unused from here.
    unsafe { libc::munmap(page, size) };
    if gained {
        return Err("the policy is set but mprotect(PROT_EXEC) of a written page still works \
                    (the kernel or an emulator ignores PR_SET_MDWE)"
            .into());
    }
    println!("ok: PR_SET_MDWE set; mprotect(PROT_EXEC) of a written page is refused");
    Ok(())
}

fn check(what: &str, ok: bool, detail: impl std::fmt::Debug) -> Result<(), String> {
    if ok {
        println!("ok: {what}");
        Ok(())
    } else {
        Err(format!("{what}: {detail:?}"))
    }
}

fn core_cases() -> Result<(), String> {
    let add = Callback::new("int64_t (*)(int64_t, int64_t)", |a| a.i64(0) + a.i64(1))
        .map_err(|e| format!("Callback::new under MDWE: {e}"))?;
    // SAFETY: the signature above.
    let f: extern "C" fn(i64, i64) -> i64 = unsafe { add.as_fn() };
    check("create and call", f(40, 2) == 42, f(40, 2))?;

    let big = Callback::new("struct big { long a, b, c; } (*)(int)", |a| {
        let n = a.i64(0) as c_long;
        let bytes: Vec<u8> = [n, n + 1, n + 2].iter().flat_map(|v| v.to_ne_bytes()).collect();
        Value::Bytes(bytes)
    })
    .map_err(|e| e.to_string())?;
    // SAFETY: `struct big` is `Big`.
    let g: extern "C" fn(i32) -> Big = unsafe { big.as_fn() };
    check("struct result", g(7) == Big { a: 7, b: 8, c: 9 }, g(7))?;

    static DEPTH: AtomicUsize = AtomicUsize::new(0);
    static DEEPEST: AtomicUsize = AtomicUsize::new(0);
    let nest = Callback::new("int (*)(const void *, const void *)", |args| {
        let d = DEPTH.fetch_add(1, Ordering::SeqCst) + 1;
        DEEPEST.fetch_max(d, Ordering::SeqCst);
        if d < 100 {
            let mut pair = [2i32, 1];
            // SAFETY: the thunk is this live callback.
            let f: Cmp = unsafe { std::mem::transmute(args.thunk()) };
            // SAFETY: a comparator of ints over two ints.
            unsafe { qsort(pair.as_mut_ptr().cast(), 2, 4, f) };
        }
        DEPTH.fetch_sub(1, Ordering::SeqCst);
        // SAFETY: element pointers from qsort.
        let (a, b) = unsafe { (*args.ptr::<i32>(0), *args.ptr::<i32>(1)) };
        a.cmp(&b) as i32
    })
    .map_err(|e| e.to_string())?;
    let mut pair = [9i32, 3];
    // SAFETY: as above.
    unsafe { qsort(pair.as_mut_ptr().cast(), 2, 4, nest.as_fn()) };
    let deepest = DEEPEST.load(Ordering::SeqCst);
    check("nesting 100 deep through qsort", pair == [3, 9] && deepest == 100, (pair, deepest))?;

    let total = Arc::new(AtomicUsize::new(0));
    let sum = total.clone();
    let shared = Callback::with_policy("void (*)(int)", ThreadPolicy::Serialized, move |a| {
        sum.fetch_add(a.i64(0) as usize, Ordering::SeqCst);
    })
    .map_err(|e| e.to_string())?;
    // SAFETY: the signature above.
    let h: extern "C" fn(i32) = unsafe { shared.as_fn() };
    let threads: Vec<_> =
        (0..4).map(|_| std::thread::spawn(move || (0..1000).for_each(|_| h(1)))).collect();
    threads.into_iter().for_each(|t| t.join().expect("a caller thread"));
    let n = total.load(Ordering::SeqCst);
    check("serialized calls from 4 threads", n == 4000, n)?;

    let many: Vec<Callback> = (0..3000)
        .map(|i| Callback::new("int64_t (*)(void)", move |_| i as i64))
        .collect::<Result<_, Error>>()
        .map_err(|e| e.to_string())?;
    // SAFETY: the signature above.
    let last: extern "C" fn() -> i64 = unsafe { many[2999].as_fn() };
    check("3000 live callbacks over several pages", last() == 2999, last())?;
    drop(many);
    drop(add);
    check("a released thunk returns zero", f(40, 2) == 0, f(40, 2))?;

    let rwx = backcall_native_tests::errors::rwx_mappings();
    check("no writable+executable mapping", rwx.is_empty(), rwx)
}

/// Without memfd the pool can only write a page and make it executable, which the policy
/// refuses: a clear error, no pointer.
fn denied() -> Result<(), String> {
    match Callback::new("int (*)(int)", |a| a.i32(0)) {
        Err(Error::ExecDenied(why)) => check(
            "the fallback is refused with Error::ExecDenied naming the policy",
            why.contains("PR_SET_MDWE"),
            why,
        ),
        Err(other) => Err(format!("expected Error::ExecDenied, got {other:?}")),
        Ok(_) => Err("a callback was created although exec gain is refused".into()),
    }
}
