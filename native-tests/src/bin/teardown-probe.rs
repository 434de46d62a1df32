//! A single-threaded callback called by its owner thread from an `atexit` handler (what a C
//! library's process cleanup does): the handler must run, as during the program. Spawned by
//! `tests/teardown.rs`, which reads the line the handler prints.

use backcall::Callback;

fn main() {
    backcall::set_error_hook(|e| eprintln!("teardown-probe: error hook: {e}"));
    let cb = Callback::new("void (*)(void)", |_| println!("teardown-probe: the handler ran"))
        .expect("a callback");
    // SAFETY: the signature above.
    let f: extern "C" fn() = unsafe { cb.as_fn() };
    f();
    // SAFETY: `f` stays valid: its callback is never released (forgotten below).
    if unsafe { libc::atexit(f) } != 0 {
        eprintln!("teardown-probe: atexit failed");
        std::process::exit(2);
    }
    std::mem::forget(cb);
    println!("teardown-probe: main returns");
}
