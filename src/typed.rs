//! The typed front end: an `extern "C" fn` type plus a Rust closure of the same shape.
//!
//! It builds the C signature from the Rust types and runs on the same runtime (pool, registry,
//! dispatcher, plans) as the dynamic [`Callback`](crate::Callback).
//!
//! ```
//! use backcall::typed::TypedCallback;
//!
//! let scale = 3.0;
//! let cb = TypedCallback::<extern "C" fn(i64, f64) -> f64>::new(move |n, x| n as f64 * x * scale)
//!     .unwrap();
//! assert_eq!((cb.get())(2, 0.5), 3.0);
//! ```

use std::any::TypeId;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::marker::PhantomData;
use std::rc::Rc;

use backcall_abi::{Convention, Scalar, Signature, Type};

use std::panic::{catch_unwind, AssertUnwindSafe};

use backcall_abi::ReturnCode;

use crate::callback::{store_for, Handler};
use crate::dispatch::{call, CallSite};
use crate::error::{report, CallbackError};
use crate::hazard::ThreadState;
use crate::marshal::Value;
use crate::registry::{registry, Live, Slot, ThreadPolicy};
use crate::{Args, Callback, Error, Prototype};

/// A Rust type with a C scalar counterpart.
pub trait CType: Copy + 'static {
    /// The C scalar.
    const SCALAR: Scalar;
    /// The value from an argument's bits (already extended to 64 bits by the plan's reader).
    fn from_bits(bits: u64) -> Self;
    /// The value as a result.
    fn into_value(self) -> Value;
    /// What a refused call returns (a call from a foreign thread): -1 for integers and
    /// pointers, as on the context route; 0.0 for floats.
    fn refused() -> Self {
        Self::from_bits(u64::MAX)
    }
    /// A [`Value`] of this type (a refusal value), if it is one.
    fn from_value(v: &Value) -> Option<Self> {
        match *v {
            Value::Int(x) => Some(Self::from_bits(x as u64)),
            Value::UInt(x) => Some(Self::from_bits(x)),
            _ => None,
        }
    }
}

macro_rules! int_ctype {
    ($($t:ty => $s:ident),* $(,)?) => {
        $(impl CType for $t {
            const SCALAR: Scalar = Scalar::$s;
            fn from_bits(bits: u64) -> Self {
                bits as $t
            }
            fn into_value(self) -> Value {
                Value::from(self)
            }
        })*
    };
}

int_ctype!(
    i8 => I8, u8 => U8, i16 => I16, u16 => U16, i32 => I32, u32 => U32, i64 => I64, u64 => U64,
    isize => IntPtr, usize => UIntPtr,
);

impl CType for bool {
    const SCALAR: Scalar = Scalar::Bool;
    fn from_bits(bits: u64) -> Self {
        bits & 0xff != 0
    }
    fn into_value(self) -> Value {
        Value::from(self)
    }
}

impl CType for f32 {
    const SCALAR: Scalar = Scalar::Float;
    fn from_bits(bits: u64) -> Self {
        f32::from_bits(bits as u32)
    }
    fn into_value(self) -> Value {
        Value::F32(self)
    }
    fn refused() -> Self {
        0.0
    }
    fn from_value(v: &Value) -> Option<Self> {
        crate::marshal::as_f64(v).map(|f| f as f32)
    }
}

impl CType for f64 {
    const SCALAR: Scalar = Scalar::Double;
    fn from_bits(bits: u64) -> Self {
        f64::from_bits(bits)
    }
    fn into_value(self) -> Value {
        Value::F64(self)
    }
    fn refused() -> Self {
        0.0
    }
    fn from_value(v: &Value) -> Option<Self> {
        crate::marshal::as_f64(v)
    }
}

