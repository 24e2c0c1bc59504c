//! Finding the workspace and cargo, and running commands so the transcript shows what ran.

use anyhow::{Context, Result, bail};
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The workspace root: the parent of xtask's manifest dir.
///
/// `cargo run` sets `CARGO_MANIFEST_DIR` at run time, which stays right when a clone moves but
/// reuses a shared `CARGO_TARGET_DIR`; the compile-time value is the fallback.
pub fn workspace_root() -> Result<PathBuf> {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let root = manifest_dir.parent().with_context(|| {
        format!(
            "xtask manifest dir {} has no parent",
            manifest_dir.display()
        )
    })?;
    if !root.join("Cargo.toml").is_file() {
        bail!(
            "no Cargo.toml in {}, expected the workspace root",
            root.display()
        );
    }
    Ok(root.to_path_buf())
}

/// The cargo that started us (`$CARGO`), or `cargo` from `PATH`.
pub fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"))
}

/// Where cargo puts build output: `$CARGO_TARGET_DIR` (relative to the root if relative), or
/// `<root>/target`.
pub fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// A command line as a user could paste it into a shell.
pub fn display(program: impl AsRef<OsStr>, args: &[impl AsRef<OsStr>]) -> String {
    let program = program.as_ref();
    // `$CARGO` is a full toolchain path; the transcript reads better as plain `cargo`.
    let program = match Path::new(program).file_stem() {
        Some(stem) if stem == "cargo" => OsStr::new("cargo"),
        _ => program,
    };
    std::iter::once(program)
        .chain(args.iter().map(AsRef::as_ref))
        .map(|word| quote(&word.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| !c.is_ascii() || c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Runs `program args` in `dir` with inherited stdio and environment; fails on a non-zero exit.
pub fn run(dir: &Path, program: impl AsRef<OsStr>, args: &[impl AsRef<OsStr>]) -> Result<()> {
    run_env(dir, program, args, &[])
}

/// Like [`run`], with extra environment variables for the child.
pub fn run_env(
    dir: &Path,
    program: impl AsRef<OsStr>,
    args: &[impl AsRef<OsStr>],
    env: &[(&str, &OsStr)],
) -> Result<()> {
    let program = program.as_ref();
    let shown = display(program, args);
    let status = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .status()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Runs a command with `input` on its stdin; stdout and stderr are inherited.
pub fn run_with_stdin(
    dir: &Path,
    program: impl AsRef<OsStr>,
    args: &[impl AsRef<OsStr>],
    input: &str,
) -> Result<()> {
    let program = program.as_ref();
    let shown = display(program, args);
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start `{shown}`"))?;
    {
        let mut stdin = child.stdin.take().context("child stdin was not captured")?;
        stdin
            .write_all(input.as_bytes())
            .with_context(|| format!("could not write stdin of `{shown}`"))?;
        // Dropping stdin closes it, so the child sees end of input.
    }
    let status = child
        .wait()
        .with_context(|| format!("could not wait for `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Runs a command quietly and reports whether it succeeded; `None` if it could not start.
pub fn probe(dir: &Path, program: impl AsRef<OsStr>, args: &[&str]) -> Option<bool> {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()
        .map(|status| status.success())
}

/// Runs a command quietly and returns its stdout, failing on a non-zero exit.
pub fn capture(dir: &Path, program: impl AsRef<OsStr>, args: &[&str]) -> Result<String> {
    let program = program.as_ref();
    let shown = display(program, args);
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !output.status.success() {
        bail!("`{shown}` failed ({})", output.status);
    }
    String::from_utf8(output.stdout).with_context(|| format!("`{shown}` printed non-UTF-8"))
}

/// A timer for one step of a longer job.
#[derive(Debug)]
pub struct Stopwatch(Instant);

impl Stopwatch {
    pub fn start() -> Self {
        Stopwatch(Instant::now())
    }

    pub fn seconds(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_quotes_only_what_a_shell_would_split() {
        assert_eq!(
            display(
                "/x/toolchains/stable/bin/cargo",
                &["fmt", "--all", "--", "--check"]
            ),
            "cargo fmt --all -- --check"
        );
        assert_eq!(
            display("fieldlog", &["init", "--device-name", "演示设备"]),
            "fieldlog init --device-name 演示设备"
        );
        assert_eq!(
            display("echo", &["a b", "it's", ""]),
            r"echo 'a b' 'it'\''s' ''"
        );
    }
}
