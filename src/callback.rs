//! The public dynamic API: [`Callback`] (a signature string plus a closure becomes a C
//! function pointer) and [`Args`] (what the closure sees of a call).

use std::cell::RefCell;
use std::ffi::c_void;
use std::rc::Rc;
use std::sync::Arc;

use backcall_abi::{Abi, ArgPass, CallPlan, ReturnCode, Scalar, Shape, Signature, Type};

use crate::context::CallbackContext;
use crate::error::Error;
use crate::marshal::{as_f64, Value};
use crate::native::{Native, PlanInfo, RetKind};
use crate::registry::{
    owner_key, registry, HandlerBox, HandlerVt, Route, SerialLock, ThreadPolicy,
};

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
    pub(crate) id: u32,
}

impl Callback {
    /// A single-threaded callback for a C signature (see [`crate::parse_signature`]) whose
    /// handler returns anything convertible into a [`Value`].
    pub fn new<R: Into<Value>>(
        signature: &str,
        handler: impl Fn(&Args) -> R + Send + Sync + 'static,
    ) -> Result<Callback, Error> {
        Prototype::cached(signature)?.callback(ThreadPolicy::SingleThreaded, handler)
    }

    /// A callback with an explicit [`ThreadPolicy`].
    pub fn with_policy<R: Into<Value>>(
        signature: &str,
        policy: ThreadPolicy,
        handler: impl Fn(&Args) -> R + Send + Sync + 'static,
    ) -> Result<Callback, Error> {
        Prototype::cached(signature)?.callback(policy, handler)
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
        Prototype::cached(signature)?.raw(policy, handler)
    }

    /// Whether C's calls reach this callback's handler through a typed stub (a
    /// [`crate::typed::TypedCallback`] whose signature has one on this ABI), rather than
    /// through the context and the dispatcher.
    ///
    /// ```
    /// use backcall::typed::TypedCallback;
    ///
    /// let cb = TypedCallback::<extern "C" fn(i64, i64) -> i64>::new(|a, b| a + b).unwrap();
    /// assert_eq!(cb.callback().on_typed_route(), cfg!(any(target_arch = "x86_64", target_arch = "x86", target_arch = "aarch64")));
    /// ```
    pub fn on_typed_route(&self) -> bool {
        registry().on_typed_route(self.id)
    }

    /// The C function pointer (the thunk's address).
    pub fn code_ptr(&self) -> *const c_void {
        registry().thunk(self.id) as *const c_void
    }

    /// The executable page holding this callback's thunk, as mapped (read-only view): thunkEntry
    /// at its start, then the thunks. Its bytes are [`backcall_abi::thunks::CodePage::build`]'s
    /// for the page's address, which is what the emulated harness runs too.
    pub fn code_page(&self) -> &'static [u8] {
        // SAFETY: pool pages stay mapped (read+execute) for the life of the process.
        unsafe {
            std::slice::from_raw_parts(
                registry().page(self.id).base as *const u8,
                crate::pool::page_size(),
            )
        }
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
        unsafe { std::mem::transmute_copy(&registry().thunk(self.id)) }
    }

    /// The plan the callback marshals by.
    #[inline]
    pub fn plan(&self) -> Arc<CallPlan> {
        let slot = registry().slot(self.id).expect("a live callback's slot");
        slot.live_info().plan.clone()
    }
}

impl Drop for Callback {
    fn drop(&mut self) {
        registry().release(self.id);
    }
}

