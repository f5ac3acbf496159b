//! `gatehouse diff`: the security diff of two configs, each a file, stdin or
//! `git:REV:PATH` (with the files it includes read from that revision).

use super::check::print_rejected;
use anyhow::{Context, bail};
use clap::ValueEnum;
use gatehouse::config;
use gatehouse::load;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum InputFormat {
    Toml,
    Yaml,
}

impl From<InputFormat> for config::Format {
    fn from(f: InputFormat) -> Self {
        match f {
            InputFormat::Toml => Self::Toml,
            InputFormat::Yaml => Self::Yaml,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum FailOn {
    /// Any change that lets more through, or replaces a credential.
    Widens,
    /// Any credential replaced (a password hash, a client secret, a key).
    #[value(name = "credential_replaced")]
    CredentialReplaced,
}

/// Prints every security-relevant change from `old` to `new`; a failure when one is of
/// the `fail_on` kind.
pub(crate) fn diff(
    old: &str,
    new: &str,
    format: Option<config::Format>,
    fail_on: Option<FailOn>,
    referenced: load::Referenced,
) -> anyhow::Result<ExitCode> {
    use gatehouse::load::diff::{self, Side};
    let (before, after) = (
        load_input(old, format, referenced)?,
        load_input(new, format, referenced)?,
    );
    let (Some(before), Some(after)) = (before, after) else {
        return Ok(ExitCode::FAILURE);
    };
    let changes = diff::diff(&Side::from(&before.config), &Side::from(&after.config));
    for change in &changes {
        println!("{change}");
    }
    println!("{}", diff::summary(&changes));
    Ok(match fail_on {
        Some(FailOn::Widens) if diff::any_widens(&changes) => ExitCode::FAILURE,
        Some(FailOn::CredentialReplaced) if diff::any_credential_replaced(&changes) => {
            ExitCode::FAILURE
        }
        _ => ExitCode::SUCCESS,
    })
}

/// Loads one side of a diff: a file, `-` (stdin) or `git:REV:PATH`. A rejected config
/// has its diagnostics printed and gives `None`.
fn load_input(
    input: &str,
    format: Option<config::Format>,
    referenced: load::Referenced,
) -> anyhow::Result<Option<load::Loaded>> {
    let name = PathBuf::from(input);
    let result = if input == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading the config from stdin")?;
        let format = format.context("the format of stdin is unknown: pass --format toml|yaml")?;
        load::check_source(
            &name,
            Path::new("."),
            format,
            &text,
            &config::FileSystem,
            referenced,
        )
    } else if let Some(spec) = input.strip_prefix("git:") {
        let (rev, path) = spec
            .split_once(':')
            .with_context(|| format!("{input:?} is not git:REV:PATH"))?;
        // `--end-of-options`: a REV such as `--output=FILE` is a revision, never an option.
        let out = std::process::Command::new("git")
            .args(["show", "--end-of-options"])
            .arg(format!("{rev}:{path}"))
            .output()
            .context("running git show")?;
        if !out.status.success() {
            bail!(
                "git show {rev}:{path} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let text =
            String::from_utf8(out.stdout).with_context(|| format!("{input} is not UTF-8"))?;
        let path = Path::new(path);
        let format = format
            .or_else(|| config::Format::of_path(path))
            .with_context(|| {
                format!("the format of {input} is unknown: pass --format toml|yaml")
            })?;
        let base_dir = path.parent().unwrap_or(Path::new("."));
        load::check_source(
            &name,
            base_dir,
            format,
            &text,
            &GitRevision { rev },
            referenced,
        )
    } else {
        match format {
            Some(format) => {
                let text =
                    std::fs::read_to_string(&name).with_context(|| format!("reading {input}"))?;
                let base_dir = name.parent().unwrap_or(Path::new("."));
                load::check_source(
                    &name,
                    base_dir,
                    format,
                    &text,
                    &config::FileSystem,
                    referenced,
                )
            }
            None => load::load_as(&name, referenced),
        }
    };
    match result {
        Ok(loaded) => Ok(Some(loaded)),
        Err(rejected) => {
            print_rejected(input, &rejected);
            Ok(None)
        }
    }
}

/// The files a config at `git:REV:PATH` includes, read from that revision too, so that
/// a diff compares whole trees. Paths are taken as `git show` takes them: `./`- or
/// `../`-relative to the current directory, otherwise from the repository root.
struct GitRevision<'a> {
    rev: &'a str,
}

impl GitRevision<'_> {
    fn git<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> std::io::Result<String> {
        let out = std::process::Command::new("git").args(args).output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(
                String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            ));
        }
        String::from_utf8(out.stdout).map_err(std::io::Error::other)
    }
}

impl config::IncludeSource for GitRevision<'_> {
    fn file_names(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        let relative = dir.starts_with(".") || dir.starts_with("..");
        let mut args: Vec<std::ffi::OsString> = vec!["ls-tree".into()];
        if !relative {
            args.push("--full-tree".into());
        }
        // After `--end-of-options` everything is the tree-ish and paths (a `--` there
        // would be taken as a path).
        args.extend(["--end-of-options".into(), self.rev.into()]);
        if !dir.as_os_str().is_empty() {
            args.push(dir.join("").into_os_string());
        }
        // `MODE TYPE HASH<TAB>PATH` per entry; files are blobs.
        let listing = self.git(&args)?;
        Ok(listing
            .lines()
            .filter_map(|line| {
                let (meta, path) = line.split_once('\t')?;
                let name = Path::new(path).file_name()?.to_str()?;
                (meta.split(' ').nth(1) == Some("blob")).then(|| name.to_owned())
            })
            .collect())
    }

    fn read(&self, path: &Path) -> std::io::Result<String> {
        let spec = format!("{}:{}", self.rev, path.display());
        self.git(&["show", "--end-of-options", spec.as_str()])
    }

    fn name(&self, path: &Path) -> PathBuf {
        PathBuf::from(format!("git:{}:{}", self.rev, path.display()))
    }
}
