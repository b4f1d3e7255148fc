//! Plugin bundles (`spec/06-lifecycle.md`, section 6.2): what a manifest must hold, and that
//! every malformed manifest is refused with an error that names the member at fault.

use std::path::{Path, PathBuf};

use rpcplugin_reference_host::bundle::{Bundle, BundleError, Manifest, ManifestError};

/// A scratch directory, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("bundle-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn with_manifest(name: &str, text: &str) -> Dir {
        let dir = Dir::new(name);
        std::fs::write(dir.0.join("plugin.json"), text).unwrap();
        dir
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// The manifest of section 6.2, with members protocol 1 does not know: they are ignored, and the
// executable resolves against the bundle directory.
// covers: LIFE-1
#[test]
fn a_manifest_names_the_executable_relative_to_the_bundle() {
    let dir = Dir::with_manifest(
        "good",
        r#"{
            "id": "com.example.hello",
            "name": "Hello",
            "version": "1.2.3",
            "backend": {"executable": "bin/hello-plugin", "extra": [1, 2]},
            "webapp": {"bundle_path": "x.js"}
        }"#,
    );
    let bundle = Bundle::load(&dir.0).unwrap();
    assert_eq!(bundle.id(), "com.example.hello");
    assert_eq!(bundle.manifest().backend.executable, "bin/hello-plugin");
    assert_eq!(bundle.executable_path(), dir.0.join("bin/hello-plugin"));
    assert_eq!(bundle.dir(), dir.0.as_path());
    // `./` is a harmless relative path.
    let m = Manifest::parse(r#"{"id": "x", "backend": {"executable": "./plugin"}}"#).unwrap();
    assert_eq!(m.backend.executable, "./plugin");
}

// covers: LIFE-2
#[test]
fn a_bundle_without_a_manifest_is_refused() {
    let dir = Dir::new("no-manifest");
    let err = Bundle::load(&dir.0).unwrap_err();
    assert!(matches!(err, BundleError::NoManifest { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: not found (every plugin bundle needs a manifest)",
            dir.0.join("plugin.json").display()
        )
    );
    let missing = dir.0.join("nothing-here");
    let err = Bundle::load(&missing).unwrap_err();
    assert!(matches!(err, BundleError::NotADirectory { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&missing.display().to_string()));
}

// Each malformed manifest is refused with an error that starts with the manifest's path and
// names the member at fault.
// covers: LIFE-2, LIFE-3
#[test]
fn every_malformed_manifest_names_its_field() {
    let cases: &[(&str, &str)] = &[
        (
            "{",
            "not valid JSON: EOF while parsing an object at line 1 column 1",
        ),
        (
            "{\"id\": \"x\",\n \"backend\": }",
            "not valid JSON: expected value at line 2 column 13",
        ),
        (
            "[1, 2]",
            "the manifest must be a JSON object, found an array",
        ),
        (
            "\"plugin\"",
            "the manifest must be a JSON object, found a string",
        ),
        (
            r#"{"backend": {"executable": "p"}}"#,
            "member `id` is missing: the plugin's name, a non-empty string",
        ),
        (
            r#"{"id": 7, "backend": {"executable": "p"}}"#,
            "member `id` must be a string, found a number",
        ),
        (
            r#"{"id": "", "backend": {"executable": "p"}}"#,
            "member `id` must not be empty",
        ),
        (
            r#"{"id": "x"}"#,
            r#"member `backend` is missing: an object such as {"executable": "bin/my-plugin"}"#,
        ),
        (
            r#"{"id": "x", "backend": "p"}"#,
            "member `backend` must be an object, found a string",
        ),
        (
            r#"{"id": "x", "backend": null}"#,
            "member `backend` must be an object, found null",
        ),
        (
            r#"{"id": "x", "backend": {}}"#,
            "member `backend.executable` is missing: the plugin executable's path, relative to \
             the bundle directory",
        ),
        (
            r#"{"id": "x", "backend": {"executable": ""}}"#,
            "member `backend.executable` must not be empty",
        ),
        (
            r#"{"id": "x", "backend": {"executable": ["p"]}}"#,
            "member `backend.executable` must be a string, found an array",
        ),
        (
            r#"{"id": "x", "backend": {"executable": "/usr/bin/env"}}"#,
            "member `backend.executable` must be a path relative to the bundle directory, found \
             the absolute path \"/usr/bin/env\"",
        ),
        (
            r#"{"id": "x", "backend": {"executable": "../other/plugin"}}"#,
            "member `backend.executable` must not contain a `..` component, found \
             \"../other/plugin\": the executable has to lie inside the bundle directory",
        ),
        (
            r#"{"id": "x", "backend": {"executable": "bin/../../plugin"}}"#,
            "member `backend.executable` must not contain a `..` component, found \
             \"bin/../../plugin\": the executable has to lie inside the bundle directory",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let dir = Dir::with_manifest(&format!("bad-{i}"), text);
        let err = Bundle::load(&dir.0).unwrap_err();
        let path = dir.0.join("plugin.json");
        assert_eq!(
            err.to_string(),
            format!("{}: {want}", path.display()),
            "manifest {text}"
        );
        assert!(err.manifest_error().is_some(), "{err:?}");
    }
}

// covers: LIFE-2
#[test]
fn syntax_errors_carry_line_and_column() {
    let err = Manifest::parse("{\n  \"id\": \"x\",\n  oops\n}").unwrap_err();
    match err {
        ManifestError::Syntax { line, column, .. } => assert_eq!((line, column), (3, 3)),
        other => panic!("{other:?}"),
    }
    let dir = Dir::with_manifest("not-utf8", "");
    std::fs::write(dir.0.join("plugin.json"), b"{\"id\": \"\xff\"}").unwrap();
    let err = Bundle::load(&dir.0).unwrap_err();
    assert!(err.to_string().contains("not UTF-8"), "{err}");
}
