//! expat parsing a generated 1 MiB document through backcall callbacks: element start and end
//! handlers (with their attribute lists) and character data, all borrowing the parse's state.
//!
//! `cargo run --example expat` (links Debian's `libexpat1-dev`).

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_int, c_void};

#[link(name = "expat")]
extern "C" {
    fn XML_ParserCreate(encoding: *const c_char) -> *mut c_void;
    fn XML_ParserFree(parser: *mut c_void);
    fn XML_SetElementHandler(parser: *mut c_void, start: *const c_void, end: *const c_void);
    fn XML_SetCharacterDataHandler(parser: *mut c_void, handler: *const c_void);
    fn XML_Parse(parser: *mut c_void, data: *const c_char, len: c_int, is_final: c_int) -> c_int;
}

fn main() {
    let mut doc = String::from("<catalog>");
    let mut expected_price = 0u64;
    while doc.len() < 1 << 20 {
        let n = doc.len() as u64 % 1000;
        expected_price += n;
        doc.push_str(&format!(
            "<item id=\"{n}\" kind=\"plain\"><name>thing {n}</name><price>{n}</price></item>"
        ));
    }
    doc.push_str("</catalog>");

    let elements = Cell::new(0u64);
    let attributes = Cell::new(0u64);
    let depth = Cell::new(0u32);
    let deepest = Cell::new(0u32);
    let in_price = Cell::new(false);
    let price_text = RefCell::new(String::new());
    let total_price = Cell::new(0u64);

    // SAFETY: a fresh parser, freed below.
    let parser = unsafe { XML_ParserCreate(std::ptr::null()) };
    assert!(!parser.is_null());
    backcall::scope(|s| {
        let start = s
            .callback("void (*)(void *, const char *, const char **)", |args| {
                elements.set(elements.get() + 1);
                depth.set(depth.get() + 1);
                deepest.set(deepest.get().max(depth.get()));
                // SAFETY: expat passes the element name and a NULL-ended (name, value) list.
                let (name, attrs) = unsafe { (args.c_str(1), args.ptr_array::<c_char>(2)) };
                attributes.set(attributes.get() + attrs.map_or(0, |a| a.len() as u64 / 2));
                in_price.set(name.is_some_and(|n| n.to_bytes() == b"price"));
                price_text.borrow_mut().clear();
            })
            .unwrap();
        let end = s
            .callback("void (*)(void *, const char *)", |_| {
                depth.set(depth.get() - 1);
                if in_price.replace(false) {
                    total_price
                        .set(total_price.get() + price_text.borrow().parse::<u64>().unwrap());
                }
            })
            .unwrap();
        let text = s
            .callback("void (*)(void *, const char *, int)", |args| {
                if in_price.get() {
                    // SAFETY: expat passes (text, length), not NUL-terminated.
                    let bytes = unsafe { args.bytes_at(1, 2) }.unwrap_or_default();
                    price_text.borrow_mut().push_str(&String::from_utf8_lossy(bytes));
                }
            })
            .unwrap();
        // SAFETY: the handlers' signatures are expat's; they outlive the parse.
        unsafe {
            XML_SetElementHandler(parser, start.code_ptr(), end.code_ptr());
            XML_SetCharacterDataHandler(parser, text.code_ptr());
            assert_eq!(
                XML_Parse(parser, doc.as_ptr().cast(), doc.len() as c_int, 1),
                1,
                "well formed"
            );
        }
    });
    // SAFETY: the parser, freed once.
    unsafe { XML_ParserFree(parser) };
    println!(
        "{} bytes: {} elements, {} attributes, depth {}, total price {}",
        doc.len(),
        elements.get(),
        attributes.get(),
        deepest.get(),
        total_price.get()
    );
    let items = (elements.get() - 1) / 3;
    assert_eq!(attributes.get(), 2 * items);
    assert_eq!(deepest.get(), 3);
    assert_eq!(total_price.get(), expected_price);
}