macro_rules! ptr_ctype {
    ($($p:ident),*) => {
        $(impl<T: 'static> CType for *$p T {
            const SCALAR: Scalar = Scalar::Pointer;
            fn from_bits(bits: u64) -> Self {
                bits as usize as *$p T
            }
            fn into_value(self) -> Value {
                Value::UInt(self as usize as u64)
            }
        })*
    };
}
ptr_ctype!(const, mut);

/// A result type: `()` or a [`CType`].
pub trait CRet: 'static {
    /// The C result type.
    fn c_type() -> Type;
    /// The value as a result.
    fn into_value(self) -> Value;
    /// What a failed call returns (stale, or the handler panicked).
    fn zero() -> Self;
    /// What a refused call returns (a call from a foreign thread).
    fn refused() -> Self;
    /// A [`Value`] of this type (a refusal value), if it is one.
    fn from_value(v: &Value) -> Option<Self>
    where
        Self: Sized;
}

impl CRet for () {
    fn c_type() -> Type {
        Type::Void
    }
    fn into_value(self) -> Value {
        Value::Void
    }
    fn zero() {}
    fn refused() {}
    fn from_value(_: &Value) -> Option<()> {
        Some(())
    }
}

impl<T: CType> CRet for T {
    fn c_type() -> Type {
        Type::Scalar(T::SCALAR)
    }
    fn into_value(self) -> Value {
        CType::into_value(self)
    }
    fn zero() -> T {
        T::from_bits(0)
    }
    fn refused() -> T {
        T::refused()
    }
    fn from_value(v: &Value) -> Option<T> {
        <T as CType>::from_value(v)
    }
}

/// A callback typed by its `extern "C" fn` type `F`.
pub struct TypedCallback<F> {
    inner: Callback,
    _f: PhantomData<F>,
}

impl<F: Copy> TypedCallback<F> {
    /// The function pointer C calls.
    pub fn get(&self) -> F {
        // SAFETY: the signature was built from F itself.
        unsafe { self.inner.as_fn() }
    }

    /// The underlying dynamic callback.
    pub fn callback(&self) -> &Callback {
        &self.inner
    }
}

#[inline(always)]
fn typed_arg<T: CType>(args: &Args, i: usize) -> T {
    T::from_bits(args.typed_bits::<T>(i))
}

/// The prototype of the `extern "C" fn` type `F`, planned once per thread and type (shared by
/// reference: no atomic reference count per callback).
fn prototype_of<F: 'static>(signature: impl FnOnce() -> Signature) -> Result<Rc<Prototype>, Error> {
    type ById = BuildHasherDefault<TypeIdHasher>;
    thread_local! {
        static PROTOTYPES: RefCell<HashMap<TypeId, Rc<Prototype>, ById>> =
            RefCell::new(HashMap::default());
    }
    let key = TypeId::of::<F>();
    // (`try_with`: during the thread's teardown the map may be gone; plan afresh then)
    if let Ok(Some(p)) = PROTOTYPES.try_with(|c| c.borrow().get(&key).cloned()) {
        return Ok(p);
    }
    let proto = Rc::new(Prototype::from_signature(&signature())?);
    let _ = PROTOTYPES.try_with(|c| c.borrow_mut().insert(key, proto.clone()));
    Ok(proto)
}

/// Hashes a [`TypeId`], which is a hash already: SipHash was a tenth of creating a typed
/// callback and releasing it.
#[derive(Default)]
struct TypeIdHasher(u64);

impl Hasher for TypeIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        // (a multiplicative mix, so that any part of the id spreads over the table's bits)
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A typed closure `F` of the `extern "C" fn` type `Sig`, as a slot's handler: the typed
/// entry calls it directly; the context route (a signature without a typed stub) through
/// [`Handler::call`], decoding [`Args`].
struct Typed<F, Sig>(F, PhantomData<fn() -> Sig>);

/// The typed route's side of a call (see [`crate::dispatch::CallSite`]): `invoke` runs the
/// closure at the slot's handler data.
struct TypedSite<G>(G);

impl<R: CRet, G: FnOnce(*const ()) -> R> CallSite for TypedSite<G> {
    type Out = R;

