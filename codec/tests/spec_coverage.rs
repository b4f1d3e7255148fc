//! Keeps the spec, its data and the tests in step (the "spec discipline" of the project):
//!
//! 1. `spec/requirements.json` holds exactly the requirement paragraphs of the chapters
//!    (`**[ID]** text`), with the same chapter, level and text;
//! 2. the chapters use BCP 14 keywords only inside requirement paragraphs;
//! 3. every requirement id is cited by a test (`// covers: ID, ID`) or a vector (a
//!    `requirements` list in `spec/vectors/*.json`), and every cited id exists;
//! 4. the document version of `spec/README.md` is the one every chapter and
//!    `spec/requirements.json` name.
//!
//! `UPDATE_REQUIREMENTS=1 cargo test -p rpcplugin-codec --test spec_coverage` rewrites
//! `spec/requirements.json` from the chapters.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// Requirements that only running processes can show, cited by no test or conformance case
/// yet (none today: the host driver contract of chapter 07 is cited by
/// `reference-host/tests/driver.rs`); each entry must leave this list as soon as a test cites it.
const AWAITING_HARNESS: &[(&str, &str)] = &[];

const KEYWORDS: &[&str] = &[
    "MUST NOT",
    "SHALL NOT",
    "SHOULD NOT",
    "NOT RECOMMENDED",
    "MUST",
    "SHALL",
    "SHOULD",
    "RECOMMENDED",
    "REQUIRED",
    "MAY",
    "OPTIONAL",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn chapters() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(root().join("spec"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            p.extension().is_some_and(|e| e == "md") && name.as_bytes()[0].is_ascii_digit()
        })
        .collect();
    files.sort();
    files
}

fn is_word_at(text: &str, at: usize, word: &str) -> bool {
    let before = text[..at].chars().next_back();
    let after = text[at + word.len()..].chars().next();
    let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric() && c != '_');
    boundary(before) && boundary(after)
}

/// The first BCP 14 keyword in `text` (the longest one at the earliest position).
fn first_keyword(text: &str) -> Option<&'static str> {
    let mut best: Option<(usize, &str)> = None;
    for kw in KEYWORDS {
        let mut from = 0;
        while let Some(i) = text[from..].find(kw) {
            let at = from + i;
            if is_word_at(text, at, kw) {
                if best.is_none_or(|(b, bk)| at < b || (at == b && kw.len() > bk.len())) {
                    best = Some((at, kw));
                }
                break;
            }
            from = at + kw.len();
        }
    }
    best.map(|(_, kw)| kw)
}

struct Parsed {
    requirements: Vec<Req>,
    stray: Vec<String>,
}

/// One requirement paragraph.
struct Req {
    id: String,
    level: String,
    chapter: String,
    /// The number of the section it is in (`1.4`, `5.4.2`).
    section: String,
    role: &'static str,
    text: String,
}

/// Whom a requirement binds: `host`, `plugin`, `driver`, or `both` (receivers, senders,
/// endpoints, clients and servers are either). Judged by the last of those words before the
/// requirement's first BCP 14 keyword, the grammatical subject in every requirement of the
/// chapters ("When a relaunched plugin has completed its handshake, the host MUST ..."), except
/// for the few listed in `BOTH` whose one sentence binds both roles.
fn role_of(id: &str, body: &str) -> &'static str {
    // Requirements whose sentence names the host first but binds both roles alike, so that
    // the subject before the key word does not tell the role (STREAM-2: the host's odd ids and
    // the plugin's even ones, one allocation rule with two parities).
    const BOTH: &[&str] = &["STREAM-2"];
    if BOTH.contains(&id) {
        return "both";
    }
    let at = KEYWORDS
        .iter()
        .filter_map(|kw| {
            body.match_indices(kw)
                .map(|(i, _)| i)
                .find(|&i| is_word_at(body, i, kw))
        })
        .min()
        .unwrap_or(body.len());
    let subject = body[..at].to_lowercase();
    let mut last: Option<(usize, &'static str)> = None;
    for (word, role) in [
        ("host", "host"),
        ("plugin", "plugin"),
        ("driver", "driver"),
        ("receiver", "both"),
        ("sender", "both"),
        ("endpoint", "both"),
        ("client", "both"),
        ("server", "both"),
        ("opener", "both"),
    ] {
        for (i, _) in subject.match_indices(word) {
            let before = subject[..i].chars().next_back();
            let after = subject[i + word.len()..].chars().next();
            let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric() && c != '`');
            // "receivers", "servers": a plural is the same role.
            let after_ok = boundary(after)
                || (after == Some('s') && boundary(subject[i + word.len() + 1..].chars().next()));
            if boundary(before) && after_ok && last.is_none_or(|(j, _)| i > j) {
                last = Some((i, role));
            }
        }
    }
    last.map_or("both", |(_, role)| role)
}

