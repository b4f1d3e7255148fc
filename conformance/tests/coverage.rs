//! Every absolute requirement (MUST, MUST NOT) of the specification, chapters 01 to 07, is
//! checked by some case of the catalog, unless a written reason says why no black-box case can
//! observe it. The list of reasons only shrinks: an entry that a case cites makes the test
//! fail.

use std::collections::BTreeSet;

use rpcplugin_conformance::cases::catalog;
use rpcplugin_conformance::requirements;

/// Absolute requirements that no case can observe from outside an implementation.
const NOT_OBSERVABLE: &[(&str, &str)] = &[(
    "STREAM-12",
    "what a local read or write on a stream returns after the connection ended is the \
         implementation's API; on the wire there is nothing left to see",
)];

fn absolute(level: &str) -> bool {
    matches!(
        level,
        "MUST" | "MUST NOT" | "REQUIRED" | "SHALL" | "SHALL NOT"
    )
}

#[test]
fn every_absolute_requirement_is_checked_by_a_case() {
    let cited: BTreeSet<&str> = catalog()
        .iter()
        .flat_map(|c| c.requirements.iter().copied())
        .collect();
    let exempt: BTreeSet<&str> = NOT_OBSERVABLE.iter().map(|(id, _)| *id).collect();
    let missing: Vec<String> = requirements::all()
        .iter()
        .filter(|r| absolute(&r.level))
        .filter(|r| !cited.contains(r.id.as_str()) && !exempt.contains(r.id.as_str()))
        .map(|r| format!("{} {}", r.id, r.text))
        .collect();
    assert!(
        missing.is_empty(),
        "absolute requirements no case checks:\n{}",
        missing.join("\n")
    );
    for id in &exempt {
        assert!(
            requirements::lookup(id).is_some(),
            "{id} is not a requirement"
        );
        assert!(
            !cited.contains(id),
            "{id} is now checked by a case: remove it from NOT_OBSERVABLE"
        );
    }
}

#[test]
fn every_case_cites_existing_requirements_and_has_a_unique_id() {
    let mut ids = BTreeSet::new();
    for case in catalog() {
        assert!(ids.insert(case.id), "two cases are called {}", case.id);
        assert!(!case.requirements.is_empty(), "{} cites nothing", case.id);
        for id in case.requirements {
            assert!(
                requirements::lookup(id).is_some(),
                "{} cites {id}, which is not in spec/requirements.json",
                case.id
            );
        }
        assert!(
            case.id.starts_with(case.mode().as_str()),
            "{} does not start with its mode",
            case.id
        );
    }
}

/// The numbered rows of the chapters' tables: `| ID |` at the start of a table line, for the
/// row families tests cite (spec README, section 3).
fn spec_rows() -> BTreeSet<String> {
    let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec");
    let mut rows = BTreeSet::new();
    for entry in std::fs::read_dir(&spec).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !(name.ends_with(".md") && name.as_bytes()[0].is_ascii_digit()) {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let Some(rest) = line.strip_prefix("| ") else {
                continue;
            };
            let id = rest.split(' ').next().unwrap_or("");
            let (family, number) = id.split_at(id.len().min(1));
            if matches!(
                family,
                "M" | "F" | "X" | "S" | "E" | "H" | "P" | "G" | "R" | "L"
            ) && !number.is_empty()
                && number.bytes().all(|b| b.is_ascii_digit())
            {
                rows.insert(id.to_string());
            }
        }
    }
    rows
}

// Every numbered example row that describes input one role must handle is sent by at least
// one case of that role, or the table says why no case can send it (and the rows that are no
// input at all say so); every entry names a row the chapters have and cases of its role.
#[test]
fn every_example_row_is_sent_by_a_case_or_says_why_not() {
    use rpcplugin_conformance::cases::find;
    use rpcplugin_conformance::rows::{Reach, ROWS};
    let rows = spec_rows();
    assert!(rows.len() > 120, "only {} rows found in spec/", rows.len());
    let mut unreached = Vec::new();
    for r in ROWS {
        assert!(
            rows.contains(r.row),
            "{} is not a row of the chapters",
            r.row
        );
        match r.reach {
            Reach::Cases(cases) => {
                assert!(!cases.is_empty(), "{}: no case", r.row);
                let mode = r
                    .mode
                    .unwrap_or_else(|| panic!("{}: cases need a role", r.row));
                for id in cases {
                    let case = find(id).unwrap_or_else(|| panic!("{}: no case {id}", r.row));
                    assert_eq!(
                        case.mode(),
                        mode,
                        "{}: {id} is not a {} case",
                        r.row,
                        mode.as_str()
                    );
                }
            }
            Reach::Unreached(why) => {
                assert!(why.len() > 40, "{}: say why no case can send it", r.row);
                unreached.push(format!(
                    "{} ({}): {why}",
                    r.row,
                    r.mode.map_or("either", |m| m.as_str())
                ));
            }
            Reach::NotInput(why) => assert!(why.len() > 40, "{}: say why", r.row),
        }
    }
    let covered: BTreeSet<&str> = ROWS.iter().map(|r| r.row).collect();
    let missing: Vec<&String> = rows
        .iter()
        .filter(|r| !covered.contains(r.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "rows of the chapters that rows::ROWS does not account for: {missing:?}"
    );
    // The rows no case can send, for the record (cargo test -- --nocapture shows them).
    println!(
        "{} rows no case can send:\n{}",
        unreached.len(),
        unreached.join("\n")
    );
}
