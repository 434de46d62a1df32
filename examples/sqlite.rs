//! SQLite calling backcall callbacks: a scalar SQL function, a collation (with its destructor),
//! and `sqlite3_exec`'s row callback collecting rows into a borrowed `Vec`.
//!
//! `cargo run --example sqlite` (links Debian's `libsqlite3-dev`).

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};

use backcall::{Callback, Value};

#[link(name = "sqlite3")]
extern "C" {
    fn sqlite3_open(filename: *const c_char, db: *mut *mut c_void) -> c_int;
    fn sqlite3_close(db: *mut c_void) -> c_int;
    fn sqlite3_exec(
        db: *mut c_void,
        sql: *const c_char,
        callback: Option<
            unsafe extern "C" fn(*mut c_void, c_int, *mut *mut c_char, *mut *mut c_char) -> c_int,
        >,
        arg: *mut c_void,
        errmsg: *mut *mut c_char,
    ) -> c_int;
    fn sqlite3_create_function_v2(
        db: *mut c_void,
        name: *const c_char,
        n_arg: c_int,
        text_rep: c_int,
        app: *mut c_void,
        x_func: Option<unsafe extern "C" fn(*mut c_void, c_int, *mut *mut c_void)>,
        x_step: *const c_void,
        x_final: *const c_void,
        x_destroy: *const c_void,
    ) -> c_int;
    fn sqlite3_create_collation_v2(
        db: *mut c_void,
        name: *const c_char,
        text_rep: c_int,
        arg: *mut c_void,
        compare: Option<
            unsafe extern "C" fn(*mut c_void, c_int, *const c_void, c_int, *const c_void) -> c_int,
        >,
        destroy: Option<unsafe extern "C" fn(*mut c_void)>,
    ) -> c_int;
    fn sqlite3_value_text(value: *mut c_void) -> *const u8;
    fn sqlite3_value_bytes(value: *mut c_void) -> c_int;
    fn sqlite3_result_text(ctx: *mut c_void, text: *const c_char, n: c_int, destructor: isize);
}

const SQLITE_OK: c_int = 0;
const SQLITE_UTF8: c_int = 1;
/// `SQLITE_TRANSIENT`: sqlite copies the text before the call returns.
const SQLITE_TRANSIENT: isize = -1;

fn exec(db: *mut c_void, sql: &str) {
    let sql = CString::new(sql).unwrap();
    // SAFETY: an open database and a NUL-terminated statement.
    let rc =
        unsafe { sqlite3_exec(db, sql.as_ptr(), None, std::ptr::null_mut(), std::ptr::null_mut()) };
    assert_eq!(rc, SQLITE_OK, "{sql:?}");
}

fn main() -> Result<(), backcall::Error> {
    let mut db = std::ptr::null_mut();
    // SAFETY: an in-memory database.
    assert_eq!(unsafe { sqlite3_open(c":memory:".as_ptr(), &mut db) }, SQLITE_OK);

    // A scalar function: reverse(text), reading its argument with `Args::slice`.
    let reverse = Callback::new("void (*)(void *, int, void **)", |args| {
        // SAFETY: sqlite passes argc values in argv.
        let argv = unsafe { args.slice::<*mut c_void>(2, 1) }.unwrap_or_default();
        let Some(&value) = argv.first() else { return };
        // SAFETY: a live sqlite3_value; its text is valid for the call.
        let text = unsafe {
            let (p, n) = (sqlite3_value_text(value), sqlite3_value_bytes(value));
            if p.is_null() {
                &[][..]
            } else {
                std::slice::from_raw_parts(p, n as usize)
            }
        };
        let reversed: String = String::from_utf8_lossy(text).chars().rev().collect();
        // SAFETY: sqlite copies the text (SQLITE_TRANSIENT).
        unsafe {
            sqlite3_result_text(
                args.ptr(0),
                reversed.as_ptr().cast(),
                reversed.len() as c_int,
                SQLITE_TRANSIENT,
            )
        };
    })?;
    // SAFETY: the callback's signature is xFunc's; it outlives the database (closed below).
    let rc = unsafe {
        sqlite3_create_function_v2(
            db,
            c"reverse".as_ptr(),
            1,
            SQLITE_UTF8,
            std::ptr::null_mut(),
            Some(reverse.as_fn()),
            std::ptr::null(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, SQLITE_OK);

    // A collation ordering by length, then bytes (`Args::bytes_at` reads each (len, ptr) pair),
    // and its destructor, which sqlite calls when the database closes.
    let by_length =
        Callback::new("int (*)(void *, int, const void *, int, const void *)", |args| {
            // SAFETY: sqlite passes (len, text) pairs.
            let (a, b) = unsafe { (args.bytes_at(2, 1), args.bytes_at(4, 3)) };
            let (a, b) = (a.unwrap_or_default(), b.unwrap_or_default());
            a.len().cmp(&b.len()).then(a.cmp(b)) as i32
        })?;
    static DESTROYED: AtomicBool = AtomicBool::new(false);
    let destroyed = Callback::new("void (*)(void *)", |_| {
        DESTROYED.store(true, Ordering::SeqCst);
        Value::Void
    })?;
    // SAFETY: the signatures are the collation's and its destructor's; both outlive the db.
    let rc = unsafe {
        sqlite3_create_collation_v2(
            db,
            c"bylength".as_ptr(),
            SQLITE_UTF8,
            std::ptr::null_mut(),
            Some(by_length.as_fn()),
            Some(destroyed.as_fn()),
        )
    };
    assert_eq!(rc, SQLITE_OK);

    exec(db, "CREATE TABLE words(w TEXT); INSERT INTO words VALUES ('pear'), ('fig'), ('banana'), ('kiwi')");

    // Rows into a borrowed Vec: the handler borrows `rows`, so it lives in a scope.
    let rows = RefCell::new(Vec::new());
    backcall::scope(|s| {
        let row = s
            .callback("int (*)(void *, int, char **, char **)", |args| {
                // SAFETY: sqlite passes `n` column texts.
                let cols = unsafe { args.slice::<*const c_char>(2, 1) }.unwrap_or_default();
                let texts = cols.iter().map(|&c| {
                    // SAFETY: a column's NUL-terminated text, or NULL.
                    (!c.is_null())
                        .then(|| unsafe { CStr::from_ptr(c) }.to_string_lossy().into_owned())
                });
                rows.borrow_mut().push(texts.map(Option::unwrap_or_default).collect::<Vec<_>>());
                0
            })
            .unwrap();
        let sql = c"SELECT w, reverse(w) FROM words ORDER BY w COLLATE bylength";
        // SAFETY: the row callback's signature is sqlite3_exec's.
        let rc = unsafe {
            sqlite3_exec(
                db,
                sql.as_ptr(),
                Some(row.as_fn()),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        assert_eq!(rc, SQLITE_OK);
    });
    let rows = rows.into_inner();
    for r in &rows {
        println!("{:<8} {}", r[0], r[1]);
    }
    let words: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(words, ["fig", "kiwi", "pear", "banana"]);
    assert_eq!(rows[3][1], "ananab");

    // SAFETY: the database, closed once; its collation destructor runs now.
    assert_eq!(unsafe { sqlite3_close(db) }, SQLITE_OK);
    assert!(DESTROYED.load(Ordering::SeqCst), "sqlite called the collation's destructor");
    Ok(())
}
