//! Reuse of released thunks: a stale C function pointer must keep meeting a tombstone that
//! returns the way its caller expects, for as long as possible. One test, in its own binary:
//! it changes the process-wide quarantine and page limit.

use std::collections::HashMap;

use backcall::Callback;

const INT: &str = "int (*)(int)";
const BIG: &str = "struct big { long a, b, c; } (*)(int)";

fn int_callback(n: i32) -> Callback {
    Callback::new(INT, move |a| a.i32(0) + n).unwrap()
}

#[test]
fn released_thunks_wait_in_quarantine_and_keep_their_protocol() {
    // 1. The default quarantine: an address comes back only after 256 other releases.
    let mut released_at: HashMap<usize, u64> = HashMap::new();
    let (mut releases, mut reused) = (0u64, 0usize);
    for i in 0..3000 {
        let cb = int_callback(i);
        let at = cb.code_ptr() as usize;
        if let Some(&then) = released_at.get(&at) {
            assert!(releases - then >= 256, "{at:#x} reused after {} releases", releases - then);
            reused += 1;
        }
        drop(cb);
        releases += 1;
        released_at.insert(at, releases);
    }
    assert!(reused > 2000, "released thunks are reused at all ({reused}): the pool stays bounded");

    // 2. Without quarantine, a released struct-returning thunk is still not given to a callback
    // of another return protocol while the pool can grow.
    backcall::set_reuse_quarantine(0);
    let big = Callback::new(BIG, |_| {
        backcall::Value::Bytes(vec![0; 3 * std::mem::size_of::<std::ffi::c_long>()])
    })
    .unwrap();
    let tomb = big.code_ptr() as usize;
    drop(big);
    let mut live: Vec<Callback> = (0..1000).map(int_callback).collect();
    assert!(live.iter().all(|cb| cb.code_ptr() as usize != tomb), "another protocol got it");

    // 3. Only a full pool hands it to another protocol, rather than failing.
    backcall::set_pool_page_limit(backcall::pool_pages());
    let mut got_tomb = false;
    for n in 0..10_000 {
        match Callback::new(INT, move |a| a.i32(0) - n) {
            Ok(cb) => {
                got_tomb |= cb.code_ptr() as usize == tomb;
                live.push(cb);
            }
            Err(backcall::Error::PoolExhausted(_)) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(got_tomb, "a full pool reuses the last free slot, whatever its protocol");
}
