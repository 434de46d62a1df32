//! Panics inside callbacks, with the default error hook and `RUST_BACKTRACE=1`: each is
//! contained, and what reaches stderr is one line per panic. Spawned by `tests/refusal.rs`.
//!
//! Three panics: a handler's own; and a captured value's drop when the callback released itself
//! in its handler and the end of the call frees it (on the context route, then the typed one),
//! which must be as quiet as the handler's own panic (no "thread ... panicked" line).

use std::cell::RefCell;

use backcall::typed::TypedCallback;
use backcall::Callback;

/// Panics when dropped.
struct Bomb(&'static str);

impl Drop for Bomb {
    fn drop(&mut self) {
        panic!("{} dropped", self.0);
    }
}

type Typed = TypedCallback<extern "C" fn(i32) -> i32>;

thread_local! {
    static DYNAMIC: RefCell<Option<Callback>> = const { RefCell::new(None) };
    static TYPED: RefCell<Option<Typed>> = const { RefCell::new(None) };
}

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

    let bomb = Bomb("the context route's capture");
    let cb = Callback::new("int (*)(int)", move |a| {
        let _ = &bomb;
        DYNAMIC.with(|held| drop(held.borrow_mut().take()));
        a.i32(0) + 1
    })
    .expect("a callback");
    // SAFETY: the signature above.
    let f: extern "C" fn(i32) -> i32 = unsafe { cb.as_fn() };
    DYNAMIC.with(|held| *held.borrow_mut() = Some(cb));
    assert_eq!(f(1), 2, "released in its handler, the call still answers");

    let bomb = Bomb("the typed route's capture");
    let typed = Typed::new(move |x| {
        let _ = &bomb;
        TYPED.with(|held| drop(held.borrow_mut().take()));
        x + 1
    })
    .expect("a typed callback");
    assert!(typed.callback().on_typed_route());
    let g = typed.get();
    TYPED.with(|held| *held.borrow_mut() = Some(typed));
    assert_eq!(g(1), 2, "released in its handler, the call still answers");
    println!("panic-probe: done");
}
