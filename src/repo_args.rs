//! The `--repo` option every repository command shares.

use diskray_store::{backend, Repo};
use std::path::PathBuf;

/// Where the repository is.
#[derive(clap::Args, Debug, Clone)]
pub struct RepoArgs {
    /// The repository: a directory, or s3://BUCKET[/PREFIX] on an S3-compatible object
    /// store (credentials and region from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_REGION) (default: $DISKRAY_REPO, else ./diskray-repo).
    #[arg(long, env = "DISKRAY_REPO", default_value = "diskray-repo")]
    pub repo: PathBuf,
    /// The endpoint of an s3:// repository's server, e.g. http://127.0.0.1:9000
    /// (default: $AWS_ENDPOINT_URL, else AWS itself); requests are then path-style and
    /// plain http:// is allowed.
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
}

impl RepoArgs {
    /// Opens the existing repository.
    pub fn open(&self) -> diskray_core::Result<Repo> {
        Repo::open_backend(backend::at(&self.repo, self.s3_endpoint.as_deref())?)
    }

    /// Opens the repository, creating it with `chunk_size` when there is none yet.
    pub fn open_or_create(&self, chunk_size: u64) -> diskray_core::Result<Repo> {
        let backend = backend::at(&self.repo, self.s3_endpoint.as_deref())?;
        Repo::open_or_create_backend(backend, chunk_size)
    }
}
