//! `backcall verify --header`: every callback type of the installed zlib, SQLite, Expat and
//! libuv headers (`ci/install-deps.sh` installs them) and of a fixture with every kind of type,
//! verified on all six ABIs, on both routes, at -O0 and -O2, by each ABI's authority.

use std::path::{Path, PathBuf};

use backcall::harness::header::{self, extract, HeaderOptions};
use backcall_abi::Abi;
use backcall_emu_tests::oracle::Compiler;
use backcall_emu_tests::verify::{self, Request};
use backcall_oracle::compiler;
use serde_json::Value;

/// Each ABI with its authority only: the suite's other compilers are the matrix's business.
fn authorities() -> Vec<(Abi, Vec<Compiler>)> {
    Abi::ALL
        .iter()
        .map(|&abi| {
            let suite = compiler::suite(abi).unwrap_or_else(|hint| panic!("{hint}"));
            let judge = compiler::authority(abi, &suite).expect("the suite has the authority");
            (abi, vec![judge.clone()])
        })
        .collect()
}

/// Verifies `headers`; answers the exit code and the JSON lines.
fn verify_headers(headers: &[PathBuf]) -> (i32, Vec<Value>) {
    let options = HeaderOptions::default();
    let headers =
        headers.iter().map(|h| extract(&options, h).unwrap_or_else(|e| panic!("{e}"))).collect();
    let mut request = Request::default_job(authorities(), 0, 0);
    request.signatures.clear();
    request.headers = headers;
    request.json = true;
    let mut out = Vec::new();
    let code = verify::run(&request, &mut out);
    let text = String::from_utf8(out).unwrap();
    let lines = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (code, lines)
}

fn installed(header: &str) -> PathBuf {
    header::installed(header).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_callback_type_of_four_real_libraries_passes_on_six_abis() {
    let headers: Vec<PathBuf> = header::REAL_HEADERS.iter().map(|(h, _)| installed(h)).collect();
    let (code, lines) = verify_headers(&headers);
    let summary = lines.last().unwrap();
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["fail"], 0);
    // Every type found is expressible, and each passes on the context route on every ABI and
    // level: 2 levels × 6 ABIs per type.
    let found: u64 =
        summary["headers"].as_array().unwrap().iter().map(|h| h["found"].as_u64().unwrap()).sum();
    let expressible: u64 = summary["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["expressible"].as_u64().unwrap())
        .sum();
    assert_eq!(found, expressible);
    assert!(found > 350, "{found}");
    let context_passes = lines
        .iter()
        .filter(|l| l["route"] == "context" && l["status"] == "pass" && l["name"].is_string())
        .count() as u64;
    assert_eq!(context_passes, found * 12);
    // The typed route runs whatever has a stub, and passes all of it.
    let typed = lines.iter().filter(|l| l["route"] == "typed");
    assert!(typed.clone().all(|l| l["status"] == "pass" || l["status"] == "unsupported"));
    assert!(typed.filter(|l| l["status"] == "pass").count() as u64 > found * 10);
    let read = lines.iter().find(|l| l["name"] == "sqlite3.h:sqlite3_io_methods.xRead").unwrap();
    assert_eq!(read["location"], "sqlite3.h:836");
}

#[test]
fn what_backcall_cannot_express_is_unsupported_with_the_reason_on_every_abi_and_level() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/headers/widget.h");
    let (code, lines) = verify_headers(&[fixture]);
    assert_eq!(code, 0, "{:?}", lines.last());
    let unsupported = |name: &str| {
        let mine: Vec<&Value> = lines.iter().filter(|l| l["name"] == name).collect();
        assert!(!mine.is_empty(), "{name} is reported");
        assert!(mine.iter().all(|l| l["status"] == "unsupported"), "{name}: {mine:?}");
        mine.len()
    };
    // Not expressible: one line per ABI and level, with the reason.
    assert_eq!(unsupported("widget.h:widget_either_fn"), 12);
    assert_eq!(unsupported("widget.h:widget_torn_fn"), 12);
    // The rest pass on the context route: `long`, `wchar_t`, structs, unions, bit-fields,
    // anonymous records by value, records under `#pragma pack`, and a variadic callback
    // called with the default unnamed arguments (which no typed stub takes).
    let printf = |route: &str, status: &str| {
        let printf = lines.iter().filter(|l| l["name"] == "widget.h:widget_printf_fn");
        printf.filter(|l| l["route"] == route && l["status"] == status).count()
    };
    assert_eq!((printf("context", "pass"), printf("typed", "unsupported")), (12, 12));
    assert!(lines.iter().any(|l| l["name"] == "widget.h:widget_printf_fn"
        && l["signature"]
            .as_str()
            .is_some_and(|s| s.ends_with("| int, double, void *, long long, double"))));
    for name in [
        "widget.h:widget_printf_fn",
        "widget.h:widget_flags_fn",
        "widget.h:widget_log_fn",
        "widget.h:widget_measure_fn",
        "widget.h:widget_vtable.keys.accept",
        "widget.h:widget_anon_fn",
        "widget.h:widget_pragma_fn",
        "widget.h:widget_frame_fn",
    ] {
        let mine = lines.iter().filter(|l| l["name"] == name && l["route"] == "context");
        assert_eq!(mine.clone().count(), 12, "{name}");
        assert!(mine.clone().all(|l| l["status"] == "pass"), "{name}");
    }
}
