//! The `--repo` option every repository command shares.

use diskray_store::Repo;
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
