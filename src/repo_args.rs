//! The `--repo` option every repository command shares, and progress bars for them.

use diskray_store::Repo;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Where the repository is.
#[derive(clap::Args, Debug, Clone)]
pub struct RepoArgs {
    /// The repository directory (default: $DISKRAY_REPO, else ./diskray-repo).
    #[arg(long, env = "DISKRAY_REPO", default_value = "diskray-repo")]
    pub repo: PathBuf,
}

impl RepoArgs {
    /// Opens the existing repository.
    pub fn open(&self) -> diskray_core::Result<Repo> {
        Repo::open(&self.repo)
    }
}

/// A progress bar counting `unit`s (not bytes) on stderr when it is a terminal.
pub fn count_bar(total: u64, verb: &str, unit: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {verb} {{pos}}/{{len}} {unit} [{{bar:40}}] {{eta}} left"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

/// A byte progress bar on stderr when it is a terminal, hidden otherwise.
pub fn bar(total: u64, verb: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {verb} {{bytes}}/{{total_bytes}} [{{bar:40}}] {{bytes_per_sec}}, {{eta}} left"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}
