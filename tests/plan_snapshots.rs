//! Golden call plans: every ABI's plan of every built-in corpus signature (a variadic one's
//! call with the unnamed arguments its line names), in
//! `snapshots/plans__<abi>.snap`. Review a changed plan against the ABI document before
//! accepting it (`cargo insta review`).

use backcall::abi::Abi;

fn plans_of(abi: Abi) -> String {
    backcall::corpus::builtin()
        .iter()
        .map(|entry| match abi.plan_call(&entry.signature, &entry.unnamed) {
            Ok(plan) => format!("line {}: {plan}", entry.line),
            Err(e) => format!("line {}: {}: {}\n  refused: {e}\n", entry.line, abi, entry.text),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn call_plans_of_the_corpus_per_abi() {
    for abi in Abi::ALL {
        insta::with_settings!({
            snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"),
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(format!("plans__{}", abi.id()), plans_of(abi));
        });
    }
}