    #[inline(always)]
    fn run(self, slot: &'static Slot, live: Live<'_>, _: &ThreadState) -> R {
        let data = live.data;
        match catch_unwind(AssertUnwindSafe(|| (self.0)(data))) {
            Ok(r) => r,
            Err(panic) => {
                let message = crate::error::panic_message(&*panic);
                report(CallbackError::Panicked { thunk: registry().thunk_of(slot), message });
                R::zero()
            }
        }
    }

    #[cold]
    fn stale(self, slot: &'static Slot) -> R {
        report(CallbackError::Stale { thunk: registry().thunk_of(slot) });
        R::zero()
    }

    #[cold]
    fn refused(self, slot: &'static Slot, live: Live<'_>) -> R {
        report(CallbackError::WrongThread { thunk: registry().thunk_of(slot) });
        live.info.refusal.as_ref().and_then(R::from_value).unwrap_or_else(R::refused)
    }
}

/// The three impls of one `extern` fn type (`[$q]` is `unsafe` or nothing, `$abi` its ABI):
/// the typed entry (with the ABI `$entry` the ABI's typed stub calls: the signature's own, or
/// `thiscall` behind i386's `bc_stub_thiscall`), the handler, and the constructors (with the
/// signature's convention `$conv`).
macro_rules! typed_fn {
    ([$($q:tt)*] $abi:literal, $entry:literal, $conv:expr; $($a:ident $n:ident $i:tt),*) => {
        impl<F, R: CRet, $($a: CType),*> Typed<F, $($q)* extern $abi fn($($a),*) -> R>
        where
            F: Fn($($a),*) -> R + Send + Sync + 'static,
        {
            /// The typed entry: a typed stub passes the slot, then the C caller's arguments.
            #[allow(clippy::too_many_arguments)]
            extern $entry fn entry(slot: &'static Slot, $($n: $a),*) -> R {
                call(slot, TypedSite(move |data: *const ()| {
                    // SAFETY: `data` points at the slot's handler, this `Typed`.
                    let typed = unsafe { &*data.cast::<Self>() };
                    (typed.0)($($n),*)
                }))
            }
        }

        impl<F, R: CRet, $($a: CType),*> Handler for Typed<F, $($q)* extern $abi fn($($a),*) -> R>
        where
            F: Fn($($a),*) -> R + Send + Sync + 'static,
        {
            // SAFETY (of the transmute): a function pointer to a function pointer; the stubs
            // call it with exactly `entry`'s signature.
            const TYPED: unsafe extern "C" fn() = unsafe {
                std::mem::transmute::<extern $entry fn(&'static Slot, $($a),*) -> R, unsafe extern "C" fn()>(
                    Self::entry,
                )
            };

            unsafe fn call(data: *const (), args: &Args) -> ReturnCode {
                // SAFETY: `data` points at this handler (the slot's).
                let f = unsafe { &(*data.cast::<Self>()).0 };
                let value = f($(typed_arg::<$a>(args, $i)),*).into_value();
                args.write_typed(value, std::mem::size_of::<R>())
            }
        }

        impl<R: CRet, $($a: CType),*> TypedCallback<$($q)* extern $abi fn($($a),*) -> R> {
            /// A single-threaded typed callback.
            pub fn new(f: impl Fn($($a),*) -> R + Send + Sync + 'static) -> Result<Self, Error> {
                Self::with_policy(ThreadPolicy::SingleThreaded, f)
            }

            /// A typed callback with an explicit thread policy.
            pub fn with_policy<F>(policy: ThreadPolicy, f: F) -> Result<Self, Error>
            where
                F: Fn($($a),*) -> R + Send + Sync + 'static,
            {
                Self::build(policy, None, f)
            }

            /// A single-threaded typed callback that returns `refusal` to a foreign thread's
            /// call (see [`Prototype::refusing`]).
            pub fn refusing<F>(refusal: R, f: F) -> Result<Self, Error>
            where
                F: Fn($($a),*) -> R + Send + Sync + 'static,
            {
                Self::build(ThreadPolicy::SingleThreaded, Some(refusal.into_value()), f)
            }

            fn build<F>(policy: ThreadPolicy, refusal: Option<Value>, f: F) -> Result<Self, Error>
            where
                F: Fn($($a),*) -> R + Send + Sync + 'static,
            {
                let mut proto = prototype_of::<$($q)* extern $abi fn($($a),*) -> R>(|| {
                    let mut sig = Signature::new(R::c_type(), vec![$(Type::Scalar($a::SCALAR)),*]);
                    sig.conv = $conv;
                    sig
                })?;
                if let Some(value) = refusal {
                    proto = Rc::new(proto.refusing(value)?);
                }
                let handler =
                    store_for(&policy, Typed::<F, $($q)* extern $abi fn($($a),*) -> R>(f, PhantomData));
                let inner = proto.install_typed(&policy, handler)?;
                Ok(TypedCallback { inner, _f: PhantomData })
            }
        }
    };
}