impl std::fmt::Debug for Callback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Callback({:#x})", registry().thunk(self.id))
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
    pub(crate) info: Arc<PlanInfo>,
}

impl Prototype {
    /// Parses and plans a C signature for the host ABI. The same text again (on the same
    /// thread) shares the first one's plan: a cache of the [`PROTOTYPE_CACHE`] most recent
    /// signatures per thread, so that creating callbacks from a repeated string costs neither
    /// parsing nor planning.
    pub fn new(signature: &str) -> Result<Prototype, Error> {
        Prototype::cached(signature).map(|p| (*p).clone())
    }

    /// [`Prototype::new`], shared by reference: creating a callback from a repeated string
    /// then takes no atomic reference count (two locked instructions, a sixth of a create
    /// and release).
    pub(crate) fn cached(signature: &str) -> Result<Rc<Prototype>, Error> {
        thread_local! {
            static CACHE: RefCell<PrototypeCache> = RefCell::new(PrototypeCache::default());
        }
        // (`try_with`: during the thread's teardown the cache may be gone; plan afresh then)
        if let Ok(Some(p)) = CACHE.try_with(|c| c.borrow_mut().get(signature)) {
            return Ok(p);
        }
        let proto = Rc::new(Prototype::from_signature(&crate::parse_signature(signature)?)?);
        let _ = CACHE.try_with(|c| c.borrow_mut().put(signature, proto.clone()));
        Ok(proto)
    }

    /// Plans an already parsed signature for the host ABI.
    pub fn from_signature(sig: &Signature) -> Result<Prototype, Error> {
        Ok(Prototype { info: Arc::new(PlanInfo::new(host_abi()?.plan(sig)?)) })
    }

    /// The same prototype, whose callbacks return `refusal` (instead of -1, or zeros for a
    /// non-integer result) when a thread other than the owner calls them. `Err` when the value
    /// does not fit the result type. A stale call still returns zeros: a released callback's
    /// slot keeps only its return protocol.
    ///
    /// ```
    /// use backcall::{Prototype, Value};
    ///
    /// // A `void *(*)(void *)` thread start routine: -1 would read as PTHREAD_CANCELED.
    /// let start = Prototype::new("void *(*)(void *)").unwrap().refusing(Value::UInt(0)).unwrap();
    /// assert!(Prototype::new("int (*)(void)").unwrap().refusing(Value::F64(1.5)).is_err());
    /// # let _ = start;
    /// ```
    pub fn refusing(&self, refusal: impl Into<Value>) -> Result<Prototype, Error> {
        let refusal = refusal.into();
        crate::marshal::encode_result(&self.info.plan.ret_layout, &refusal)
            .map_err(|why| Error::BadValue(format!("the refusal value: {why}")))?;
        let mut info = (*self.info).clone();
        info.refusal = Some(refusal);
        Ok(Prototype { info: Arc::new(info) })
    }

    /// Whether two prototypes share one plan (a repeated signature text does).
    ///
    /// ```
    /// use backcall::Prototype;
    ///
    /// let a = Prototype::new("int (*)(int)").unwrap();
    /// assert!(a.shares_plan_with(&Prototype::new("int (*)(int)").unwrap()));
    /// ```
    pub fn shares_plan_with(&self, other: &Prototype) -> bool {
        Arc::ptr_eq(&self.info, &other.info)
    }

    /// The plan callbacks of this prototype marshal by.
    pub fn plan(&self) -> &CallPlan {
        &self.info.plan
    }

    /// A callback running `handler`, which returns anything convertible into a [`Value`].
    pub fn callback<R: Into<Value>>(
        &self,
        policy: ThreadPolicy,
        handler: impl Fn(&Args) -> R + Send + Sync + 'static,
    ) -> Result<Callback, Error> {
        let handler = dynamic_handler(&policy, handler);
        self.install(&policy, handler)
    }

    /// A callback with a raw handler (see [`Callback::raw`]).
    pub fn raw(
        &self,
        policy: ThreadPolicy,
        handler: impl Fn(&Args) -> ReturnCode + Send + Sync + 'static,
    ) -> Result<Callback, Error> {
        // The result areas start zeroed and the callee pop set, so a raw handler that writes
        // nothing returns zeros the way the caller expects.
        let handler = handler_box(&policy, move |args: &Args| {
            args.native.frame().write_zero_result();
            handler(args)
        });
        self.install(&policy, handler)
    }

    pub(crate) fn install(
        &self,
        policy: &ThreadPolicy,
        handler: HandlerBox,
    ) -> Result<Callback, Error> {
        self.install_on(policy, handler, self.info.context_route)
    }

    /// A callback whose handler has a typed entry: on the typed route when the plan has a
    /// stub, else on the context route (the handler's `call` runs there).
    pub(crate) fn install_typed(
        &self,
        policy: &ThreadPolicy,
        handler: HandlerBox,
    ) -> Result<Callback, Error> {
        self.install_on(policy, handler, self.info.typed_route)
    }

    fn install_on(
        &self,
        policy: &ThreadPolicy,
        handler: HandlerBox,
        route: Route,
    ) -> Result<Callback, Error> {
        let owner = owner_key(policy)?;
        let id = registry().install(self.info.plan.abi, &self.info, owner, handler, route)?;
        Ok(Callback { id })
    }
}

/// Signatures a thread's prototype cache keeps (see [`Prototype::new`]).
pub const PROTOTYPE_CACHE: usize = 64;

/// The most recently used prototypes of one thread, by signature text; the least recently
/// used is dropped past [`PROTOTYPE_CACHE`].
#[derive(Default)]
struct PrototypeCache {
    entries: Vec<(Box<str>, Rc<Prototype>, u64)>,
    clock: u64,
    /// the entry found last (a repeated string is found at once)
    last: usize,
}

impl PrototypeCache {
    fn get(&mut self, signature: &str) -> Option<Rc<Prototype>> {
        self.clock += 1;
        let clock = self.clock;
        let hit = match self.entries.get(self.last) {
            Some(e) if &*e.0 == signature => self.last,
            _ => self.entries.iter().position(|e| &*e.0 == signature)?,
        };
        self.last = hit;
        let entry = &mut self.entries[hit];
        entry.2 = clock;
        Some(entry.1.clone())
    }

    fn put(&mut self, signature: &str, proto: Rc<Prototype>) {
        if self.entries.len() >= PROTOTYPE_CACHE {
            let oldest = self.entries.iter().enumerate().min_by_key(|(_, e)| e.2).map(|(i, _)| i);
            if let Some(i) = oldest {
                self.entries.swap_remove(i);
            }
        }
        self.entries.push((signature.into(), proto, self.clock));
        self.last = self.entries.len() - 1;
    }
}

/// A dynamic handler: decoded arguments in, a [`Value`] out.
fn dynamic_handler<R: Into<Value>>(
    policy: &ThreadPolicy,
    handler: impl Fn(&Args) -> R + Send + Sync + 'static,
) -> HandlerBox {
    handler_box(policy, move |args: &Args| args.write_owned(handler(args).into()))
}

/// Stores a handler that writes its own result, for a callback of `policy`.
pub(crate) fn handler_box<H>(policy: &ThreadPolicy, handler: H) -> HandlerBox
where
    H: Fn(&Args) -> ReturnCode + Send + Sync + 'static,
{
    store_for(policy, Dynamic(handler))
}

/// A handler the dispatcher runs: the vtable's `call`, monomorphised per handler type.
pub(crate) trait Handler: Send + Sync + Sized + 'static {
    /// The typed route's entry (see `typed.rs`), if the handler has one.
    const TYPED: unsafe extern "C" fn() = crate::typed::REFUSING_ENTRY;
    /// Whether the handler is not really `Send` (a wrapper asserted it for a single-threaded
    /// callback): then only its owner thread drops it.
    const LOCAL: bool = false;
    /// For a serialized callback's handler: its group's lock, from the handler's data.
    const SERIAL: Option<unsafe fn(*const ()) -> *const SerialLock> = None;

    /// Runs the handler at `data` on one call (result written) and answers the return code.
    ///
    /// # Safety
    /// `data` points at a live `Self`.
    unsafe fn call(data: *const (), args: &Args) -> ReturnCode;
}

