//! The bundles that the broken drivers launch although the reference host refuses them
//! (LIFE-2, LIFE-3): for [`Mutant::GuessesExecutable`], a directory without a usable manifest
//! launches its first executable file; for [`Mutant::EscapesBundle`], an executable path that
//! leaves the bundle directory is launched as it is.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rpcplugin_reference_host::bundle::{Backend, Bundle, BundleError, Manifest, ManifestError};

use crate::Mutant;

/// The bundle that the broken host `mutant` launches from `dir` although [`Bundle::load`]
/// refused it with `error`, if it launches one. Its id is the directory's name.
pub fn lenient_bundle(mutant: Mutant, dir: &Path, error: &BundleError) -> Option<Bundle> {
    let escaping = match error.manifest_error() {
        Some(
            ManifestError::AbsoluteExecutable { path } | ManifestError::EscapingExecutable { path },
        ) => Some(path.clone()),
        _ => None,
    };
    let executable = match (mutant, error, escaping) {
        (Mutant::EscapesBundle, _, Some(path)) => path,
        (Mutant::GuessesExecutable, BundleError::NoManifest { .. }, _)
        | (Mutant::GuessesExecutable, BundleError::Manifest { .. }, None) => first_executable(dir)?,
        _ => return None,
    };
    let id = dir.file_name().map_or_else(
        || "plugin".to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Some(Bundle::new(
        dir,
        Manifest {
            id,
            backend: Backend { executable },
        },
    ))
}

/// The name of the first regular file with an execute permission bit in `dir`, by name.
fn first_executable(dir: &Path) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| {
            std::fs::metadata(e.path())
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names.into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_two_mutants_launch_refused_bundles() {
        let dir = std::env::temp_dir().join(format!("host-mutants-bundle-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b-not-executable"), "").unwrap();
        std::fs::write(dir.join("c-plugin"), "#!/bin/sh\n").unwrap();
        std::fs::write(dir.join("d-plugin"), "#!/bin/sh\n").unwrap();
        for name in ["c-plugin", "d-plugin"] {
            std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o755))
                .unwrap();
        }
        let missing = Bundle::load(&dir).unwrap_err();
        let guessed = lenient_bundle(Mutant::GuessesExecutable, &dir, &missing).unwrap();
        assert_eq!(guessed.manifest().backend.executable, "c-plugin");
        assert_eq!(guessed.dir(), dir);
        assert!(lenient_bundle(Mutant::EscapesBundle, &dir, &missing).is_none());
        assert!(lenient_bundle(Mutant::NeverRestarts, &dir, &missing).is_none());

        std::fs::write(
            dir.join("plugin.json"),
            r#"{"id": "x", "backend": {"executable": "/bin/true"}}"#,
        )
        .unwrap();
        let absolute = Bundle::load(&dir).unwrap_err();
        let escaped = lenient_bundle(Mutant::EscapesBundle, &dir, &absolute).unwrap();
        assert_eq!(escaped.manifest().backend.executable, "/bin/true");
        assert!(lenient_bundle(Mutant::GuessesExecutable, &dir, &absolute).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
