//! A typed callback's released thunk is reused only by a typed callback of the same closure
//! type: a stale call through it may already be past the typed stub (which read the slot's
//! handler type before the call was announced), so another type's data must never appear
//! there. One test, in its own binary: it changes the process-wide quarantine and page limit.

use backcall::typed::TypedCallback;
use backcall::Callback;

type IntFn = extern "C" fn(i32) -> i32;

/// Always the same closure type.
fn plus(n: i32) -> TypedCallback<IntFn> {
    TypedCallback::<IntFn>::new(move |x| x + n).unwrap()
}

#[test]
fn a_typed_thunk_goes_only_to_its_own_closure_type() {
    backcall::set_reuse_quarantine(0);
    let first = plus(1);
    assert!(first.callback().on_typed_route());
    let tomb = first.callback().code_ptr() as usize;
    drop(first);

    // A full pool: dynamic callbacks take every other free slot, never the typed one.
    backcall::set_pool_page_limit(backcall::pool_pages());
    let mut live = Vec::new();
    loop {
        match Callback::new("int (*)(int)", |a| a.i32(0)) {
            Ok(cb) => {
                assert_ne!(cb.code_ptr() as usize, tomb, "a dynamic callback got a typed thunk");
                live.push(cb);
            }
            Err(backcall::Error::PoolExhausted(_)) => break,
            Err(e) => panic!("{e}"),
        }
    }
    // Another closure type of the same signature: refused, not given the typed thunk.
    match TypedCallback::<IntFn>::new(|x| x * 2) {
        Err(backcall::Error::PoolExhausted(_)) => {}
        Ok(cb) => panic!("another closure type got a thunk ({:p})", cb.callback().code_ptr()),
        Err(e) => panic!("{e}"),
    }
    // The same closure type: the typed thunk, and it runs the new closure.
    let again = plus(41);
    assert_eq!(again.callback().code_ptr() as usize, tomb);
    assert_eq!((again.get())(1), 42);
    drop(live);
}
