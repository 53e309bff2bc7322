//! Sets IDPLAN_COMMIT (the git commit built, `unknown` outside a git checkout: a crates.io
//! package) and IDPLAN_TARGET (the target triple) for `idplan --version`.
//!
//! Kept cheap: two `git rev-parse` calls, and cargo reruns it only when HEAD or the branch it
//! points to moves (not on every source change). `IDPLAN_COMMIT` in the environment wins: the
//! Dockerfile's build has no `.git` and is handed the commit by the release workflow.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=IDPLAN_COMMIT");
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=IDPLAN_TARGET={target}");

    let commit = match std::env::var("IDPLAN_COMMIT") {
        Ok(commit) if !commit.trim().is_empty() => short(commit.trim()),
        _ => git_commit().unwrap_or_else(|| {
            // No checkout: watch the absent .git, which makes cargo rerun this (cheap) script
            // on each build of the package. Otherwise `cargo package`'s verification build,
            // which shares the checkout's target dir and build-script hash, would leave its
            // `unknown` for the checkout's next builds.
            if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
                println!(
                    "cargo:rerun-if-changed={}",
                    Path::new(&dir).join(".git").display()
                );
            }
            "unknown".into()
        }),
    };
    println!("cargo:rustc-env=IDPLAN_COMMIT={commit}");
}

fn short(commit: &str) -> String {
    commit.chars().take(12).collect()
}

/// The HEAD commit of the git checkout whose top level is this package's directory, and the
/// files cargo should watch for it. None for a package unpacked anywhere else (crates.io's
/// registry cache may sit inside someone's git-managed home directory: that repository's HEAD
/// is not idplan's commit).
fn git_commit() -> Option<String> {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let top = git(&manifest_dir, &["rev-parse", "--show-toplevel"])?;
    if !same_dir(Path::new(&top), &manifest_dir) {
        return None;
    }
    let commit = git(&manifest_dir, &["rev-parse", "--short=12", "HEAD"])?;

    // HEAD names the branch; the branch's ref file (or packed-refs) moves on each commit.
    watch(&manifest_dir, "HEAD");
    if let Some(branch) = git(&manifest_dir, &["symbolic-ref", "-q", "HEAD"]) {
        let loose = git(&manifest_dir, &["rev-parse", "--git-path", &branch]).map(PathBuf::from);
        match loose {
            Some(path) if manifest_dir.join(&path).exists() => {
                println!(
                    "cargo:rerun-if-changed={}",
                    manifest_dir.join(&path).display()
                )
            }
            // A branch only in packed-refs gets a loose file on its next commit: watch the
            // directory it will appear in.
            Some(path) => {
                if let Some(parent) = manifest_dir.join(&path).parent() {
                    println!("cargo:rerun-if-changed={}", parent.display());
                }
            }
            None => {}
        }
        watch(&manifest_dir, "packed-refs");
    }
    Some(commit)
}

fn watch(dir: &Path, git_file: &str) {
    if let Some(path) = git(dir, &["rev-parse", "--git-path", git_file]) {
        let path = dir.join(path);
        // A missing path would make cargo rerun this script on every build.
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