/// Splits a chapter into paragraphs (outside fenced code) and picks the requirement ones.
fn parse_chapter(path: &Path) -> Parsed {
    let chapter = path.file_stem().unwrap().to_string_lossy().to_string();
    let text = fs::read_to_string(path).unwrap();
    let mut paragraphs: Vec<String> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            if !current.is_empty() {
                paragraphs.push(current.join("\n"));
                current.clear();
            }
            continue;
        }
        if fenced {
            continue;
        }
        if line.trim().is_empty() {
            if !current.is_empty() {
                paragraphs.push(current.join("\n"));
                current.clear();
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        paragraphs.push(current.join("\n"));
    }
    let mut requirements = Vec::new();
    let mut stray = Vec::new();
    let mut section = String::new();
    for p in paragraphs {
        let collapsed = p.split_whitespace().collect::<Vec<_>>().join(" ");
        if collapsed.starts_with('#') {
            if let Some(number) = collapsed
                .trim_start_matches('#')
                .split_whitespace()
                .next()
                .filter(|n| n.chars().all(|c| c.is_ascii_digit() || c == '.'))
            {
                section = number.trim_end_matches('.').to_string();
            }
            continue;
        }
        if let Some(rest) = collapsed.strip_prefix("**[") {
            if let Some((id, body)) = rest.split_once("]** ") {
                requirements.push(Req {
                    id: id.to_string(),
                    level: first_keyword(body).unwrap_or("").to_string(),
                    chapter: chapter.clone(),
                    section: section.clone(),
                    role: role_of(id, body),
                    text: body.to_string(),
                });
                continue;
            }
        }
        if let Some(kw) = first_keyword(&collapsed) {
            stray.push(format!(
                "{chapter}: BCP 14 keyword {kw:?} outside a requirement: {collapsed}"
            ));
        }
    }
    Parsed {
        requirements,
        stray,
    }
}

fn requirements_json() -> Value {
    serde_json::from_str(&fs::read_to_string(root().join("spec/requirements.json")).unwrap())
        .unwrap()
}

