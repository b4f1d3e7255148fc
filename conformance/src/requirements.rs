//! The requirements of `spec/requirements.json`, embedded at compile time.

use std::sync::OnceLock;

use serde::Deserialize;

/// The text of `spec/requirements.json`.
pub const REQUIREMENTS_JSON: &str = include_str!("../../spec/requirements.json");

/// One requirement of the specification.
#[derive(Debug, Clone, Deserialize)]
pub struct Requirement {
    /// Its id, such as `HS-1`.
    pub id: String,
    /// Its level: the first BCP 14 key word (`MUST`, `SHOULD`, ...).
    pub level: String,
    /// Whom it binds: `host`, `plugin`, `both` or `driver` (spec README, section 3).
    pub role: String,
    /// The number of its section (`1.4`, `5.4.2`).
    pub section: String,
    /// The stem of the chapter's file name.
    pub chapter: String,
    /// The requirement paragraph's text.
    pub text: String,
}

#[derive(Deserialize)]
struct File {
    spec_version: String,
    requirements: Vec<Requirement>,
}

fn file() -> &'static File {
    static FILE: OnceLock<File> = OnceLock::new();
    FILE.get_or_init(|| {
        serde_json::from_str(REQUIREMENTS_JSON).expect("spec/requirements.json is valid")
    })
}

/// The version of the specification the requirements come from (`spec_version` of
/// `spec/requirements.json`, the document version of `spec/README.md`).
pub fn spec_version() -> &'static str {
    &file().spec_version
}

/// Every requirement, in the order of `spec/requirements.json`.
pub fn all() -> &'static [Requirement] {
    &file().requirements
}

/// The requirement with id `id`, if the specification has one.
pub fn lookup(id: &str) -> Option<&'static Requirement> {
    all().iter().find(|r| r.id == id)
}

/// The text of requirement `id`, or a placeholder saying the id is unknown.
pub fn text(id: &str) -> &'static str {
    lookup(id).map_or("(unknown requirement id)", |r| r.text.as_str())
}