/// Every `extern` fn type of one arity this target has: `extern "C"` and `unsafe extern "C"`
/// everywhere; `"sysv64"` on x86-64 Unix; `"stdcall"`, `"fastcall"` and `"thiscall"` on i686,
/// whose typed entries are `thiscall` (the only i386 stub a callee-pops convention can take).
macro_rules! typed_arity {
    ($($t:tt)*) => {
        typed_fn!([] "C", "C", Convention::Default; $($t)*);
        typed_fn!([unsafe] "C", "C", Convention::Default; $($t)*);
        #[cfg(all(target_arch = "x86_64", unix))]
        typed_fn!([] "sysv64", "C", Convention::Default; $($t)*);
        #[cfg(all(target_arch = "x86_64", unix))]
        typed_fn!([unsafe] "sysv64", "C", Convention::Default; $($t)*);
        #[cfg(target_arch = "x86")]
        typed_fn!([] "stdcall", "thiscall", Convention::Stdcall; $($t)*);
        #[cfg(target_arch = "x86")]
        typed_fn!([unsafe] "stdcall", "thiscall", Convention::Stdcall; $($t)*);
        #[cfg(target_arch = "x86")]
        typed_fn!([] "fastcall", "thiscall", Convention::Fastcall; $($t)*);
        #[cfg(target_arch = "x86")]
        typed_fn!([unsafe] "fastcall", "thiscall", Convention::Fastcall; $($t)*);
        #[cfg(target_arch = "x86")]
        typed_fn!([] "thiscall", "thiscall", Convention::Thiscall; $($t)*);
        #[cfg(target_arch = "x86")]
        typed_fn!([unsafe] "thiscall", "thiscall", Convention::Thiscall; $($t)*);
    };
}

typed_arity!();
typed_arity!(A a 0);
typed_arity!(A a 0, B b 1);
typed_arity!(A a 0, B b 1, C c 2);
typed_arity!(A a 0, B b 1, C c 2, D d 3);
typed_arity!(A a 0, B b 1, C c 2, D d 3, E e 4);
typed_arity!(A a 0, B b 1, C c 2, D d 3, E e 4, G g 5);
typed_arity!(A a 0, B b 1, C c 2, D d 3, E e 4, G g 5, H h 6);
typed_arity!(A a 0, B b 1, C c 2, D d 3, E e 4, G g 5, H h 6, I i 7);
typed_arity!(A a 0, B b 1, C c 2, D d 3, E e 4, G g 5, H h 6, I i 7, J j 8);
typed_arity!(A a 0, B b 1, C c 2, D d 3, E e 4, G g 5, H h 6, I i 7, J j 8, K k 9);

