//! Writes the CRDs generated from `src/api` into `crds/`, or with `--check`
//! fails when the committed files differ from what the code generates.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use iam_operator::crds::generated_crds;

fn main() -> ExitCode {
    let mut check = false;
    let mut dir = PathBuf::from("crds");
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--check" => check = true,
            "-h" | "--help" => {
                println!("usage: crdgen [--check] [DIR (default: crds)]");
                return ExitCode::SUCCESS;
            }
            other => dir = PathBuf::from(other),
        }
    }
    match run(&dir, check) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("crdgen: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(dir: &Path, check: bool) -> Result<(), String> {
    let mut stale = Vec::new();
    for (file_name, yaml) in generated_crds().map_err(|e| e.to_string())? {
        let path = dir.join(file_name);
        if check {
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            if committed != yaml {
                stale.push(path.display().to_string());
            }
        } else {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            std::fs::write(&path, yaml).map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    if stale.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "stale CRDs, regenerate with `cargo run --bin crdgen`: {}",
            stale.join(", ")
        ))
    }
}
