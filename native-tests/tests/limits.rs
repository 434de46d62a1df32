//! What a signature may cost: short text must not build huge types, and a large type must be
//! planned without copying it per use. Each case is measured with a counting allocator (the
//! most bytes live at once); the time of the refusals is measured by `cargo bench` (group
//! `limits` of `benches/callbacks.rs`).

use std::sync::Arc;

use backcall::{parse_signature, Callback, Error, Prototype};
use backcall_abi::{Abi, Aggregate, AggregateKind, Field, Scalar, Signature, Type};
use backcall_native_tests::alloc_meter::{peak_during, AllocMeter};

#[global_allocator]
static METER: AllocMeter = AllocMeter;

const MIB: usize = 1 << 20;

/// `levels` typedefs, each a struct of two of the previous one (`t0` is two ints), then a
/// signature with `params` parameters of the last: 2^(levels+2) - 1 nodes per parameter.
fn stacked_typedefs(levels: usize, params: usize) -> String {
    let mut text = String::from("typedef struct { int a, b; } t0; ");
    for i in 1..=levels {
        text.push_str(&format!("typedef struct {{ t{} a, b; }} t{i}; ", i - 1));
    }
    let last = format!("t{levels}");
    text + &format!("void (*)({})", vec![last.as_str(); params].join(", "))
}

/// The same types built in Rust, sharing each level.
fn stacked_type(levels: usize) -> Type {
    let mut ty = Type::anon_struct([Type::scalar(Scalar::Int), Type::scalar(Scalar::Int)]);
    for _ in 0..levels {
        let field = |name: &str| Field::new(name, ty.clone());
        let fields = vec![field("a"), field("b")];
        ty = Type::Aggregate(Arc::new(Aggregate::new(AggregateKind::Struct, None, fields)));
    }
    ty
}

/// Sixty-four parameters of a 65,535-node struct: about 800 bytes of text that once cost
/// 896 MiB to plan. Refused by the parser, naming the limit, with next to no memory.
#[test]
fn many_uses_of_a_huge_typedef_are_refused_by_the_signature_limit() {
    for params in [2, 64, 1024] {
        let text = stacked_typedefs(14, params);
        let (peak, parsed) = peak_during(|| parse_signature(&text));
        let e = parsed.expect_err("over the limit");
        assert!(e.expected.contains("MAX_SIGNATURE_NODES"), "{e}");
        assert!(peak < MIB, "{params} parameters: {peak} bytes at the peak");
        let (peak, made) = peak_during(|| Callback::new(&text, |_| 0));
        assert!(matches!(made, Err(Error::Parse(_))), "{params} parameters");
        assert!(peak < MIB, "{params} parameters: {peak} bytes at the peak");
    }
}

/// A signature built in Rust (no parser) meets the same limit in the planner, on every ABI.
#[test]
fn the_planner_refuses_an_oversized_signature_however_it_was_built() {
    let sig = Signature::new(Type::Void, vec![stacked_type(14); 64]);
    assert_eq!(sig.nodes(), 64 * 65_535 + 1, "the parameters and the void result");
    for abi in Abi::ALL {
        let (peak, plan) = peak_during(|| abi.plan(&sig));
        let e = plan.expect_err("over the limit").to_string();
        assert!(e.contains("MAX_SIGNATURE_NODES"), "{abi}: {e}");
        assert!(peak < MIB, "{abi}: {peak} bytes at the peak");
    }
}

/// One parameter of the largest type the parser accepts plans in little memory on every ABI:
/// its layout is shared per level, not expanded per member.
#[test]
fn one_huge_struct_is_planned_without_expanding_it() {
    let text = stacked_typedefs(14, 1);
    let sig = parse_signature(&text).expect("within the limits");
    for abi in Abi::ALL {
        let (peak, plan) = peak_during(|| abi.plan(&sig));
        plan.unwrap_or_else(|e| panic!("{abi}: {e}"));
        assert!(peak < MIB, "{abi}: {peak} bytes at the peak");
    }
    let (peak, proto) = peak_during(|| Prototype::new(&text));
    proto.expect("the host plans it");
    assert!(peak < 4 * MIB, "parse and plan on the host: {peak} bytes at the peak");
}

/// A 16 MiB array by value: millions of elements, but one node; no ABI lists its elements.
#[test]
fn a_huge_array_member_is_not_listed_element_by_element() {
    for elem in ["float", "double", "int", "struct { float x, y; }"] {
        let text = format!("void (*)(struct {{ {elem} a[{}]; }})", (1 << 24) / 8);
        let sig = parse_signature(&text).unwrap();
        for abi in Abi::ALL {
            let (peak, plan) = peak_during(|| abi.plan(&sig));
            plan.unwrap_or_else(|e| panic!("{abi} {text}: {e}"));
            assert!(peak < MIB, "{abi} {text}: {peak} bytes at the peak");
        }
    }
}