/// The typed entry of a slot that holds no typed callback: reached only by a stale call
/// through a typed callback's old function pointer after its slot was freed, or reused by a
/// dynamic callback. It reports the call as stale and returns 0 (in the integer result
/// register; the registry's reuse policy keeps reuse by another route to a full pool, and
/// never gives a typed callback's slot to a handler of another type).
pub(crate) const REFUSING_ENTRY: unsafe extern "C" fn() = {
    extern "C" fn refuse(slot: *const Slot) -> usize {
        // SAFETY: a typed stub passes the slot word of a live page: a never-freed slot.
        let thunk = registry().thunk_of(unsafe { &*slot });
        report(CallbackError::Stale { thunk });
        0
    }
    // SAFETY: a function pointer to a function pointer; stubs pass the slot first.
    unsafe {
        std::mem::transmute::<extern "C" fn(*const Slot) -> usize, unsafe extern "C" fn()>(refuse)
    }
};

/// The typed front end, the dynamic one and the generic frame marshal the same bytes: for every
/// scalar kind a Rust type maps to, on random register and stack contents and random results,
/// in registers and on the stack, under each convention the host ABI has.
#[cfg(test)]
mod marshalling {
    use super::CType;
    use crate::callback::Args;
    use crate::context::CallbackContext;
    use crate::marshal::Value;
    use crate::native::{Native, PlanInfo};
    use backcall_abi::{Abi, Convention, Scalar, Signature, Type};
    use proptest::prelude::*;

    /// The machine state a call finds: register contents and the caller's stack bytes.
    #[derive(Clone, Debug)]
    struct Machine {
        int_regs: Vec<u64>,
        float_regs: Vec<u64>,
        stack: Vec<u8>,
    }

    fn machine() -> impl Strategy<Value = Machine> {
        (
            proptest::collection::vec(any::<u64>(), 16),
            proptest::collection::vec(any::<u64>(), 32),
            proptest::collection::vec(any::<u8>(), 512),
        )
            .prop_map(|(int_regs, float_regs, stack)| Machine {
                int_regs,
                float_regs,
                stack,
            })
    }

    fn context(m: &Machine, stack: &mut [u8]) -> CallbackContext {
        // SAFETY: every field is an integer or a raw pointer; all-zero is a valid value.
        let mut c: CallbackContext = unsafe { std::mem::zeroed() };
        for (r, &v) in c.int_regs.iter_mut().zip(&m.int_regs) {
            *r = v as usize;
        }
        for (r, &v) in c.float_regs.iter_mut().zip(&m.float_regs) {
            *r = v;
        }
        stack.copy_from_slice(&m.stack);
        c.stack_args = stack.as_ptr() as usize;
        c
    }

    /// `T` among other kinds, enough of them that some travel on the stack on every ABI.
    fn signature(abi: Abi, conv: Convention, t: Scalar) -> Signature {
        let s = Type::Scalar;
        let mut args = vec![s(t), s(Scalar::Char), s(t), s(Scalar::Double), s(t)];
        args.extend(std::iter::repeat_n(s(t), 8));
        args.extend([s(Scalar::Short), s(t), s(Scalar::Float), s(t)]);
        let mut sig = Signature { ret: s(t), args, conv, variadic: false };
        if abi.plan(&sig).is_err() {
            // (a convention whose registers take only some kinds: keep what it takes)
            sig.args.retain(|a| *a == s(t));
        }
        sig
    }

    fn conventions(abi: Abi) -> Vec<Convention> {
        let mut all = vec![Convention::Default];
        if abi == Abi::I386Sysv {
            all.extend([Convention::Stdcall, Convention::Fastcall, Convention::Thiscall]);
        }
        all
    }

    /// A scalar value's bits as the readers give them.
    fn bits(v: &Value) -> u64 {
        match *v {
            Value::Int(x) => x as u64,
            Value::UInt(x) => x,
            Value::F32(f) => u64::from(f.to_bits()),
            Value::F64(f) => f.to_bits(),
            _ => panic!("{v:?} is not a scalar"),
        }
    }

