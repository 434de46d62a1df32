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
use std::marker::PhantomData;

use backcall_abi::{Scalar, Signature, Type};

use crate::callback::handler_box;
use crate::marshal::Value;
use crate::registry::ThreadPolicy;
use crate::{Args, Callback, Error, Prototype};

/// A Rust type with a C scalar counterpart.
pub trait CType: Copy + 'static {
    /// The C scalar.
    const SCALAR: Scalar;
    /// The value from an argument's bits (already extended to 64 bits by the plan's reader).
    fn from_bits(bits: u64) -> Self;
    /// The value as a result.
    fn into_value(self) -> Value;
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
}

impl CType for f64 {
    const SCALAR: Scalar = Scalar::Double;
    fn from_bits(bits: u64) -> Self {
        f64::from_bits(bits)
    }
    fn into_value(self) -> Value {
        Value::F64(self)
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
}

impl CRet for () {
    fn c_type() -> Type {
        Type::Void
    }
    fn into_value(self) -> Value {
        Value::Void
    }
}

impl<T: CType> CRet for T {
    fn c_type() -> Type {
        Type::Scalar(T::SCALAR)
    }
    fn into_value(self) -> Value {
        CType::into_value(self)
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

/// The prototype of the `extern "C" fn` type `F`, planned once per thread and type.
fn prototype_of<F: 'static>(signature: impl FnOnce() -> Signature) -> Result<Prototype, Error> {
    thread_local! {
        static PROTOTYPES: RefCell<HashMap<TypeId, Prototype>> = RefCell::new(HashMap::new());
    }
    let key = TypeId::of::<F>();
    if let Some(p) = PROTOTYPES.with(|c| c.borrow().get(&key).cloned()) {
        return Ok(p);
    }
    let proto = Prototype::from_signature(&signature())?;
    PROTOTYPES.with(|c| c.borrow_mut().insert(key, proto.clone()));
    Ok(proto)
}

macro_rules! typed_arity {
    ($($a:ident $i:tt),*) => {
        impl<R: CRet, $($a: CType),*> TypedCallback<extern "C" fn($($a),*) -> R> {
            /// A single-threaded typed callback.
            pub fn new(f: impl Fn($($a),*) -> R + Send + Sync + 'static) -> Result<Self, Error> {
                Self::with_policy(ThreadPolicy::SingleThreaded, f)
            }

            /// A typed callback with an explicit thread policy.
            pub fn with_policy(
                policy: ThreadPolicy,
                f: impl Fn($($a),*) -> R + Send + Sync + 'static,
            ) -> Result<Self, Error> {
                let proto = prototype_of::<extern "C" fn($($a),*) -> R>(|| {
                    Signature::new(R::c_type(), vec![$(Type::Scalar($a::SCALAR)),*])
                })?;
                #[allow(unused_variables)]
                let handler = handler_box(move |args: &Args| {
                    let value = f($(typed_arg::<$a>(args, $i)),*).into_value();
                    args.write_typed(value, std::mem::size_of::<R>())
                });
                let inner = proto.install(policy, handler)?;
                Ok(TypedCallback { inner, _f: PhantomData })
            }
        }
    };
}

typed_arity!();
typed_arity!(A 0);
typed_arity!(A 0, B 1);
typed_arity!(A 0, B 1, C 2);
typed_arity!(A 0, B 1, C 2, D 3);
typed_arity!(A 0, B 1, C 2, D 3, E 4);
typed_arity!(A 0, B 1, C 2, D 3, E 4, G 5);
typed_arity!(A 0, B 1, C 2, D 3, E 4, G 5, H 6);
typed_arity!(A 0, B 1, C 2, D 3, E 4, G 5, H 6, I 7);
typed_arity!(A 0, B 1, C 2, D 3, E 4, G 5, H 6, I 7, J 8);
typed_arity!(A 0, B 1, C 2, D 3, E 4, G 5, H 6, I 7, J 8, K 9);

/// The typed entry of a slot that holds no typed callback: reached only by a stale call
/// through a typed callback's old function pointer after its slot was reused by a dynamic
/// callback. It reports the call as stale and returns 0 (in the integer result register; the
/// registry's reuse policy keeps such reuse to a full pool).
pub(crate) fn refusing_entry() -> usize {
    extern "C" fn refuse(slot: *const crate::registry::Slot) -> usize {
        // SAFETY: a typed stub passes the slot word of a live page: a never-freed slot.
        let id = unsafe { (*slot).id };
        crate::error::report(crate::CallbackError::Stale {
            thunk: crate::registry::registry().thunk(id),
        });
        0
    }
    refuse as extern "C" fn(*const crate::registry::Slot) -> usize as usize
}
