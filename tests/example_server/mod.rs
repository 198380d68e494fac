//! The example server binary for tests that run it as a process
//! (`tests/acceptance.rs`, `tests/sasl2_interop.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The example binary, built (or brought up to date) once per test run.
pub fn server_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        // target/<profile>/deps/<test>-<hash>
        let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
        let bin = profile_dir
            .join("examples")
            .join(format!("server{}", std::env::consts::EXE_SUFFIX));
        let mut cargo = Command::new(env!("CARGO"));
        cargo.current_dir(env!("CARGO_MANIFEST_DIR")).args([
            "build",
            "--quiet",
            "--example",
            "server",
        ]);
        match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => {}
            Some("release") => {
                cargo.arg("--release");
            }
            Some(other) => {
                cargo.args(["--profile", other]);
            }
        }
        if let Some(target_dir) = profile_dir.parent() {
            cargo.env("CARGO_TARGET_DIR", target_dir);
        }
        // Cargo sets these for the test process; build scripts that watch
        // them (ring's does) would otherwise see a change and rebuild.
        for (key, _) in std::env::vars_os() {
            let Some(key) = key.to_str() else { continue };
            if key.starts_with("CARGO_PKG_")
                || key.starts_with("CARGO_MANIFEST_")
                || [
                    "CARGO_CRATE_NAME",
                    "CARGO_BIN_NAME",
                    "CARGO_PRIMARY_PACKAGE",
                    "CARGO_TARGET_TMPDIR",
                    "CARGO_RUSTC_CURRENT_DIR",
                    "OUT_DIR",
                ]
                .contains(&key)
            {
                cargo.env_remove(key);
            }
        }
        let built = cargo.status().is_ok_and(|s| s.success());
        assert!(
            built || bin.exists(),
            "`cargo build --example server` failed and {} does not exist",
            bin.display()
        );
        if !built {
            eprintln!(
                "warning: could not rebuild the example; using {}",
                bin.display()
            );
        }
        bin
    })
}
