//! The public dynamic API: [`Callback`] (a signature string plus a closure becomes a C
//! function pointer) and [`Args`] (what the closure sees of a call).

use std::ffi::c_void;
use std::sync::Arc;

use backcall_abi::{Abi, CallPlan, ReturnCode, Scalar, Signature};

use crate::context::CallbackContext;
use crate::error::Error;
use crate::marshal::{Frame, Value};
use crate::registry::{registry, Handler, Record, Slot, ThreadPolicy};

/// A live callback: a thunk address C can call, until this value is dropped.
///
/// Dropping releases the thunk; a later call through the stale address returns zero and reports
/// a [`crate::CallbackError::Stale`] rather than jumping into freed memory.
///
/// ```
/// use backcall::Callback;
///
/// let add = Callback::new("int64_t (*)(int64_t, int64_t)", |args| args.i64(0) + args.i64(1)).unwrap();
/// let f: extern "C" fn(i64, i64) -> i64 = unsafe { add.as_fn() };
/// assert_eq!(f(40, 2), 42);
/// ```
pub struct Callback {
    slot: &'static Slot,
}

impl Callback {
    /// A single-threaded callback for a C signature (see [`crate::parse_signature`]) whose
    /// handler returns anything convertible into a [`Value`].
    pub fn new<R: Into<Value>>(
        signature: &str,
        handler: impl Fn(&Args) -> R + Send + Sync + 'static,
    ) -> Result<Callback, Error> {
        Prototype::new(signature)?.callback(ThreadPolicy::SingleThreaded, handler)
    }

    /// A callback with an explicit [`ThreadPolicy`].
    pub fn with_policy<R: Into<Value>>(
        signature: &str,
        policy: ThreadPolicy,
        handler: impl Fn(&Args) -> R + Send + Sync + 'static,
    ) -> Result<Callback, Error> {
        Prototype::new(signature)?.callback(policy, handler)
    }

    /// A callback whose handler works on the context itself: it writes the result with
    /// [`Args::write`] (or not at all: the result areas start zeroed) and answers the code.
    ///
    /// ```
    /// use backcall::{Callback, ThreadPolicy, Value};
    ///
    /// let cb = Callback::raw("int (*)(int)", ThreadPolicy::SingleThreaded, |args| {
    ///     args.write(&Value::Int(args.i64(0) * 2)).unwrap()
    /// })
    /// .unwrap();
    /// let f: extern "C" fn(i32) -> i32 = unsafe { cb.as_fn() };
    /// assert_eq!(f(21), 42);
    /// ```
    pub fn raw(
        signature: &str,
        policy: ThreadPolicy,
        handler: impl Fn(&Args) -> ReturnCode + Send + Sync + 'static,
    ) -> Result<Callback, Error> {
        Prototype::new(signature)?.raw(policy, handler)
    }

    /// The C function pointer (the thunk's address).
    pub fn code_ptr(&self) -> *const c_void {
        self.slot.thunk as *const c_void
    }

    /// The executable page holding this callback's thunk, as mapped (read-only view): thunkEntry
    /// at its start, then the thunks. Its bytes are [`backcall_abi::thunks::CodePage::build`]'s
    /// for the page's address, which is what the emulated harness runs too.
    pub fn code_page(&self) -> &'static [u8] {
        // SAFETY: pool pages stay mapped (read+execute) for the life of the process.
        unsafe { std::slice::from_raw_parts(self.slot.page.base as *const u8, crate::pool::page_size()) }
    }

    /// The thunk as a typed function pointer.
    ///
    /// # Safety
    /// `F` must be an `extern "C"` function pointer type matching the callback's signature, and
    /// must not be called after the callback is dropped (a stale call is contained, but `F`'s
    /// result is then zero).
    pub unsafe fn as_fn<F: Copy>(&self) -> F {
        assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<usize>(), "F is a fn pointer");
        // SAFETY: F is a function pointer type (checked size; the caller vouches for the rest).
        unsafe { std::mem::transmute_copy(&self.slot.thunk) }
    }

    /// The plan the callback marshals by.
    pub fn plan(&self) -> Arc<CallPlan> {
        let call = self.slot.enter();
        call.record.expect("a live callback has its record").plan.clone()
    }
}

impl Drop for Callback {
    fn drop(&mut self) {
        registry().release(self.slot);
    }
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Callback({:#x})", self.slot.thunk)
    }
}

/// A parsed and planned signature on the host ABI, reusable for any number of callbacks:
/// creating a callback from a prototype does no parsing and no classification (libffi's `cif`).
///
/// ```
/// use backcall::{Prototype, ThreadPolicy};
///
/// let proto = Prototype::new("int (*)(int)").unwrap();
/// let callbacks: Vec<_> = (0..3)
///     .map(|k| proto.callback(ThreadPolicy::SingleThreaded, move |a| a.i32(0) + k).unwrap())
///     .collect();
/// let f: extern "C" fn(i32) -> i32 = unsafe { callbacks[2].as_fn() };
/// assert_eq!(f(40), 42);
/// ```
#[derive(Clone, Debug)]
pub struct Prototype {
    plan: Arc<CallPlan>,
}

impl Prototype {
    /// Parses and plans a C signature for the host ABI.
    pub fn new(signature: &str) -> Result<Prototype, Error> {
        Prototype::from_signature(&crate::parse_signature(signature)?)
    }

    /// Plans an already parsed signature for the host ABI.
    pub fn from_signature(sig: &Signature) -> Result<Prototype, Error> {
        Ok(Prototype { plan: Arc::new(host_abi()?.plan(sig)?) })
    }

    /// The plan callbacks of this prototype marshal by.
    pub fn plan(&self) -> &CallPlan {
        &self.plan
    }

