//! The classic example: libc `qsort` sorting through a callback made from a C signature.
//!
//! `cargo run --example qsort`

use backcall::Callback;

extern "C" {
    fn qsort(
        base: *mut std::ffi::c_void,
        n: usize,
        size: usize,
        cmp: extern "C" fn(*const std::ffi::c_void, *const std::ffi::c_void) -> i32,
    );
}

fn main() -> Result<(), backcall::Error> {
    let cmp = Callback::new("int (*)(const void *, const void *)", |args| {
        // SAFETY: qsort passes pointers to two elements of the i32 array below.
        let (a, b) = unsafe { (*args.ptr::<i32>(0), *args.ptr::<i32>(1)) };
        a.cmp(&b) as i32
    })?;
    let mut values = vec![5, -3, 12, 0, 7, 7, -40, 2];
    // SAFETY: the callback matches qsort's comparator type and outlives the call.
    unsafe { qsort(values.as_mut_ptr().cast(), values.len(), 4, cmp.as_fn()) };
    println!("{values:?}");
    assert!(values.windows(2).all(|w| w[0] <= w[1]));
    Ok(())
}
