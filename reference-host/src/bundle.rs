//! Plugin bundles: a directory holding the plugin's executable and its manifest, `plugin.json`
//! (`spec/06-lifecycle.md`, section 6.2, LIFE-1 to LIFE-3).
//!
//! ```json
//! { "id": "com.example.hello", "backend": { "executable": "bin/hello-plugin" } }
//! ```
//!
//! The manifest is parsed into a [`serde_json::Value`] first and checked member by member, so
//! that every error names the member that is wrong (`backend.executable`), says what was
//! expected and what was found. Members that protocol 1 does not use are ignored.

use std::fmt;
use std::io;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

/// The name of the manifest file in a bundle directory (LIFE-1).
pub const MANIFEST_FILE: &str = "plugin.json";

/// The members of `plugin.json` that protocol 1 uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// The plugin's name, used in logs and events; never empty.
    pub id: String,
    /// The `backend` object.
    pub backend: Backend,
}

/// The `backend` member of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Backend {
    /// The executable to launch, relative to the bundle directory: never empty, never absolute,
    /// never with a `..` component (LIFE-3).
    pub executable: String,
}

/// What is wrong with a manifest's text. `Display` names the member (`backend.executable`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// The text is not JSON.
    #[error("not valid JSON: {message}")]
    Syntax {
        /// serde_json's description, with the line and column.
        message: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
    },
    /// The text is JSON, but not an object (LIFE-2).
    #[error("the manifest must be a JSON object, found {found}")]
    NotAnObject {
        /// What it is instead ("an array", ...).
        found: &'static str,
    },
    /// A required member is absent.
    #[error("member `{field}` is missing: {hint}")]
    Missing {
        /// The member's path (`id`, `backend`, `backend.executable`).
        field: &'static str,
        /// What it should hold.
        hint: &'static str,
    },
    /// A member has the wrong JSON type.
    #[error("member `{field}` must be {expected}, found {found}")]
    WrongType {
        /// The member's path.
        field: &'static str,
        /// "a string" or "an object".
        expected: &'static str,
        /// What it is instead.
        found: &'static str,
    },
    /// A string member is empty.
    #[error("member `{field}` must not be empty")]
    Empty {
        /// The member's path.
        field: &'static str,
    },
    /// `backend.executable` is an absolute path (LIFE-3).
    #[error(
        "member `backend.executable` must be a path relative to the bundle directory, \
         found the absolute path {path:?}"
    )]
    AbsoluteExecutable {
        /// The value.
        path: String,
    },
    /// `backend.executable` has a `..` component (LIFE-3).
    #[error(
        "member `backend.executable` must not contain a `..` component, found {path:?}: \
         the executable has to lie inside the bundle directory"
    )]
    EscapingExecutable {
        /// The value.
        path: String,
    },
}

/// Why a bundle could not be read. `Display` starts with the path concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The bundle directory does not exist, or is not a directory.
    #[error("{}: not a directory (a plugin bundle is a directory holding {MANIFEST_FILE})", dir.display())]
    NotADirectory {
        /// The bundle directory.
        dir: PathBuf,
    },
    /// The directory has no `plugin.json` (LIFE-2).
    #[error("{}: not found (every plugin bundle needs a manifest)", path.display())]
    NoManifest {
        /// The manifest's path.
        path: PathBuf,
    },
    /// `plugin.json` exists but cannot be read.
    #[error("{}: cannot be read: {source}", path.display())]
    Read {
        /// The manifest's path.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// `plugin.json` is malformed (LIFE-2, LIFE-3).
    #[error("{}: {error}", path.display())]
    Manifest {
        /// The manifest's path.
        path: PathBuf,
        /// What is wrong with it.
        error: ManifestError,
    },
}

