//! zlib compressing and decompressing with backcall callbacks as its allocator
//! (`zalloc`/`zfree`), counting what it allocates and frees.
//!
//! `cargo run --example zlib` (links Debian's `zlib1g-dev`).

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void};
use std::rc::Rc;

use backcall::Callback;

/// `z_stream` of zlib.h.
#[repr(C)]
struct ZStream {
    next_in: *const u8,
    avail_in: c_uint,
    total_in: c_ulong,
    next_out: *mut u8,
    avail_out: c_uint,
    total_out: c_ulong,
    msg: *const c_char,
    state: *mut c_void,
    zalloc: *const c_void,
    zfree: *const c_void,
    opaque: *mut c_void,
    data_type: c_int,
    adler: c_ulong,
    reserved: c_ulong,
}

#[link(name = "z")]
extern "C" {
    fn zlibVersion() -> *const c_char;
    fn deflateInit_(strm: *mut ZStream, level: c_int, version: *const c_char, size: c_int)
        -> c_int;
    fn deflate(strm: *mut ZStream, flush: c_int) -> c_int;
    fn deflateEnd(strm: *mut ZStream) -> c_int;
    fn inflateInit_(strm: *mut ZStream, version: *const c_char, size: c_int) -> c_int;
    fn inflate(strm: *mut ZStream, flush: c_int) -> c_int;
    fn inflateEnd(strm: *mut ZStream) -> c_int;
}

const Z_OK: c_int = 0;
const Z_STREAM_END: c_int = 1;
const Z_FINISH: c_int = 4;

fn stream(zalloc: &Callback, zfree: &Callback) -> ZStream {
    ZStream {
        next_in: std::ptr::null(),
        avail_in: 0,
        total_in: 0,
        next_out: std::ptr::null_mut(),
        avail_out: 0,
        total_out: 0,
        msg: std::ptr::null(),
        state: std::ptr::null_mut(),
        zalloc: zalloc.code_ptr(),
        zfree: zfree.code_ptr(),
        opaque: std::ptr::null_mut(),
        data_type: 0,
        adler: 0,
        reserved: 0,
    }
}

fn main() -> Result<(), backcall::Error> {
    // Counters the callbacks share; they are `Rc`s: the callbacks are local to this thread.
    let (allocs, frees) = (Rc::new(Cell::new(0usize)), Rc::new(Cell::new(0usize)));
    let (a, f) = (allocs.clone(), frees.clone());
    let zalloc = Callback::local("void *(*)(void *, unsigned, unsigned)", move |args| {
        a.set(a.get() + 1);
        let size = (args.u64(1) * args.u64(2)) as usize;
        // SAFETY: malloc of a positive size; zlib frees it through `zfree`.
        backcall::Value::UInt(unsafe { libc::malloc(size.max(1)) } as u64)
    })?;
    let zfree = Callback::local("void (*)(void *, void *)", move |args| {
        f.set(f.get() + 1);
        // SAFETY: a block `zalloc` returned.
        unsafe { libc::free(args.ptr(1)) };
    })?;

    let text: Vec<u8> = (0..200_000u32)
        .flat_map(|i| format!("line {} of a repetitive text\n", i % 97).into_bytes())
        .collect();
    let mut packed = vec![0u8; text.len()];
    let size = std::mem::size_of::<ZStream>() as c_int;
    let mut z = stream(&zalloc, &zfree);
    // SAFETY: a zeroed stream with our allocator, buffers that outlive the calls.
    unsafe {
        assert_eq!(deflateInit_(&mut z, 9, zlibVersion(), size), Z_OK);
        z.next_in = text.as_ptr();
        z.avail_in = text.len() as c_uint;
        z.next_out = packed.as_mut_ptr();
        z.avail_out = packed.len() as c_uint;
        assert_eq!(deflate(&mut z, Z_FINISH), Z_STREAM_END);
        packed.truncate(z.total_out as usize);
        assert_eq!(deflateEnd(&mut z), Z_OK);
    }
    let mut unpacked = vec![0u8; text.len()];
    let mut z = stream(&zalloc, &zfree);
    // SAFETY: as above.
    unsafe {
        assert_eq!(inflateInit_(&mut z, zlibVersion(), size), Z_OK);
        z.next_in = packed.as_ptr();
        z.avail_in = packed.len() as c_uint;
        z.next_out = unpacked.as_mut_ptr();
        z.avail_out = unpacked.len() as c_uint;
        assert_eq!(inflate(&mut z, Z_FINISH), Z_STREAM_END);
        assert_eq!(inflateEnd(&mut z), Z_OK);
    }
    assert_eq!(unpacked, text);
    println!(
        "{} bytes -> {} bytes and back; zalloc called {} times, zfree {} times",
        text.len(),
        packed.len(),
        allocs.get(),
        frees.get()
    );
    assert!(allocs.get() > 0);
    assert_eq!(allocs.get(), frees.get(), "every allocation freed");
    Ok(())
}