/// A closure over [`Args`] (the dynamic front end and raw handlers).
struct Dynamic<H>(H);

impl<H: Fn(&Args) -> ReturnCode + Send + Sync + 'static> Handler for Dynamic<H> {
    unsafe fn call(data: *const (), args: &Args) -> ReturnCode {
        // SAFETY: per the contract.
        unsafe { ((*data.cast::<Self>()).0)(args) }
    }
}

/// A serialized callback's handler: the handler first (its data pointer is the handler's),
/// then its group's lock, which the dispatcher takes around every call.
#[repr(C)]
struct Serial<H> {
    handler: H,
    lock: Arc<SerialLock>,
}

impl<H: Handler> Handler for Serial<H> {
    const TYPED: unsafe extern "C" fn() = H::TYPED;
    const LOCAL: bool = H::LOCAL;
    const SERIAL: Option<unsafe fn(*const ()) -> *const SerialLock> = Some(Self::lock);

    unsafe fn call(data: *const (), args: &Args) -> ReturnCode {
        // SAFETY: `data` points at a `Serial<H>`, whose first field is the handler.
        unsafe { H::call(data, args) }
    }
}

impl<H> Serial<H> {
    /// # Safety
    /// `data` points at a live `Serial<H>`.
    unsafe fn lock(data: *const ()) -> *const SerialLock {
        // SAFETY: per the contract.
        unsafe { Arc::as_ptr(&(*data.cast::<Self>()).lock) }
    }
}

/// `handler` stored for a callback of `policy`: a serialized one takes its group's lock.
pub(crate) fn store_for<H: Handler>(policy: &ThreadPolicy, handler: H) -> HandlerBox {
    match policy {
        ThreadPolicy::SingleThreaded => store_handler(handler),
        ThreadPolicy::Serialized => store_handler(Serial { handler, lock: Arc::default() }),
        ThreadPolicy::SerializedWith(group) => {
            store_handler(Serial { handler, lock: group.0.clone() })
        }
    }
}

/// `handler` as a [`HandlerBox`]: inline (its bytes in the slot's data word) when it fits a
/// word, else boxed.
pub(crate) fn store_handler<H: Handler>(handler: H) -> HandlerBox {
    /// # Safety
    /// `data` is a `Box<H>`'s pointer, dropped once.
    unsafe fn drop_box<H>(data: *mut ()) {
        // SAFETY: per the contract.
        drop(unsafe { Box::from_raw(data.cast::<H>()) });
    }
    /// # Safety
    /// `data` points at an `H` stored in place, dropped once.
    unsafe fn drop_inline<H>(data: *mut ()) {
        // SAFETY: per the contract.
        unsafe { std::ptr::drop_in_place(data.cast::<H>()) }
    }
    let fits = std::mem::size_of::<H>() <= std::mem::size_of::<*mut ()>()
        && std::mem::align_of::<H>() <= std::mem::align_of::<*mut ()>();
    if fits {
        let vt: &'static HandlerVt = &const {
            HandlerVt {
                call: H::call,
                drop: drop_inline::<H>,
                typed: H::TYPED,
                local: H::LOCAL,
                serial: H::SERIAL,
                trivial_drop: !std::mem::needs_drop::<H>(),
            }
        };
        let mut data: *mut () = std::ptr::null_mut();
        // SAFETY: `H` fits the word (size and alignment checked); the word was initialised.
        unsafe { std::ptr::write((&raw mut data).cast::<H>(), handler) };
        HandlerBox { vt, data, inline: true }
    } else {
        let vt: &'static HandlerVt = &HandlerVt {
            call: H::call,
            drop: drop_box::<H>,
            typed: H::TYPED,
            local: H::LOCAL,
            serial: H::SERIAL,
            trivial_drop: false,
        };
        HandlerBox { vt, data: Box::into_raw(Box::new(handler)).cast(), inline: false }
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
    pub(crate) native: Native<'a>,
    pub(crate) thunk: usize,
}

