//! A handler that panics, with the default error hook and `RUST_BACKTRACE=1`: the panic is
//! contained, and what reaches stderr is one line. Spawned by `tests/refusal.rs`.

use backcall::Callback;

fn main() {
    let cb = Callback::new("int (*)(int)", |a| {
        if a.i32(0) < 0 {
            panic!("no negatives here");
        }
        a.i32(0)
    })
    .expect("a callback");
    // SAFETY: the signature above.
    let f: extern "C" fn(i32) -> i32 = unsafe { cb.as_fn() };
    assert_eq!(f(3), 3);
    assert_eq!(f(-3), 0, "a contained panic returns zero");
    println!("panic-probe: done");
}
