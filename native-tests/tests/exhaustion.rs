//! Pool exhaustion, alone in its own test binary because it caps the process-wide pool.

use backcall::{Prototype, ThreadPolicy};

#[test]
fn pool_exhaustion_is_an_error_not_a_null_pointer() {
    // Alone in this binary: cap the pool where it is now plus one page.
    let proto = Prototype::new("void (*)(void)").unwrap();
    let keep = proto.callback(ThreadPolicy::SingleThreaded, |_| ()).unwrap();
    backcall::set_pool_page_limit(backcall::pool_pages() + 1);
    let mut live = vec![keep];
    let err = loop {
        match proto.callback(ThreadPolicy::SingleThreaded, |_| ()) {
            Ok(cb) => {
                assert!(!cb.code_ptr().is_null());
                live.push(cb);
                assert!(live.len() < 100_000, "the page limit did not bind");
            }
            Err(e) => break e,
        }
    };
    assert!(matches!(err, backcall::Error::PoolExhausted(_)), "{err}");
    live.pop();
    assert!(proto.callback(ThreadPolicy::SingleThreaded, |_| ()).is_ok(), "a freed slot is reused");
    backcall::set_pool_page_limit(usize::MAX);
}
