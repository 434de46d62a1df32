//! Creation and release at scale, alone in its own test binary so that no other test's
//! callbacks change the pool's size: after the reuse quarantine fills (a page or two), 1,000,000
//! create/release cycles must reuse slots (no pool growth), while a watcher thread samples
//! `/proc/self/maps` for writable+executable pages.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use backcall::{Prototype, ThreadPolicy};
use backcall_native_tests::errors::assert_no_rwx_mapping;

#[test]
fn a_million_create_release_cycles_do_not_grow_the_pool_and_never_map_rwx() {
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (stop, samples) = (stop.clone(), samples.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                assert_no_rwx_mapping();
                samples.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        })
    };
    let proto = Prototype::new("int (*)(int)").unwrap();
    let first = proto.callback(ThreadPolicy::SingleThreaded, |a| a.i32(0) + 1).unwrap();
    // A released slot waits for 256 other releases before reuse: the pool grows until that
    // many are in quarantine, then no more.
    for i in 0..2_000 {
        drop(proto.callback(ThreadPolicy::SingleThreaded, move |a| a.i32(0) + i).unwrap());
    }
    let pages = backcall::pool_pages();
    assert!(pages <= 3, "{pages} pages for 256 quarantined slots");
    let mut checked = 0;
    for i in 0..1_000_000i32 {
        let cb = proto.callback(ThreadPolicy::SingleThreaded, move |a| a.i32(0) + i).unwrap();
        if i % 9973 == 0 {
            let f: extern "C" fn(i32) -> i32 = unsafe { cb.as_fn() };
            assert_eq!(f(1), i + 1, "cycle {i}");
            checked += 1;
        }
    }
    assert_eq!(backcall::pool_pages(), pages, "the pool grew during the churn");
    let f: extern "C" fn(i32) -> i32 = unsafe { first.as_fn() };
    assert_eq!(f(41), 42, "a callback that stayed live is untouched");
    stop.store(true, Ordering::SeqCst);
    watcher.join().expect("no rwx mapping was seen");
    assert!(checked > 100);
    assert!(samples.load(Ordering::SeqCst) > 0, "the watcher sampled the maps");
}
