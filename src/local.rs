//! Handlers that are not `Send`, and handlers that borrow.
//!
//! A single-threaded callback only ever runs on its owner thread: a call from any other thread
//! is refused before the handler is touched. So its handler need not be `Send` or `Sync`
//! ([`Callback::local`]): it may capture an `Rc`, a `RefCell` or a raw pointer. Its handle,
//! [`LocalCallback`], stays on the owner thread (it is not `Send`), and the handler is dropped
//! there too: if the last call through a released callback ends on another thread (a refused
//! call), the handler waits for its owner thread's next create or release, or its exit.
//!
//! [`scope`] goes further, in the manner of `std::thread::scope`: callbacks created in a scope
//! may borrow from outside it, and every one of them is released, and its handler dropped,
//! before `scope` returns. A call through one of their pointers afterwards is a stale call:
//! contained, reported, zero.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use backcall_abi::ReturnCode;

use crate::callback::{store_handler, Handler};
use crate::registry::{registry, ThreadPolicy};
use crate::{Args, Callback, Error, Prototype, Value};

/// A handler the owner thread alone runs and drops: `Send` and `Sync` asserted, not required.
struct Local<H>(H);

// SAFETY: a `Local` handler belongs to a single-threaded callback: the dispatcher refuses every
// other thread before touching it, and the registry drops it on the owner thread only
// (`Handler::LOCAL`).
unsafe impl<H> Send for Local<H> {}
// SAFETY: as above: only the owner thread ever holds a reference.
unsafe impl<H> Sync for Local<H> {}

impl<H: Fn(&Args) -> ReturnCode + 'static> Handler for Local<H> {
    const LOCAL: bool = true;

    unsafe fn call(data: *const (), args: &Args) -> ReturnCode {
        // SAFETY: `data` points at this handler.
        unsafe { ((*data.cast::<Self>()).0)(args) }
    }
}

/// A single-threaded callback whose handler is not `Send` (see the [module
/// documentation](self)); it releases the callback when dropped, and cannot leave its thread.
///
/// ```
/// use std::cell::RefCell;
/// use std::rc::Rc;
///
/// use backcall::Callback;
///
/// let seen = Rc::new(RefCell::new(Vec::new()));
/// let log = seen.clone();
/// let cb = Callback::local("void (*)(int)", move |args| log.borrow_mut().push(args.i32(0)))
///     .unwrap();
/// let f: extern "C" fn(i32) = unsafe { cb.as_fn() };
/// f(1);
/// f(2);
/// assert_eq!(*seen.borrow(), [1, 2]);
/// ```
///
/// It cannot be sent to another thread (its handler would be dropped there):
///
/// ```compile_fail
/// let cb = backcall::Callback::local("void (*)(void)", |_| ()).unwrap();
/// std::thread::spawn(move || drop(cb));
/// ```
pub struct LocalCallback {
    inner: Callback,
    _owner_thread: PhantomData<*const ()>,
}

impl std::ops::Deref for LocalCallback {
    type Target = Callback;

    fn deref(&self) -> &Callback {
        &self.inner
    }
}

impl std::fmt::Debug for LocalCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Local{:?}", self.inner)
    }
}

impl Callback {
    /// A single-threaded callback whose handler need not be `Send` or `Sync` (see
    /// [`LocalCallback`]).
    pub fn local<R: Into<Value>>(
        signature: &str,
        handler: impl Fn(&Args) -> R + 'static,
    ) -> Result<LocalCallback, Error> {
        Prototype::cached(signature)?.local(handler)
    }
}

impl Prototype {
    /// A single-threaded callback of this prototype whose handler need not be `Send` or
    /// `Sync` (see [`LocalCallback`]).
    pub fn local<R: Into<Value>>(
        &self,
        handler: impl Fn(&Args) -> R + 'static,
    ) -> Result<LocalCallback, Error> {
        let handler =
            store_handler(Local(move |args: &Args| args.write_owned(handler(args).into())));
        let inner = self.install(&ThreadPolicy::SingleThreaded, handler)?;
        Ok(LocalCallback { inner, _owner_thread: PhantomData })
    }
}

