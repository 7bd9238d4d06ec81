//! `switchboard validate`: every problem in the flows directory, at once.

use runtime::flows;
use std::collections::BTreeMap;
use std::process::ExitCode;

use runtime::Global;
use runtime::{report, wiring};

pub fn validate(global: &Global, json: bool) -> ExitCode {
    let project = wiring::load(global, BTreeMap::new());
    let mut problems = project.diagnostics();
    if let Some((message, hint)) = wiring::no_flow_files(&project) {
        problems.push(
            flows::Diagnostic::new(&project.dir, flows::Pos::new(1, 1), message).with_hint(hint),
        );
    }
    if json {
        report::json(&serde_json::json!({
            "valid": project.flows.keys().collect::<Vec<_>>(),
            "invalid": project.invalid.keys().collect::<Vec<_>>(),
            "problems": problems,
            "warnings": project.warnings,
        }));
    } else {
        for problem in problems.iter().chain(&project.warnings) {
            outln!("{problem}");
        }
        let valid = project.flows.len();
        let invalid = project.invalid.len();
        let noun = |n: usize| if n == 1 { "flow" } else { "flows" };
        if problems.is_empty() {
            outln!("{valid} {} valid", noun(valid));
        } else {
            outln!(
                "{valid} {} valid, {invalid} invalid; {} problem{}",
                noun(valid),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
        }
    }
    if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