    /// Every argument of kind `T` reads the same bits through the three readers, and `result`
    /// leaves the same context through the three writers.
    fn agree<T: CType + std::fmt::Debug>(m: &Machine, result: T) -> Result<(), TestCaseError> {
        let abi = crate::host_abi().expect("a host ABI");
        for conv in conventions(abi) {
            let sig = signature(abi, conv, T::SCALAR);
            let Ok(plan) = abi.plan(&sig) else { continue };
            let info = PlanInfo::new(plan);
            let mut stack = vec![0u8; m.stack.len()];
            let mut c = context(m, &mut stack);
            let args = Args { native: Native { ctx: &mut c, info: &info }, thunk: 0 };
            for i in (0..sig.args.len()).filter(|&i| sig.args[i] == sig.ret) {
                let typed = args.typed_bits::<T>(i);
                let dynamic = args.native.fast_bits(i).unwrap_or(typed);
                let frame = args.native.frame().scalar_bits(i).map(|(_, b)| b);
                prop_assert_eq!(Some(typed), frame, "{}: argument {} (typed)", sig, i);
                prop_assert_eq!(typed, dynamic, "{}: argument {} (dynamic)", sig, i);
                prop_assert_eq!(bits(&args.value(i)), typed, "{}: argument {} (value)", sig, i);
            }
            let value = result.into_value();
            let written = |write: &dyn Fn(&Args) -> u32| {
                let mut stack = vec![0u8; m.stack.len()];
                let mut c = context(m, &mut stack);
                let code = write(&Args { native: Native { ctx: &mut c, info: &info }, thunk: 0 });
                (code, c.result_int, c.result_float, c.callee_pop)
            };
            let typed = written(&|a| a.write_typed(value.clone(), std::mem::size_of::<T>()) as u32);
            let dynamic = written(&|a| a.write_result(&value) as u32);
            let frame =
                written(&|a| a.native.frame().write_value(&value).expect("a scalar result") as u32);
            prop_assert_eq!(typed, frame, "{}: result {:?} (typed)", sig, result);
            prop_assert_eq!(dynamic, frame, "{}: result {:?} (dynamic)", sig, result);
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn integers_agree(m in machine(), a: i8, b: u8, c: i16, d: u16, e: i32, f: u32) {
            agree(&m, a)?;
            agree(&m, b)?;
            agree(&m, c)?;
            agree(&m, d)?;
            agree(&m, e)?;
            agree(&m, f)?;
        }

        #[test]
        fn words_agree(m in machine(), a: i64, b: u64, c: isize, d: usize, e: bool, p: usize) {
            agree(&m, a)?;
            agree(&m, b)?;
            agree(&m, c)?;
            agree(&m, d)?;
            agree(&m, e)?;
            agree(&m, p as *const u8)?;
        }

        #[test]
        fn floats_agree(m in machine(), a: f32, b: f64) {
            agree(&m, a)?;
            agree(&m, b)?;
        }
    }

    /// A value's variant decides nothing the result kind does not: an integer for a float result
    /// converts the same on every route.
    #[test]
    fn a_value_of_another_kind_converts_alike() {
        let abi = crate::host_abi().expect("a host ABI");
        let sig = signature(abi, Convention::Default, Scalar::Double);
        let info = PlanInfo::new(abi.plan(&sig).unwrap());
        let m = Machine { int_regs: vec![0; 16], float_regs: vec![0; 32], stack: vec![0; 512] };
        let mut results = Vec::new();
        for value in [Value::Int(-3), Value::F32(-3.0), Value::F64(-3.0)] {
            let mut stack = vec![0u8; 512];
            let mut c = context(&m, &mut stack);
            Args { native: Native { ctx: &mut c, info: &info }, thunk: 0 }.write_result(&value);
            results.push(c.result_float);
        }
        assert!(results.windows(2).all(|w| w[0] == w[1]), "{results:x?}");
        assert!(results[0].iter().any(|&w| w != 0), "nothing written");
    }
}
