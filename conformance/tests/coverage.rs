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