impl BundleError {
    /// The manifest error, when the manifest was read but is malformed.
    pub fn manifest_error(&self) -> Option<&ManifestError> {
        match self {
            BundleError::Manifest { error, .. } => Some(error),
            _ => None,
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn string_member(
    obj: &serde_json::Map<String, Value>,
    name: &str,
    field: &'static str,
    hint: &'static str,
) -> Result<String, ManifestError> {
    match obj.get(name) {
        None => Err(ManifestError::Missing { field, hint }),
        Some(Value::String(s)) if s.is_empty() => Err(ManifestError::Empty { field }),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(ManifestError::WrongType {
            field,
            expected: "a string",
            found: kind(other),
        }),
    }
}

impl Manifest {
    /// Parses and checks a manifest's text (LIFE-2, LIFE-3). Unknown members are ignored.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let value: Value = serde_json::from_str(text).map_err(|e| ManifestError::Syntax {
            message: e.to_string(),
            line: e.line(),
            column: e.column(),
        })?;
        let Value::Object(obj) = &value else {
            return Err(ManifestError::NotAnObject {
                found: kind(&value),
            });
        };
        let id = string_member(obj, "id", "id", "the plugin's name, a non-empty string")?;
        let backend = match obj.get("backend") {
            None => {
                return Err(ManifestError::Missing {
                    field: "backend",
                    hint: r#"an object such as {"executable": "bin/my-plugin"}"#,
                })
            }
            Some(Value::Object(b)) => b,
            Some(other) => {
                return Err(ManifestError::WrongType {
                    field: "backend",
                    expected: "an object",
                    found: kind(other),
                })
            }
        };
        let executable = string_member(
            backend,
            "executable",
            "backend.executable",
            "the plugin executable's path, relative to the bundle directory",
        )?;
        let path = Path::new(&executable);
        if path.is_absolute() || path.has_root() {
            return Err(ManifestError::AbsoluteExecutable { path: executable });
        }
        if path.components().any(|c| c == Component::ParentDir) {
            return Err(ManifestError::EscapingExecutable { path: executable });
        }
        Ok(Manifest {
            id,
            backend: Backend { executable },
        })
    }
}

/// A plugin bundle: its directory and its checked manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    dir: PathBuf,
    manifest: Manifest,
}

impl Bundle {
    /// Reads `<dir>/plugin.json` and checks it (LIFE-1 to LIFE-3). Nothing is launched, and
    /// the executable is not looked at yet (launching reports a missing one).
    pub fn load(dir: impl AsRef<Path>) -> Result<Bundle, BundleError> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(BundleError::NotADirectory {
                dir: dir.to_path_buf(),
            });
        }
        let path = dir.join(MANIFEST_FILE);
        let text = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(BundleError::NoManifest { path })
            }
            Err(source) => return Err(BundleError::Read { path, source }),
        };
        let text = match String::from_utf8(text) {
            Ok(text) => text,
            Err(e) => {
                return Err(BundleError::Manifest {
                    path,
                    error: ManifestError::Syntax {
                        message: format!(
                            "the file is not UTF-8 (invalid byte at offset {})",
                            e.utf8_error().valid_up_to()
                        ),
                        line: 0,
                        column: 0,
                    },
                })
            }
        };
        let manifest =
            Manifest::parse(&text).map_err(|error| BundleError::Manifest { path, error })?;
        Ok(Bundle {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    /// A bundle made of a directory and a manifest that were checked elsewhere.
    pub fn new(dir: impl Into<PathBuf>, manifest: Manifest) -> Bundle {
        Bundle {
            dir: dir.into(),
            manifest,
        }
    }

    /// The bundle directory, as given to [`Bundle::load`].
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The plugin's id (`id` of the manifest).
    pub fn id(&self) -> &str {
        &self.manifest.id
    }

    /// The executable to launch: `backend.executable` resolved against the bundle directory
    /// (LIFE-1).
    pub fn executable_path(&self) -> PathBuf {
        self.dir.join(&self.manifest.backend.executable)
    }
}

impl fmt::Display for Bundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "plugin {} ({})", self.manifest.id, self.dir.display())
    }
}
