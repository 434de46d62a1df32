//! The pool's lock: one atomic read-modify-write to take it and a plain release store to give
//! it back. A futex mutex spends a second read-modify-write on the release (to learn whether
//! to wake a waiter), and creating plus releasing a callback takes the pool lock twice: those
//! locked instructions were a fifth of its cost.
//!
//! The critical sections are short (a queue push or pop; rarely a page mapped or a
//! process-wide barrier), so a waiter spins briefly and then yields its time slice until the
//! holder is done. Like the registry's use of `Mutex` before, a panic under the lock does not
//! poison it: the guard's drop releases it and the pool's state stays consistent (every
//! update under it is a single push or pop).

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, Ordering};

/// Spins before a waiter starts yielding.
const SPINS: u32 = 64;

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
        PoolGuard { lock: self }
    }

    #[cold]
    fn wait(&self) {
        let mut spins = 0;
        loop {
            // Read-only while held: waiters do not bounce the line between cores.
            while self.held.load(Ordering::Relaxed) {
                if spins < SPINS {
                    spins += 1;
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
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