impl Args<'_> {
    /// Number of arguments.
    #[inline]
    pub fn len(&self) -> usize {
        self.native.info.plan.args.len()
    }

    /// Whether the signature takes no arguments.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The plan of the call.
    pub fn plan(&self) -> &CallPlan {
        &self.native.info.plan
    }

    /// The thunk address called.
    #[inline]
    pub fn thunk(&self) -> usize {
        self.thunk
    }

    /// The call's context (for [`crate::return_from_context`]).
    #[inline]
    pub fn context(&self) -> *mut CallbackContext {
        self.native.ctx
    }

    /// Argument `i`'s scalar and bits, extended to 64 bits: straight from the context when the
    /// plan allows (native.rs), else through the generic frame.
    #[inline(always)]
    fn scalar(&self, i: usize) -> (Scalar, u64) {
        match self.native.fast_bits(i) {
            Some(bits) => (self.native.info.arg(i).scalar, bits),
            None => self.scalar_slow(i),
        }
    }

    #[inline(never)]
    fn scalar_slow(&self, i: usize) -> (Scalar, u64) {
        self.native.frame().scalar_bits(i).unwrap_or_else(|| {
            panic!("argument {i} of `{}` is not a scalar", self.plan().signature)
        })
    }

    /// Whether scalar `s` is signed on this ABI.
    fn signed(&self, s: Scalar) -> bool {
        backcall_abi::is_signed(self.plan().abi, s)
    }

    /// Argument `i` as a signed 64-bit integer (floats are truncated).
    #[inline]
    pub fn i64(&self, i: usize) -> i64 {
        match self.native.fast_i64(i) {
            Some(x) => x,
            None => self.i64_slow(i),
        }
    }

    /// [`Args::i64`] by the generic route: the scalar's bits, then its conversion.
    #[inline(never)]
    pub(crate) fn i64_slow(&self, i: usize) -> i64 {
        match self.scalar_slow(i) {
            (Scalar::Float, bits) => f32::from_bits(bits as u32) as i64,
            (Scalar::Double, bits) => f64::from_bits(bits) as i64,
            (_, bits) => bits as i64,
        }
    }

    /// Argument `i` as an unsigned 64-bit integer (floats are truncated).
    #[inline]
    pub fn u64(&self, i: usize) -> u64 {
        self.i64(i) as u64
    }

    /// Argument `i` as a signed 128-bit integer: an `__int128` whole, any other integer
    /// extended by its signedness (floats are truncated).
    ///
    /// ```
    /// # #[cfg(all(target_arch = "x86_64", target_os = "linux"))] {
    /// let cb = backcall::Callback::new("__int128 (*)(__int128, int)", |a| {
    ///     a.i128(0) * i128::from(a.i32(1))
    /// })
    /// .unwrap();
    /// // SAFETY: the signature above.
    /// let f: extern "C" fn(i128, i32) -> i128 = unsafe { cb.as_fn() };
    /// assert_eq!(f(-(1 << 100), 3), -3 << 100);
    /// # }
    /// ```
    pub fn i128(&self, i: usize) -> i128 {
        match self.plan().args.get(i).map(|a| &a.layout.shape) {
            Some(Shape::Scalar(Scalar::Int128)) => i128::from_le_bytes(self.wide(i)),
            Some(Shape::Scalar(Scalar::UInt128)) => u128::from_le_bytes(self.wide(i)) as i128,
            _ => match self.scalar(i) {
                (s, bits) if !s.is_float() && !self.signed(s) => i128::from(bits),
                _ => i128::from(self.i64(i)),
            },
        }
    }

    /// Argument `i` as an unsigned 128-bit integer (see [`Args::i128`]).
    pub fn u128(&self, i: usize) -> u128 {
        self.i128(i) as u128
    }

    /// The 16 bytes of an `__int128` argument.
    fn wide(&self, i: usize) -> [u8; 16] {
        let mut b = [0u8; 16];
        self.native.frame().read_arg(i, &mut b);
        b
    }

    /// Argument `i` as `i32` (truncating wider integers).
    #[inline]
    pub fn i32(&self, i: usize) -> i32 {
        self.i64(i) as i32
    }

    /// Argument `i` as `u32` (truncating wider integers).
    #[inline]
    pub fn u32(&self, i: usize) -> u32 {
        self.i64(i) as u32
    }

    /// Argument `i` as `f64` (a `long double` wider than `double`, x87's 80 bits or AArch64
    /// Linux's binary128, rounded to the nearest `double`; all its bits are in [`Args::bytes`]).
    ///
    /// ```
    /// # #[cfg(all(target_arch = "x86_64", target_os = "linux"))] {
    /// // `long double` is x87's 80-bit format on x86-64 Linux: read as the nearest double,
    /// // returned exactly from one, in st(0).
    /// let cb = backcall::Callback::new("long double (*)(long double, int)", |a| {
    ///     a.f64(0) * f64::from(a.i32(1))
    /// })
    /// .unwrap();
    /// assert_eq!(cb.plan().code, backcall::ReturnCode::LongDouble);
    /// # }
    /// ```
    #[inline]
    pub fn f64(&self, i: usize) -> f64 {
        match self.native.fast_f64(i) {
            Some(x) => x,
            None => self.f64_slow(i),
        }
    }

    /// [`Args::f64`] by the generic route.
    #[inline(never)]
    pub(crate) fn f64_slow(&self, i: usize) -> f64 {
        match self.scalar_slow(i) {
            (Scalar::Float, bits) => f64::from(f32::from_bits(bits as u32)),
            (Scalar::Double, bits) => f64::from_bits(bits),
            (s, bits) if self.signed(s) => bits as i64 as f64,
            (_, bits) => bits as f64,
        }
    }

    /// Argument `i` as `f32`.
    #[inline]
    pub fn f32(&self, i: usize) -> f32 {
        match self.native.fast_f32(i) {
            Some(x) => x,
            None => self.f32_slow(i),
        }
    }

    /// [`Args::f32`] by the generic route.
    #[inline(never)]
    pub(crate) fn f32_slow(&self, i: usize) -> f32 {
        match self.scalar_slow(i) {
            (Scalar::Float, bits) => f32::from_bits(bits as u32),
            _ => self.f64(i) as f32,
        }
    }

    /// Argument `i` as a pointer.
    #[inline]
    pub fn ptr<T>(&self, i: usize) -> *mut T {
        self.u64(i) as usize as *mut T
    }

    /// Argument `i`, a `va_list`, as what a C function that takes a `va_list` (declared in Rust
    /// with a pointer in its place, as `vsnprintf(buf, n, fmt, ap: *mut c_void)`) expects: the
    /// pointer itself (i386, Win64, Apple arm64, x86-64 SysV's pointer to its
    /// `__va_list_tag`), or, on AArch64 Linux, the address of the caller's copy of the record.
    ///
    /// ```
    /// let cb = backcall::Callback::new("int (*)(const char *, va_list)", |a| {
    ///     (a.va_list(1) as usize == 0x1000) as i32
    /// })
    /// .unwrap();
    /// # #[cfg(not(all(target_arch = "aarch64", target_os = "linux")))]
    /// # {
    /// let f: extern "C" fn(*const u8, *mut u8) -> i32 = unsafe { cb.as_fn() };
    /// assert_eq!(f(b"%d\0".as_ptr(), 0x1000 as *mut u8), 1);
    /// # }
    /// ```
    pub fn va_list(&self, i: usize) -> *mut c_void {
        match &self.plan().args[i].pass {
            ArgPass::Indirect { .. } => {
                self.native.frame().arg_address(i).unwrap_or_default() as usize as *mut c_void
            }
            ArgPass::Direct(_) => self.ptr(i),
        }
    }

    /// The unnamed arguments of a variadic call (`int (*)(const char *fmt, ...)`), to read one
    /// by one as C's `va_arg` does: name each one's type, and the reader finds it where the
    /// ABI put it, after the named parameters and the unnamed arguments read before it.
    /// Asking a signature without `...` panics (contained at the C boundary, as every
    /// getter's misuse is).
    ///
    /// To hand the unnamed arguments on to `vsnprintf` instead, see [`Args::va_start`].
    ///
    /// # Safety
    /// As with `va_arg`: the reader reads only the unnamed arguments the caller passed, each
    /// as the type the caller passed it as (after C's promotions). The signature's named
    /// parameters (a count, a format string) say which they are. Reading past them reads
    /// whatever lies there, and a by-reference type (a large struct) follows whatever pointer
    /// is there.
    ///
    /// ```
    /// let sum = backcall::Callback::new("double (*)(int count, ...)", |a| {
    ///     // SAFETY: the caller passes `count` doubles.
    ///     let mut va = unsafe { a.va_args() };
    ///     (0..a.i32(0)).map(|_| va.f64()).sum::<f64>()
    /// })
    /// .unwrap();
    /// let f: unsafe extern "C" fn(i32, ...) -> f64 = unsafe { sum.as_fn() };
    /// assert_eq!(unsafe { f(3, 1.5f64, 2.0f64, 0.25f64) }, 3.75);
    /// ```
    pub unsafe fn va_args(&self) -> VaArgs<'_> {
        let sig = &self.plan().signature;
        assert!(sig.variadic, "unnamed arguments of `{sig}`, a signature without `...`");
        VaArgs { args: self, cursor: crate::marshal::VaCursor::new() }
    }

    /// A `va_list` over the unnamed arguments of this variadic call, as `va_start` makes it,
    /// to hand to a C function that takes one: `vsnprintf`, or a library's `v` variant of a
    /// logging function. [`OwnedVaList::as_ptr`] is what such a function receives, declared
    /// in Rust with a pointer for its `va_list` parameter (as for [`Args::va_list`]).
    ///
    /// An error says why there is none: a signature without `...`.
    ///
    /// ```
    /// use std::ffi::{c_char, c_int, c_void, CStr};
    /// extern "C" {
    ///     fn vsnprintf(buf: *mut c_char, n: usize, fmt: *const c_char, ap: *mut c_void) -> c_int;
    /// }
    /// let log = backcall::Callback::new("void (*)(const char *fmt, ...)", |a| {
    ///     let mut buf = [0 as c_char; 64];
    ///     let mut ap = a.va_start().unwrap();
    ///     // SAFETY: the caller's format names the unnamed arguments it passes.
    ///     unsafe { vsnprintf(buf.as_mut_ptr(), buf.len(), a.ptr(0), ap.as_ptr()) };
    ///     let text = unsafe { CStr::from_ptr(buf.as_ptr()) };
    ///     assert_eq!(text.to_str().unwrap(), "7 apples at 0.50");
    /// })
    /// .unwrap();
    /// let f: unsafe extern "C" fn(*const c_char, ...) = unsafe { log.as_fn() };
    /// unsafe { f(c"%d %s at %.2f".as_ptr(), 7, c"apples".as_ptr(), 0.5f64) };
    /// ```
    pub fn va_start(&self) -> Result<OwnedVaList<'_>, Error> {
        let mut record = Box::new(VaListRecord([0; crate::marshal::VA_LIST_RECORD_BYTES]));
        let at = record.0.as_mut_ptr() as u64;
        let image = self.native.frame().va_start(at).map_err(Error::Abi)?;
        record.0[..image.bytes.len()].copy_from_slice(&image.bytes);
        let value = image.value as usize as *mut c_void;
        Ok(OwnedVaList { _record: record, value, _call: std::marker::PhantomData })
    }

    /// Argument `i` as a C string (`const char *`), or `None` for a null pointer.
    ///
    /// # Safety
    /// A non-null pointer points at a NUL-terminated string that stays valid and unchanged for
    /// the call.
    ///
    /// ```
    /// let cb = backcall::Callback::new("size_t (*)(const char *)", |a| {
    ///     unsafe { a.c_str(0) }.map_or(0, |s| s.to_bytes().len())
    /// })
    /// .unwrap();
    /// let f: extern "C" fn(*const std::ffi::c_char) -> usize = unsafe { cb.as_fn() };
    /// assert_eq!(f(c"four".as_ptr()), 4);
    /// assert_eq!(f(std::ptr::null()), 0);
    /// ```
    pub unsafe fn c_str(&self, i: usize) -> Option<&std::ffi::CStr> {
        let p = self.ptr::<std::ffi::c_char>(i);
        // SAFETY: non-null, and the caller vouches for the rest.
        (!p.is_null()).then(|| unsafe { std::ffi::CStr::from_ptr(p) })
    }

    /// Argument `i` as a null-terminated array of pointers (`char **argv`, a `NULL`-ended list):
    /// the pointers before the first null, or `None` for a null array (or a misaligned one).
    ///
    /// # Safety
    /// A non-null array is readable up to and including its null element, for the call.
    pub unsafe fn ptr_array<T>(&self, i: usize) -> Option<&[*mut T]> {
        let p = self.ptr::<*mut T>(i);
        if p.is_null() || !p.is_aligned() {
            return None;
        }
        let mut n = 0;
        // SAFETY: the caller vouches that the elements up to the null one are readable.
        while !unsafe { *p.add(n) }.is_null() {
            n += 1;
        }
        // SAFETY: `n` readable, aligned elements.
        Some(unsafe { std::slice::from_raw_parts(p, n) })
    }

    /// The bytes of a `(const void *data, size_t len)` pair: the pointer is argument `data`,
    /// the length argument `len`. A null pointer with length 0 is an empty slice; `None` for a
    /// null pointer with a length, or a negative or oversized length.
    ///
    /// # Safety
    /// A non-null pointer points at `len` readable bytes, unchanged for the call.
    pub unsafe fn bytes_at(&self, data: usize, len: usize) -> Option<&[u8]> {
        // SAFETY: the caller's contract.
        unsafe { self.slice::<u8>(data, len) }
    }

    /// A `(const T *items, count)` pair as a slice: the pointer is argument `items`, the count
    /// argument `count`. `None` for a null pointer with a count, a misaligned pointer, or a
    /// negative or oversized count; a null pointer with count 0 is an empty slice.
    ///
    /// # Safety
    /// A non-null pointer points at `count` initialized `T`s, unchanged for the call.
    ///
    /// ```
    /// let sum = backcall::Callback::new("int64_t (*)(const int *, int)", |a| {
    ///     unsafe { a.slice::<i32>(0, 1) }.map_or(-1, |v| v.iter().map(|&x| i64::from(x)).sum())
    /// })
    /// .unwrap();
    /// let f: extern "C" fn(*const i32, i32) -> i64 = unsafe { sum.as_fn() };
    /// assert_eq!(f([1, 2, 3].as_ptr(), 3), 6);
    /// assert_eq!(f(std::ptr::null(), 2), -1);
    /// ```
    pub unsafe fn slice<T>(&self, items: usize, count: usize) -> Option<&[T]> {
        let p = self.ptr::<T>(items).cast_const();
        let n = usize::try_from(self.i64(count)).ok()?;
        if n.checked_mul(std::mem::size_of::<T>()).is_none_or(|b| b > isize::MAX as usize) {
            return None;
        }
        match (p.is_null(), n) {
            (true, 0) => Some(&[]),
            (true, _) => None,
            _ if !p.is_aligned() => None,
            // SAFETY: the caller vouches for `n` initialized, aligned `T`s.
            _ => Some(unsafe { std::slice::from_raw_parts(p, n) }),
        }
    }

    /// Argument `i` as a generic [`Value`] (aggregates as [`Value::Bytes`]).
    pub fn value(&self, i: usize) -> Value {
        match self.native.frame().scalar_bits(i) {
            Some((Scalar::Float, bits)) => Value::F32(f32::from_bits(bits as u32)),
            Some((Scalar::Double, bits)) => Value::F64(f64::from_bits(bits)),
            Some((s, bits)) if self.signed(s) => Value::Int(bits as i64),
            Some((_, bits)) => Value::UInt(bits),
            None => Value::Bytes(self.bytes(i)),
        }
    }

    /// The bytes of argument `i` (any type), exactly its size.
    pub fn bytes(&self, i: usize) -> Vec<u8> {
        let mut out = vec![0u8; self.plan().args[i].layout.size as usize];
        self.native.frame().read_arg(i, &mut out);
        out
    }

    /// Copies the bytes of argument `i` into `out`, which must be exactly its size.
    pub fn read_bytes(&self, i: usize, out: &mut [u8]) {
        assert_eq!(out.len(), self.plan().args[i].layout.size as usize, "argument size");
        self.native.frame().read_arg(i, out);
    }

    /// Writes the call's result now (for raw handlers and [`crate::return_from_context`]).
    pub fn write(&self, value: &Value) -> Result<ReturnCode, Error> {
        self.write_value(value).map_err(Error::BadValue)
    }

    /// Writes a handler's result; a value the plan cannot encode is reported
    /// ([`crate::CallbackError::BadResult`]) and the call returns zeros.
    #[inline(always)]
    pub(crate) fn write_result(&self, value: &Value) -> ReturnCode {
        match self.write_value(value) {
            Ok(code) => code,
            Err(message) => self.bad_result(message),
        }
    }

    /// [`Args::write_result`] of a value the handler gave up: a scalar is stored from
    /// registers, and only another value goes through memory (out of line), so that the
    /// dynamic route's hot path keeps no `Value` on its stack.
    #[inline(always)]
    pub(crate) fn write_owned(&self, value: Value) -> ReturnCode {
        match self.fast_result_bits(&value).and_then(|bits| self.native.store_bits(bits)) {
            Some(code) => code,
            None => self.write_result_cold(value),
        }
    }

    #[cold]
    #[inline(never)]
    fn write_result_cold(&self, value: Value) -> ReturnCode {
        self.write_result(&value)
    }

    #[cold]
    #[inline(never)]
    fn bad_result(&self, message: String) -> ReturnCode {
        crate::error::report(crate::CallbackError::BadResult { thunk: self.thunk, message });
        self.native.frame().write_zero_result()
    }

    /// Writes a typed callback's result (`value` is the variant of the result type; `size` its
    /// size, known at compile time): the same bytes as [`Args::write_result`], without
    /// matching the value against the result kind.
    #[inline(always)]
    pub(crate) fn write_typed(&self, value: Value, size: usize) -> ReturnCode {
        let bits = match value {
            Value::Void => 0,
            Value::Int(x) => x as u64,
            Value::UInt(x) => x,
            // As `write_value` encodes a float: through f64 (the same NaN quieting).
            Value::F32(f) => u64::from((f64::from(f) as f32).to_bits()),
            Value::F64(f) => f.to_bits(),
            Value::Bytes(_) => return self.write_result(&value),
        };
        match self.native.store_sized(bits, size as u8) {
            Some(code) => code,
            None => self.write_result(&value),
        }
    }

    /// Encodes `value` for the result type and writes it: a scalar straight into the context
    /// when the plan allows (the same bytes as the generic frame; native.rs tests), anything
    /// else through the generic frame.
    #[inline(always)]
    pub(crate) fn write_value(&self, value: &Value) -> Result<ReturnCode, String> {
        match self.fast_result_bits(value).and_then(|bits| self.native.store_bits(bits)) {
            Some(code) => Ok(code),
            None => self.native.frame().write_value(value),
        }
    }

    /// The bits a fast scalar result stores for `value` (nothing for `void`), when the value
    /// fits the result kind without the generic frame's checks (`None`: the frame encodes it,
    /// or rejects it).
    #[inline(always)]
    fn fast_result_bits(&self, value: &Value) -> Option<u64> {
        Some(match (self.native.info.ret.kind, value) {
            // (any value: a `void` result stores nothing; `store_bits` only finishes)
            (RetKind::Void, _) => 0,
            (RetKind::Int, Value::Int(x)) => *x as u64,
            (RetKind::Int, Value::UInt(x)) => *x,
            (RetKind::Bool, Value::Int(x)) => u64::from(*x != 0),
            (RetKind::Bool, Value::UInt(x)) => u64::from(*x != 0),
            (RetKind::Float, v) => u64::from((as_f64(v)? as f32).to_bits()),
            (RetKind::Double, v) => as_f64(v)?.to_bits(),
            _ => return None,
        })
    }

    /// Argument `i`'s bits, extended to 64 bits, for a typed callback, whose argument `i` has
    /// `T`'s size (a size known here at compile time): straight from its location, or through
    /// the generic path when it is not a fast scalar.
    #[inline(always)]
    pub(crate) fn typed_bits<T>(&self, i: usize) -> u64 {
        let a = self.native.info.arg(i);
        let size = std::mem::size_of::<T>() as u8;
        if a.size == size {
            // SAFETY: the plan placed argument `i`'s `size` bytes at this address of the call.
            let raw = unsafe { crate::native::load(self.native.arg_addr(a), size) };
            crate::marshal::extend(raw, u32::from(size), a.signed)
        } else {
            self.scalar(i).1
        }
    }
}

