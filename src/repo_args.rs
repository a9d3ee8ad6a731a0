//! The `--repo` option every repository command shares, and the password of an encrypted
//! repository: every command opens its repository through [`RepoArgs::open`], which asks
//! for the password only when the config says the repository is encrypted.

use diskray_core::{Error, Result};
use diskray_store::backend::{self, Backend, S3Settings};
use diskray_store::crypto::unlock::KeyFile;
use diskray_store::crypto::{Credential, Password};
use diskray_store::Repo;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Largest password file read: a password is a line.
const MAX_PASSWORD_FILE_LEN: u64 = 4096;
/// Longest `--s3-timeout`: an hour is more than any one chunk needs on a working link.
const MAX_S3_TIMEOUT_SECS: u64 = 3600;
/// The environment variable holding the password itself (after restic's RESTIC_PASSWORD).
const PASSWORD_ENV: &str = "DISKRAY_PASSWORD";

/// Where the repository is, and how to unlock it when it is encrypted.
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
    /// Seconds one request to an s3:// repository's server may take before it is tried
    /// again (up to 4 tries more, none begun later than 30 s plus this after the first).
    #[arg(long, value_name = "SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=MAX_S3_TIMEOUT_SECS))]
    pub s3_timeout: u64,
    /// A file whose first line is the password of an encrypted repository (default:
    /// $DISKRAY_PASSWORD_FILE, else $DISKRAY_PASSWORD, else a prompt on the terminal).
    #[arg(long, value_name = "FILE", env = "DISKRAY_PASSWORD_FILE")]
    pub password_file: Option<PathBuf>,
    /// A key file holding the master key of an encrypted repository (`diskray key
    /// export-master`), instead of a password.
    #[arg(long, value_name = "FILE", conflicts_with = "password_file")]
    pub key_file: Option<PathBuf>,
}

impl RepoArgs {
    /// Opens the existing repository.
    pub fn open(&self) -> Result<Repo> {
        Repo::open_backend_with(self.backend()?, &|| self.credential())
    }

    /// Where the repository's objects are: its directory, or its S3 bucket and prefix.
    pub fn backend(&self) -> Result<Arc<dyn Backend>> {
        backend::at(
            &self.repo,
            &S3Settings {
                endpoint: self.s3_endpoint.clone(),
                timeout: Duration::from_secs(self.s3_timeout),
            },
        )
    }

    /// Opens the repository to write into it, creating a clear one with `chunk_size` if
    /// the directory is missing or empty. When a password is given, the repository must
    /// be encrypted: the user expects it, and a backup would otherwise write plaintext
    /// (into a new repository, or into one whose encrypted config was replaced by a
    /// clear one).
    pub fn open_or_create(&self, chunk_size: u64) -> Result<Repo> {
        let given = self.password_file.is_some()
            || self.key_file.is_some()
            || std::env::var_os(PASSWORD_ENV).is_some();
        let refuse = || {
            Error::refused(
                &self.repo,
                "a password was given but the repository is not encrypted: refusing to write in clear (`diskray init --repo R --encrypt` makes an encrypted repository; give no password to use a clear one)",
            )
        };
        let backend = self.backend()?;
        if given && backend.is_vacant()? {
            return Err(refuse());
        }
        let repo = Repo::open_or_create_backend(backend, chunk_size, &|| self.credential())?;
        if given && !repo.is_encrypted() {
            return Err(refuse());
        }
        Ok(repo)
    }

    /// What opens the repository: the master key from `--key-file`, else the password.
    fn credential(&self) -> Result<Credential> {
        match &self.key_file {
            Some(f) => Ok(Credential::MasterKey(KeyFile::read(f)?.1)),
            None => self.password(false).map(Credential::from),
        }
    }

    /// The repository's password: from `--password-file` (or `$DISKRAY_PASSWORD_FILE`),
    /// `$DISKRAY_PASSWORD`, or the terminal (asked twice when `confirm`).
    pub fn password(&self, confirm: bool) -> Result<Password> {
        if let Some(file) = &self.password_file {
            return password_from_file(file);
        }
        if let Some(p) = std::env::var_os(PASSWORD_ENV) {
            return non_empty(p.into_encoded_bytes(), Path::new(PASSWORD_ENV));
        }
        prompt("password of the repository", confirm)
    }
}

/// The new password of `init --encrypt` or `key add`: from `file`, else the terminal.
pub fn new_password(file: Option<&Path>, what: &str) -> Result<Password> {
    match file {
        Some(f) => password_from_file(f),
        None => prompt(what, true),
    }
}

/// The first line of `path` (its line end dropped).
fn password_from_file(path: &Path) -> Result<Password> {
    let bytes = diskray_store::repo::read_bounded(path, MAX_PASSWORD_FILE_LEN)?;
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    non_empty(line.to_vec(), path)
}

fn non_empty(bytes: Vec<u8>, from: &Path) -> Result<Password> {
    if bytes.is_empty() {
        return Err(Error::refused(from, "the password is empty"));
    }
    Ok(Password::new(bytes))
}

/// Asks on the terminal without echo; refused when there is no terminal to ask on.
fn prompt(what: &str, confirm: bool) -> Result<Password> {
    let here = Path::new("password");
    if !std::io::stdin().is_terminal() {
        return Err(Error::refused(
            here,
            format!("the repository is encrypted: give the {what} with --password-file FILE, $DISKRAY_PASSWORD_FILE or $DISKRAY_PASSWORD (there is no terminal to ask on)"),
        ));
    }
    let ask = |q: &str| {
        rpassword::prompt_password(q).map_err(|e| Error::Open {
            path: PathBuf::from("/dev/tty"),
            source: e,
        })
    };
    let first = ask(&format!("diskray: {what}: "))?;
    if confirm && ask(&format!("diskray: {what} again: "))? != first {
        return Err(Error::refused(here, "the two passwords differ"));
    }
    non_empty(first.into_bytes(), here)
}
