//! The side-by-side call-plan table `backcall plan --abi all` prints.

use backcall_abi::{Abi, ArgPass, CallPlan, Piece, RetPlan, Signature, Type};

/// One ABI's column: its plan, or why it has none.
type Column = (Abi, Result<CallPlan, String>);

/// Renders `sig`'s plans on `abis` as a table: one row per argument, then the result, the
/// return code, the stack bytes and the callee-popped bytes; one column per ABI. A variadic
/// `sig`'s call passes `unnamed` after its named parameters.
pub fn render(sig: &Signature, unnamed: &[Type], abis: &[Abi]) -> String {
    let plan = |abi: Abi| abi.plan_call(sig, unnamed).map_err(|e| e.to_string());
    let columns: Vec<Column> = abis.iter().map(|&abi| (abi, plan(abi))).collect();
    let mut rows: Vec<Vec<String>> = vec![header(&columns)];
    for (i, ty) in sig.args.iter().chain(unnamed).enumerate() {
        let unnamed = if i >= sig.args.len() { "unnamed " } else { "" };
        rows.push(row(format!("arg{i} {unnamed}{ty}"), &columns, |p| arg_cell(p, i)));
    }
    rows.push(row(format!("ret {}", sig.ret), &columns, ret_cell));
    rows.push(row("return code".into(), &columns, |p| format!("{:?}", p.code)));
    rows.push(row("stack bytes".into(), &columns, |p| p.stack_bytes.to_string()));
    rows.push(row("callee pops".into(), &columns, |p| p.callee_pop.to_string()));
    rows.push(row("typed route".into(), &columns, typed_cell));
    let mut out = format!("{sig}\n");
    out.push_str(&align(&rows));
    for (abi, result) in &columns {
        if let Err(e) = result {
            out.push_str(&format!("  {abi}: {e}\n"));
        }
    }
    out
}

/// The typed stub a typed callback of this plan takes, or `context` (its route without one).
pub fn typed_cell(plan: &CallPlan) -> String {
    let code =
        backcall_abi::thunks::CodePage::template(plan.abi, backcall_abi::arch::ASSEMBLED_PAGE_SIZE);
    match code.map(|c| backcall_abi::stubs::typed_stub(plan, &c)) {
        Ok(Ok(stub)) => stub.to_string(),
        _ => "context".into(),
    }
}

/// One line on the route a typed callback of `plan` takes, and why.
pub fn route_line(plan: &CallPlan) -> String {
    let code =
        backcall_abi::thunks::CodePage::template(plan.abi, backcall_abi::arch::ASSEMBLED_PAGE_SIZE);
    match code.map_err(|e| e.to_string()).and_then(|c| backcall_abi::stubs::typed_stub(plan, &c)) {
        Ok(stub) => format!("  typed route: {stub}"),
        Err(why) => format!("  typed route: none, the context route ({why})"),
    }
}

fn header(columns: &[Column]) -> Vec<String> {
    std::iter::once(String::new()).chain(columns.iter().map(|(abi, _)| abi.to_string())).collect()
}

fn row(label: String, columns: &[Column], cell: impl Fn(&CallPlan) -> String) -> Vec<String> {
    let mut label = label;
    if label.len() > 28 {
        label.truncate(25);
        label.push_str("...");
    }
    std::iter::once(label)
        .chain(columns.iter().map(|(_, r)| r.as_ref().map(&cell).unwrap_or_else(|_| "-".into())))
        .collect()
}

fn align(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> =
        (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    rows.iter()
        .map(|r| {
            let cells: Vec<String> =
                r.iter().zip(&widths).map(|(s, w)| format!("{s:<w$}")).collect();
            format!("  {}\n", cells.join("  ").trim_end())
        })
        .collect()
}

fn arg_cell(plan: &CallPlan, i: usize) -> String {
    match &plan.args[i].pass {
        ArgPass::Direct(pieces) => pieces_cell(plan, pieces, false),
        ArgPass::Indirect { pointer } => format!("&{}", plan.loc_name(*pointer, false)),
    }
}

fn ret_cell(plan: &CallPlan) -> String {
    match &plan.ret {
        RetPlan::Void => "-".into(),
        RetPlan::Direct { pieces, .. } => pieces_cell(plan, pieces, true),
        RetPlan::Indirect { pointer, returned_in } => {
            let back = returned_in.map(|r| format!("->{}", plan.loc_name(r, true)));
            format!("&{}{}", plan.loc_name(*pointer, false), back.unwrap_or_default())
        }
    }
}

fn pieces_cell(plan: &CallPlan, pieces: &[Piece], ret: bool) -> String {
    let whole = pieces.len() == 1;
    let names: Vec<String> = pieces
        .iter()
        .map(|p| {
            let name = plan.loc_name(p.loc, ret);
            if whole {
                name
            } else {
                format!("{name}[{}..{}]", p.offset, p.offset + p.size)
            }
        })
        .collect();
    names.join(" ")
}