#[test]
fn requirements_json_matches_the_chapters() {
    let mut from_md = Vec::new();
    let mut stray = Vec::new();
    for ch in chapters() {
        let p = parse_chapter(&ch);
        from_md.extend(p.requirements);
        stray.extend(p.stray);
    }
    assert!(
        stray.is_empty(),
        "normative words outside requirement paragraphs:\n{}",
        stray.join("\n")
    );
    let mut seen = BTreeSet::new();
    for Req {
        id, level, chapter, ..
    } in &from_md
    {
        assert!(seen.insert(id.clone()), "{id} appears twice");
        assert!(!level.is_empty(), "{id} ({chapter}) has no BCP 14 keyword");
        let prefix = id.split('-').next().unwrap();
        assert!(
            id.split('-')
                .nth(1)
                .is_some_and(|n| n.parse::<u32>().is_ok())
                && prefix.chars().all(|c| c.is_ascii_uppercase()),
            "{id}: ids are PREFIX-N"
        );
    }
    let generated = json!({
        "protocol": "rpcplugin wire protocol 1",
        "spec_version": document_version(),
        "requirements": from_md.iter().map(|r| json!({
            "id": r.id, "level": r.level, "role": r.role, "chapter": r.chapter,
            "section": r.section, "text": r.text,
        })).collect::<Vec<_>>(),
    });
    if std::env::var_os("UPDATE_REQUIREMENTS").is_some() {
        let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
        fs::write(root().join("spec/requirements.json"), text).unwrap();
        let ids: Vec<&str> = generated["requirements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap())
            .collect();
        fs::write(
            root().join("codec/src/requirements.rs"),
            with_generated_ids(
                &fs::read_to_string(root().join("codec/src/requirements.rs")).unwrap(),
                &ids,
            ),
        )
        .unwrap();
        return;
    }
    let stored = requirements_json();
    assert_eq!(stored["protocol"], "rpcplugin wire protocol 1");
    assert_eq!(
        stored["spec_version"],
        document_version(),
        "spec/requirements.json names another version than spec/README.md \
         (UPDATE_REQUIREMENTS=1 regenerates it)"
    );
    let stored_list = stored["requirements"].as_array().unwrap();
    let generated_list = generated["requirements"].as_array().unwrap();
    for (s, g) in stored_list.iter().zip(generated_list) {
        assert_eq!(s, g, "spec/requirements.json differs from the chapters (UPDATE_REQUIREMENTS=1 regenerates it)");
    }
    assert_eq!(
        stored_list.len(),
        generated_list.len(),
        "number of requirements"
    );
}

/// `source` (codec/src/requirements.rs) with `ids` as its generated list.
fn with_generated_ids(source: &str, ids: &[&str]) -> String {
    let begin = "    // BEGIN GENERATED IDS\n";
    let end = "    // END GENERATED IDS\n";
    let (head, rest) = source.split_once(begin).expect("the BEGIN marker");
    let (_, tail) = rest.split_once(end).expect("the END marker");
    // One id per line, as rustfmt lays the list out.
    let lines: Vec<String> = ids.iter().map(|id| format!("    \"{id}\",")).collect();
    format!("{head}{begin}{}\n{end}{tail}", lines.join("\n"))
}

// The codec's list of requirement ids, which req! checks citations against, is
// spec/requirements.json's.
#[test]
fn the_codec_lists_every_requirement_id() {
    let stored = requirements_json();
    let ids: Vec<&str> = stored["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        rpcplugin_codec::requirements::IDS,
        ids.as_slice(),
        "codec/src/requirements.rs differs from spec/requirements.json (UPDATE_REQUIREMENTS=1 regenerates it)"
    );
    let source = fs::read_to_string(root().join("codec/src/requirements.rs")).unwrap();
    assert_eq!(
        with_generated_ids(&source, &ids),
        source,
        "the generated list's layout"
    );
}

/// The document version, from the `| Document version | X |` row of spec/README.md.
fn document_version() -> String {
    let readme = fs::read_to_string(root().join("spec/README.md")).unwrap();
    readme
        .lines()
        .find_map(|l| l.strip_prefix("| Document version | "))
        .and_then(|rest| rest.strip_suffix(" |"))
        .expect("spec/README.md has a `| Document version | X |` row")
        .to_string()
}

/// Every requirement has one strength: its key words are all absolute (MUST, MUST NOT, SHALL,
/// SHALL NOT, REQUIRED), all recommendations (SHOULD, SHOULD NOT, RECOMMENDED, NOT
/// RECOMMENDED) or all permissions (MAY, OPTIONAL), so that a case fails or warns on it as one.
#[test]
fn every_requirement_has_one_strength() {
    let strength = |kw: &str| match kw {
        "MUST" | "MUST NOT" | "SHALL" | "SHALL NOT" | "REQUIRED" => 0,
        "SHOULD" | "SHOULD NOT" | "RECOMMENDED" | "NOT RECOMMENDED" => 1,
        _ => 2,
    };
    for r in requirements_json()["requirements"].as_array().unwrap() {
        let text = r["text"].as_str().unwrap();
        let mut found = BTreeSet::new();
        let mut rest = text;
        while let Some(kw) = first_keyword(rest) {
            found.insert(strength(kw));
            let at = rest
                .match_indices(kw)
                .map(|(i, _)| i)
                .find(|&i| is_word_at(rest, i, kw))
                .unwrap();
            rest = &rest[at + kw.len()..];
        }
        assert_eq!(
            found.len(),
            1,
            "{}: key words of several strengths",
            r["id"]
        );
    }
}

#[test]
fn roles_follow_the_subject_of_the_requirement() {
    let roles: BTreeMap<String, String> = requirements_json()["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (id, role) in [
        ("TRANS-1", "host"),
        ("TRANS-12", "host"),
        ("TRANS-9", "plugin"),
        ("FRAME-3", "both"),
        ("STREAM-2", "both"),
        ("STREAM-6", "both"),
        ("GOB-3", "both"),
        ("RPC-14", "plugin"),
        ("LIFE-1", "host"),
        ("LIFE-11", "host"),
        ("LIFE-21", "plugin"),
        ("DRV-4", "driver"),
    ] {
        assert_eq!(roles[id], role, "{id}");
    }
    assert_eq!(
        role_of("X-1", "A receiver's limit MUST be at most 1."),
        "both"
    );
    assert_eq!(
        role_of("X-1", "While the plugin is Running, the host MUST wait."),
        "host"
    );
    assert_eq!(role_of("X-1", "Values MUST be encoded so."), "both");
}

#[test]
fn every_chapter_names_the_document_version() {
    let version = document_version();
    let expected = format!(
        "Part of the [rpcplugin wire protocol 1 specification](README.md), document version \
         {version}."
    );
    let appendices = fs::read_dir(root().join("spec"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("A-"));
    for ch in chapters().into_iter().chain(appendices) {
        let text = fs::read_to_string(&ch).unwrap();
        let line = text.lines().nth(2).unwrap_or("");
        assert_eq!(line, expected, "{}: its third line", ch.display());
    }
}

fn collect_ids(text: &str, out: &mut BTreeSet<String>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_uppercase() && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_uppercase() {
                i += 1;
            }
            if i + 1 < bytes.len() && bytes[i] == b'-' && bytes[i + 1].is_ascii_digit() {
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                out.insert(text[start..i].to_string());
            }
        } else {
            i += 1;
        }
    }
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().to_string();
        if p.is_dir() {
            if name != "target" && !name.starts_with('.') && name != "corpus" && name != "artifacts"
            {
                walk(&p, files);
            }
        } else {
            files.push(p);
        }
    }
}