    /// A callback running `handler`, which returns anything convertible into a [`Value`].
    pub fn callback<R: Into<Value>>(
        &self,
        policy: ThreadPolicy,
        handler: impl Fn(&Args) -> R + Send + Sync + 'static,
    ) -> Result<Callback, Error> {
        let handler = Handler::Dynamic(Box::new(move |args| handler(args).into()));
        self.install(policy, handler)
    }

    /// A callback with a raw handler (see [`Callback::raw`]).
    pub fn raw(
        &self,
        policy: ThreadPolicy,
        handler: impl Fn(&Args) -> ReturnCode + Send + Sync + 'static,
    ) -> Result<Callback, Error> {
        self.install(policy, Handler::Raw(Box::new(handler)))
    }

    pub(crate) fn install(
        &self,
        policy: ThreadPolicy,
        handler: Handler,
    ) -> Result<Callback, Error> {
        let owner = crate::dispatch::thread_id();
        let record = Record { plan: self.plan.clone(), handler, policy, owner };
        let slot = registry().install(self.plan.abi, record)?;
        Ok(Callback { slot })
    }
}

/// The ABI this process runs, if backcall has a runtime for it.
pub fn host_abi() -> Result<Abi, Error> {
    Abi::host().filter(|a| backcall_abi::blobs::for_abi(*a).is_some()).ok_or(Error::UnsupportedHost)
}

/// The arguments of one call, read through the callback's plan.
///
/// Scalar getters convert from the declared C type (`args.i64(0)` of a `short` argument is that
/// short, sign-extended); asking for a scalar of an aggregate argument, or an index out of
/// range, panics (and the panic is contained at the C boundary).
pub struct Args<'a> {
    pub(crate) frame: Frame<'a>,
    pub(crate) slot: &'a Slot,
}

impl Args<'_> {
    /// Number of arguments.
    pub fn len(&self) -> usize {
        self.frame.plan.args.len()
    }

    /// Whether the signature takes no arguments.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The plan of the call.
    pub fn plan(&self) -> &CallPlan {
        self.frame.plan
    }

    /// The thunk address called.
    pub fn thunk(&self) -> usize {
        self.slot.thunk
    }

    /// The call's context (for [`crate::return_from_context`]).
    pub fn context(&self) -> *mut CallbackContext {
        self.frame.ctx as usize as *mut CallbackContext
    }

    fn scalar(&self, i: usize) -> (Scalar, u64) {
        self.frame.scalar_bits(i).unwrap_or_else(|| {
            panic!("argument {i} of `{}` is not a scalar", self.frame.plan.signature)
        })
    }

    /// Argument `i` as a signed 64-bit integer (floats are truncated).
    pub fn i64(&self, i: usize) -> i64 {
        match self.scalar(i) {
            (Scalar::Float, bits) => f32::from_bits(bits as u32) as i64,
            (Scalar::Double, bits) => f64::from_bits(bits) as i64,
            (_, bits) => bits as i64,
        }
    }

    /// Argument `i` as an unsigned 64-bit integer (floats are truncated).
    pub fn u64(&self, i: usize) -> u64 {
        self.i64(i) as u64
    }

    /// Argument `i` as `i32` (truncating wider integers).
    pub fn i32(&self, i: usize) -> i32 {
        self.i64(i) as i32
    }

    /// Argument `i` as `u32` (truncating wider integers).
    pub fn u32(&self, i: usize) -> u32 {
        self.i64(i) as u32
    }

    /// Argument `i` as `f64`.
    pub fn f64(&self, i: usize) -> f64 {
        match self.scalar(i) {
            (Scalar::Float, bits) => f64::from(f32::from_bits(bits as u32)),
            (Scalar::Double, bits) => f64::from_bits(bits),
            (s, bits) if backcall_abi::is_signed(self.frame.plan.abi, s) => bits as i64 as f64,
            (_, bits) => bits as f64,
        }
    }

    /// Argument `i` as `f32`.
    pub fn f32(&self, i: usize) -> f32 {
        match self.scalar(i) {
            (Scalar::Float, bits) => f32::from_bits(bits as u32),
            _ => self.f64(i) as f32,
        }
    }

    /// Argument `i` as a pointer.
    pub fn ptr<T>(&self, i: usize) -> *mut T {
        self.u64(i) as usize as *mut T
    }

    /// Argument `i` as a generic [`Value`] (aggregates as [`Value::Bytes`]).
    pub fn value(&self, i: usize) -> Value {
        match self.frame.scalar_bits(i) {
            Some((Scalar::Float, bits)) => Value::F32(f32::from_bits(bits as u32)),
            Some((Scalar::Double, bits)) => Value::F64(f64::from_bits(bits)),
            Some((s, bits)) if backcall_abi::is_signed(self.frame.plan.abi, s) => {
                Value::Int(bits as i64)
            }
            Some((_, bits)) => Value::UInt(bits),
            None => Value::Bytes(self.bytes(i)),
        }
    }

    /// The bytes of argument `i` (any type), exactly its size.
    pub fn bytes(&self, i: usize) -> Vec<u8> {
        let mut out = vec![0u8; self.frame.plan.args[i].layout.size as usize];
        self.frame.read_arg(i, &mut out);
        out
    }

    /// Copies the bytes of argument `i` into `out`, which must be exactly its size.
    pub fn read_bytes(&self, i: usize, out: &mut [u8]) {
        assert_eq!(out.len(), self.frame.plan.args[i].layout.size as usize, "argument size");
        self.frame.read_arg(i, out);
    }

    /// Writes the call's result now (for raw handlers and [`crate::return_from_context`]).
    pub fn write(&self, value: &Value) -> Result<ReturnCode, Error> {
        self.frame.write_value(value).map_err(Error::Code)
    }
}
