//! The pool's lock: one atomic read-modify-write to take it and a plain release store to give
//! it back. A futex mutex spends a second read-modify-write on the release (to learn whether
//! to wake a waiter), and creating plus releasing a callback takes the pool lock twice: those
//! locked instructions were a fifth of its cost.
//!
//! The critical sections are short (a queue push or pop; rarely a page mapped or a
//! process-wide barrier), so a waiter spins briefly, then yields its time slice, then sleeps
//! in growing steps (up to a millisecond) until the holder is done: a waiter of a higher
//! real-time priority than the holder never starves it of the CPU. Like the registry's use of
//! `Mutex` before, a panic under the lock does not poison it: the guard's drop releases it.

use std::cell::UnsafeCell;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

/// Spins before a waiter starts yielding.
const SPINS: u32 = 64;
/// Yields before a waiter starts sleeping.
const YIELDS: u32 = 64;
/// The longest sleep between two looks at the lock.
const MAX_SLEEP: std::time::Duration = std::time::Duration::from_millis(1);

/// A value behind the pool's lock.
pub(crate) struct PoolLock<T> {
    held: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is reached only through a guard, and one guard exists at a time.
unsafe impl<T: Send> Sync for PoolLock<T> {}

/// The held lock; dropping it releases the lock.
pub(crate) struct PoolGuard<'a, T> {
    lock: &'a PoolLock<T>,
    /// (shared across threads only where `T` may be: the guard hands out `&T`)
    _value: PhantomData<&'a mut T>,
}

impl<T> PoolLock<T> {
    pub(crate) const fn new(value: T) -> PoolLock<T> {
        PoolLock { held: AtomicBool::new(false), value: UnsafeCell::new(value) }
    }

    /// Takes the lock, waiting while another thread holds it.
    #[inline]
    pub(crate) fn lock(&self) -> PoolGuard<'_, T> {
        if self.held.swap(true, Ordering::Acquire) {
            self.wait();
        }
        PoolGuard { lock: self, _value: PhantomData }
    }

    #[cold]
    fn wait(&self) {
        let mut waits = 0;
        let mut sleep = std::time::Duration::from_micros(1);
        loop {
            // Read-only while held: waiters do not bounce the line between cores.
            while self.held.load(Ordering::Relaxed) {
                if waits < SPINS {
                    std::hint::spin_loop();
                } else if waits < SPINS + YIELDS {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(sleep);
                    sleep = (sleep * 2).min(MAX_SLEEP);
                }
                waits = waits.saturating_add(1);
            }
            if !self.held.swap(true, Ordering::Acquire) {
                return;
            }
        }
    }
}

impl<T> Deref for PoolGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: this guard holds the lock.
        unsafe { &*self.lock.value.get() }
    }
}

impl<T> DerefMut for PoolGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: this guard holds the lock.
        unsafe { &mut *self.lock.value.get() }
    }
}

impl<T> Drop for PoolGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        self.lock.held.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::PoolLock;

    /// Increments under the lock from several threads add up exactly: the lock excludes, and
    /// a waiter that yields still gets its turn.
    #[test]
    fn the_lock_excludes() {
        static COUNT: PoolLock<(u64, u64)> = PoolLock::new((0, 0));
        const EACH: u64 = 50_000;
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..EACH {
                        let mut c = COUNT.lock();
                        // Two fields updated apart: a second holder would see them differ.
                        c.0 += 1;
                        std::hint::black_box(&mut *c);
                        assert_eq!(c.0, c.1 + 1, "another holder ran in between");
                        c.1 += 1;
                    }
                });
            }
        });
        assert_eq!(*COUNT.lock(), (4 * EACH, 4 * EACH));
    }

    /// A waiter outlasts a long hold (spinning, yielding, then sleeping) and gets the lock
    /// right after it is released.
    #[test]
    fn a_waiter_outlasts_a_long_hold() {
        let lock = PoolLock::new(0u32);
        let held = std::sync::Barrier::new(2);
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut guard = lock.lock();
                held.wait();
                std::thread::sleep(std::time::Duration::from_millis(30));
                *guard = 1;
            });
            held.wait();
            let started = std::time::Instant::now();
            let guard = lock.lock();
            assert_eq!(*guard, 1, "the holder's write is seen");
            assert!(started.elapsed() >= std::time::Duration::from_millis(20));
        });
    }

    /// A panic under the lock releases it.
    #[test]
    fn a_panic_under_the_lock_releases_it() {
        let lock = PoolLock::new(0u32);
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _guard = lock.lock();
            panic!("under the lock");
        }));
        assert!(caught.is_err());
        *lock.lock() += 1;
        assert_eq!(*lock.lock(), 1);
    }
}