fn json_requirements(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "requirements" {
                    for id in v.as_array().into_iter().flatten() {
                        out.insert(id.as_str().unwrap_or_default().to_string());
                    }
                } else {
                    json_requirements(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| json_requirements(i, out)),
        _ => {}
    }
}

/// Every citation in the workspace: `covers:` lines in Rust sources and `requirements` lists in
/// the vectors, with where they were found.
fn citations() -> BTreeMap<String, Vec<String>> {
    let mut files = Vec::new();
    // Citations: `// covers: ID` comments in tests, the requirement lists of conformance cases
    // (string literals in conformance/src/cases), and the vectors' `requirements` lists.
    for dir in [
        "codec",
        "runtime",
        "reference-host",
        "reference-plugin",
        "conformance",
        "fuzz",
        "spec/vectors",
    ] {
        walk(&root().join(dir), &mut files);
    }
    let mut cited: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in files {
        let rel = f.strip_prefix(root()).unwrap().display().to_string();
        let ext = f.extension().and_then(|e| e.to_str()).unwrap_or_default();
        let mut ids = BTreeSet::new();
        if ext == "rs" && rel.starts_with("conformance/src/cases/") {
            // A conformance case cites its requirements as string literals (`requirements:
            // &["HS-1", ...]`); every quoted id in the catalog counts.
            for piece in fs::read_to_string(&f)
                .unwrap_or_default()
                .split('"')
                .skip(1)
                .step_by(2)
            {
                if piece.len() < 12 && !piece.contains(' ') {
                    collect_ids(piece, &mut ids);
                }
            }
        } else if ext == "rs" {
            for line in fs::read_to_string(&f).unwrap_or_default().lines() {
                if let Some((_, rest)) = line.split_once("covers:") {
                    collect_ids(rest, &mut ids);
                }
            }
        } else if ext == "json" && rel.starts_with("spec/vectors") {
            let v: Value = serde_json::from_str(&fs::read_to_string(&f).unwrap())
                .unwrap_or_else(|e| panic!("{rel} is not valid JSON: {e}"));
            json_requirements(&v, &mut ids);
        }
        for id in ids {
            cited.entry(id).or_default().push(rel.clone());
        }
    }
    cited
}

#[test]
fn every_requirement_is_cited_and_every_citation_exists() {
    let defined: BTreeSet<String> = requirements_json()["requirements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    let cited = citations();
    let unknown: Vec<String> = cited
        .iter()
        .filter(|(id, _)| !defined.contains(*id))
        .map(|(id, at)| format!("{id} (cited in {})", at.join(", ")))
        .collect();
    assert!(
        unknown.is_empty(),
        "cited ids that the spec does not define:\n{}",
        unknown.join("\n")
    );

    let awaiting: BTreeMap<&str, &str> = AWAITING_HARNESS.iter().copied().collect();
    for id in awaiting.keys() {
        assert!(
            defined.contains(*id),
            "{id} in AWAITING_HARNESS is not a requirement"
        );
        assert!(
            !cited.contains_key(*id),
            "{id} is now cited ({}): remove it from AWAITING_HARNESS",
            cited[*id].join(", ")
        );
    }
    let uncited: Vec<&String> = defined
        .iter()
        .filter(|id| !cited.contains_key(*id) && !awaiting.contains_key(id.as_str()))
        .collect();
    assert!(
        uncited.is_empty(),
        "requirements no test or vector cites: {uncited:?}"
    );
    println!(
        "{} requirements: {} cited by codec tests or vectors, {} awaiting the conformance harness:",
        defined.len(),
        defined.len() - awaiting.len(),
        awaiting.len()
    );
    for (id, why) in &awaiting {
        println!("  {id}: {why}");
    }
}

#[test]
fn the_checker_finds_keywords_and_ids() {
    assert_eq!(
        first_keyword("A sender MUST NOT do it; it MAY"),
        Some("MUST NOT")
    );
    assert_eq!(first_keyword("it SHOULD, and MUST"), Some("SHOULD"));
    assert_eq!(first_keyword("MUSTARD is not a keyword"), None);
    let mut ids = BTreeSet::new();
    collect_ids("FRAME-4, STREAM-12 and HS-1; not X- or -3", &mut ids);
    assert_eq!(
        ids.into_iter().collect::<Vec<_>>(),
        ["FRAME-4", "HS-1", "STREAM-12"]
    );
}