/// Runs `f` with a [`Scope`] whose callbacks may borrow from outside it; every one of them is
/// released and its handler dropped before `scope` returns (or unwinds).
///
/// ```
/// use std::ffi::c_void;
///
/// extern "C" {
///     fn qsort(base: *mut c_void, n: usize, size: usize,
///              cmp: extern "C" fn(*const c_void, *const c_void) -> i32);
/// }
///
/// let mut values = vec![3, 1, 2];
/// // Borrowed by the handler, which is then neither `Send` nor `'static`. (Handlers are `Fn`:
/// // a callback may be called again while it runs, as a comparator is by a nested sort.)
/// let comparisons = std::cell::Cell::new(0);
/// backcall::scope(|s| {
///     let cmp = s
///         .callback("int (*)(const void *, const void *)", |args| {
///             comparisons.set(comparisons.get() + 1);
///             let (a, b) = unsafe { (*args.ptr::<i32>(0), *args.ptr::<i32>(1)) };
///             a.cmp(&b) as i32
///         })
///         .unwrap();
///     unsafe { qsort(values.as_mut_ptr().cast(), values.len(), 4, cmp.as_fn()) };
/// });
/// assert_eq!(values, [1, 2, 3]);
/// assert!(comparisons.get() > 0);
/// ```
pub fn scope<'env, T>(f: impl for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T) -> T {
    let scope = Scope { ids: RefCell::new(Vec::new()), _scope: PhantomData, _env: PhantomData };
    let out = catch_unwind(AssertUnwindSafe(|| f(&scope)));
    scope.finish();
    match out {
        Ok(t) => t,
        Err(panic) => resume_unwind(panic),
    }
}

/// The callbacks of one [`scope`] call.
pub struct Scope<'scope, 'env: 'scope> {
    /// every callback created in the scope, with whether its handle released it already
    ids: RefCell<Vec<(u32, bool)>>,
    _scope: PhantomData<&'scope mut &'scope ()>,
    _env: PhantomData<&'env mut &'env ()>,
}

impl<'scope> Scope<'scope, '_> {
    /// A single-threaded callback whose handler may borrow anything that outlives the scope.
    pub fn callback<R: Into<Value>>(
        &'scope self,
        signature: &str,
        handler: impl Fn(&Args) -> R + 'scope,
    ) -> Result<ScopedCallback<'scope>, Error> {
        let proto = Prototype::cached(signature)?;
        let handler: Box<dyn Fn(&Args) -> ReturnCode + 'scope> =
            Box::new(move |args: &Args| args.write_owned(handler(args).into()));
        // SAFETY: the handler is dropped before the scope ends (`finish` waits until it is),
        // so nothing it borrows is used after its borrow ends; `Local` keeps it on this
        // thread.
        let handler: Box<dyn Fn(&Args) -> ReturnCode + 'static> =
            unsafe { std::mem::transmute(handler) };
        let inner = proto.install(&ThreadPolicy::SingleThreaded, store_handler(Local(handler)))?;
        let id = inner.id;
        std::mem::forget(inner);
        self.ids.borrow_mut().push((id, false));
        Ok(ScopedCallback { id, ids: &self.ids, _owner_thread: PhantomData })
    }

    /// Releases every callback of the scope and waits until each handler is dropped.
    fn finish(&self) {
        for &(id, released) in self.ids.borrow().iter() {
            if !released {
                registry().release(id);
            }
            registry().wait_until_freed(id);
        }
    }
}

/// A callback of a [`scope`]: usable until the scope ends; dropping it releases it earlier.
pub struct ScopedCallback<'scope> {
    id: u32,
    /// the scope's list, where dropping marks the callback released
    ids: &'scope RefCell<Vec<(u32, bool)>>,
    _owner_thread: PhantomData<*const ()>,
}

impl ScopedCallback<'_> {
    /// The C function pointer (the thunk's address).
    pub fn code_ptr(&self) -> *const std::ffi::c_void {
        registry().thunk(self.id) as *const std::ffi::c_void
    }

    /// The thunk as a typed function pointer.
    ///
    /// # Safety
    /// As [`Callback::as_fn`]; calls after the scope are stale (contained, zero).
    pub unsafe fn as_fn<F: Copy>(&self) -> F {
        assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<usize>(), "F is a fn pointer");
        // SAFETY: F is a function pointer type (checked size; the caller vouches for the rest).
        unsafe { std::mem::transmute_copy(&registry().thunk(self.id)) }
    }
}

impl Drop for ScopedCallback<'_> {
    fn drop(&mut self) {
        registry().release(self.id);
        if let Some(entry) = self.ids.borrow_mut().iter_mut().find(|(id, _)| *id == self.id) {
            entry.1 = true;
        }
    }
}