/// A `va_list` over a variadic call's unnamed arguments ([`Args::va_start`]), valid while the
/// call runs. Like C's, it is consumed by the function that reads it: make another for each.
pub struct OwnedVaList<'a> {
    /// the record and save areas `value` points to, where the ABI's `va_list` is a record
    _record: Box<VaListRecord>,
    value: *mut c_void,
    /// (a `char *` form points into the call's stack arguments)
    _call: std::marker::PhantomData<&'a Args<'a>>,
}

/// A `va_list` record's storage, aligned as the save areas' vector registers are.
#[repr(C, align(16))]
struct VaListRecord([u8; crate::marshal::VA_LIST_RECORD_BYTES]);

impl OwnedVaList<'_> {
    /// What a C function taking a `va_list` receives (see [`Args::va_start`]).
    pub fn as_ptr(&mut self) -> *mut c_void {
        self.value
    }
}

/// A variadic call's unnamed arguments, read one by one ([`Args::va_args`]).
///
/// Each getter names the C type the caller passed, after C's default argument promotions:
/// a `float` arrives as a `double` ([`VaArgs::f64`]), a `char`, `short` or `_Bool` as an
/// `int` ([`VaArgs::i32`]). Creating one is `unsafe` ([`Args::va_args`]): the handler
/// vouches that it reads what the caller passed.
///
/// ```
/// // A logging callback: `void (*)(void *ctx, int level, const char *fmt, ...)`.
/// let log = backcall::Callback::new("void (*)(void *, int, const char *, ...)", |a| {
///     // SAFETY: the format names an int, a double and a pointer, which the caller passes.
///     let mut va = unsafe { a.va_args() };
///     let (n, x, p) = (va.i32(), va.f64(), va.ptr::<u8>());
///     assert_eq!((a.i32(1), n, x, p as usize), (2, 7, 0.5, 16));
/// })
/// .unwrap();
/// type Log = unsafe extern "C" fn(*mut u8, i32, *const u8, ...);
/// let f: Log = unsafe { log.as_fn() };
/// unsafe { f(std::ptr::null_mut(), 2, c"%d %f %p".as_ptr().cast(), 7, 0.5f64, 16usize) };
/// ```
pub struct VaArgs<'a> {
    args: &'a Args<'a>,
    cursor: crate::marshal::VaCursor,
}

impl VaArgs<'_> {
    /// How many unnamed arguments were read so far.
    pub fn count(&self) -> usize {
        self.cursor.read().len()
    }

    /// The next unnamed argument as type `ty` (promoted first), any type the ABI can pass:
    /// its bytes and, for a scalar, its bits extended to 64 bits as [`Args::i64`] reads a
    /// named one; or why the ABI cannot pass it (the cursor then stays).
    pub fn arg(&mut self, ty: &Type) -> Result<crate::marshal::VaArg, Error> {
        self.cursor.next(&self.args.native.frame(), ty).map_err(Error::Abi)
    }

    /// The next unnamed argument as scalar `s`, extended to 64 bits.
    fn scalar(&mut self, s: Scalar) -> u64 {
        let n = self.count();
        match self.arg(&Type::Scalar(s)) {
            Ok(arg) => arg.scalar.map_or(0, |(_, bits)| bits),
            Err(e) => panic!(
                "unnamed argument {n} of `{}` as `{}`: {e}",
                self.args.plan().signature,
                s.c_name()
            ),
        }
    }

    /// The next unnamed argument, an `int` (or a `char`, `short` or `_Bool`, which arrive as
    /// one).
    pub fn i32(&mut self) -> i32 {
        self.scalar(Scalar::Int) as i32
    }

    /// The next unnamed argument, an `unsigned int`.
    pub fn u32(&mut self) -> u32 {
        self.scalar(Scalar::UInt) as u32
    }

    /// The next unnamed argument, a `long` (32 or 64 bits, as the ABI has it), sign-extended.
    pub fn long(&mut self) -> i64 {
        self.scalar(Scalar::Long) as i64
    }

    /// The next unnamed argument, an `unsigned long`, zero-extended.
    pub fn ulong(&mut self) -> u64 {
        self.scalar(Scalar::ULong)
    }

    /// The next unnamed argument, a `long long`.
    pub fn i64(&mut self) -> i64 {
        self.scalar(Scalar::LongLong) as i64
    }

    /// The next unnamed argument, an `unsigned long long`.
    pub fn u64(&mut self) -> u64 {
        self.scalar(Scalar::ULongLong)
    }

    /// The next unnamed argument, a `size_t`.
    pub fn size(&mut self) -> usize {
        self.scalar(Scalar::SizeT) as usize
    }

    /// The next unnamed argument, a `ptrdiff_t` (or an `intptr_t`, `ssize_t`: pointer-sized
    /// on every ABI backcall covers).
    pub fn isize(&mut self) -> isize {
        self.scalar(Scalar::IntPtr) as isize
    }

    /// The next unnamed argument, a `double` (or a `float`, which arrives as one).
    pub fn f64(&mut self) -> f64 {
        f64::from_bits(self.scalar(Scalar::Double))
    }

    /// The next unnamed argument, a `long double`, as the nearest `f64` (its bytes:
    /// [`VaArgs::bytes`]).
    pub fn long_double(&mut self) -> f64 {
        f64::from_bits(self.scalar(Scalar::LongDouble))
    }

    /// The next unnamed argument, a pointer.
    pub fn ptr<T>(&mut self) -> *mut T {
        self.scalar(Scalar::Pointer) as usize as *mut T
    }

    /// The bytes of the next unnamed argument as type `ty` (see [`VaArgs::arg`]).
    ///
    /// ```
    /// use backcall::{abi::Scalar, Type};
    /// let cb = backcall::Callback::new("int (*)(int, ...)", |a| {
    ///     let pair = Type::anon_struct([Type::scalar(Scalar::Int), Type::scalar(Scalar::Int)]);
    ///     // SAFETY: the caller passes one such pair.
    ///     let b = unsafe { a.va_args() }.bytes(&pair).unwrap();
    ///     i32::from_le_bytes(b[4..8].try_into().unwrap())
    /// })
    /// .unwrap();
    /// #[repr(C)]
    /// struct Pair(i32, i32);
    /// let f: unsafe extern "C" fn(i32, ...) -> i32 = unsafe { cb.as_fn() };
    /// # #[cfg(target_endian = "little")]
    /// assert_eq!(unsafe { f(1, Pair(5, 9)) }, 9);
    /// ```
    pub fn bytes(&mut self, ty: &Type) -> Result<Vec<u8>, Error> {
        self.arg(ty).map(|arg| arg.bytes)
    }
}
