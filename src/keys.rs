//! `diskray init` and `diskray key add|list|remove`.

use crate::out::outln;
use crate::repo_args::{new_password, RepoArgs};
use diskray_core::{Error, Result};
use diskray_store::crypto::keyfile::{
    DEFAULT_KDF_ITERATIONS, DEFAULT_KDF_MEMORY_MIB, MAX_KDF_ITERATIONS, MAX_KDF_MEMORY_MIB,
    MIN_KDF_MEMORY_MIB,
};
use diskray_store::crypto::KdfChoice;
use diskray_store::Repo;
use std::path::PathBuf;
use std::process::ExitCode;

/// How a new key is derived from its password (Argon2id).
#[derive(clap::Args, Debug)]
struct Kdf {
    /// Argon2id memory in MiB for the new key.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_KDF_MEMORY_MIB,
          value_parser = clap::value_parser!(u32).range(MIN_KDF_MEMORY_MIB as i64..=MAX_KDF_MEMORY_MIB as i64))]
    kdf_memory_mib: u32,
    /// Argon2id passes for the new key.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_KDF_ITERATIONS,
          value_parser = clap::value_parser!(u32).range(1..=MAX_KDF_ITERATIONS as i64))]
    kdf_iterations: u32,
}

impl Kdf {
    fn choice(&self) -> KdfChoice {
        KdfChoice {
            memory_mib: self.kdf_memory_mib,
            iterations: self.kdf_iterations,
        }
    }
}

/// Arguments of `diskray init`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Without --encrypt the repository is clear, as one the first backup creates.\nWith it, a random master key seals every object; the password (from --password-file,\n$DISKRAY_PASSWORD_FILE, $DISKRAY_PASSWORD or the terminal) unwraps it. Losing every\npassword loses the repository. With --key-file FILE instead of a password, the new master\nkey is written to FILE (which must not exist; mode 0600) and no password is set: the\nrepository opens with --key-file FILE, and `diskray key add` gives it a password later.\n\nExamples:\n  diskray init --repo /backups\n  diskray init --repo /backups --encrypt --password-file /root/diskray.pw\n  diskray init --repo s3://backups/site1 --encrypt --key-file /root/site1.key"
)]
pub struct InitArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Encrypt the repository (AES-256-GCM with a key per object, keyed chunk names).
    #[arg(long)]
    encrypt: bool,
    /// Bytes per chunk for new images (a power of two, 64 KiB to 16 MiB).
    #[arg(long, value_name = "BYTES", default_value_t = diskray_store::DEFAULT_CHUNK_SIZE)]
    chunk_size: u64,
    #[command(flatten)]
    kdf: Kdf,
}

/// Runs `diskray init`.
pub fn init(args: InitArgs) -> Result<ExitCode> {
    let repo = match (&args.repo.key_file, args.encrypt) {
        (Some(file), false) => {
            return Err(Error::refused(
                file,
                "init writes a new key file only for an encrypted repository: add --encrypt",
            ))
        }
        (Some(file), true) => {
            Repo::init_with_key_file(args.repo.backend()?, args.chunk_size, file)?
        }
        (None, _) => {
            let password = args.encrypt.then(|| args.repo.password(true)).transpose()?;
            let encrypt = password.as_ref().map(|p| (p, args.kdf.choice()));
            Repo::init_backend(args.repo.backend()?, args.chunk_size, encrypt)?
        }
    };
    let how = if repo.is_encrypted() {
        "encrypted"
    } else {
        "clear"
    };
    outln!("created {how} repository {}", repo.root().display())?;
    Ok(ExitCode::SUCCESS)
}

/// `diskray key`: the keys (passwords) of an encrypted repository.
#[derive(clap::Subcommand, Debug)]
pub enum KeyCommand {
    /// Add a key: a new password that opens the repository.
    Add(KeyAddArgs),
    /// List the keys (the one this password opened is starred).
    List(KeyListArgs),
    /// Remove a key (not the last one, nor the one in use).
    Remove(KeyRemoveArgs),
    /// Write the master key to a new key file (mode 0600), which opens the repository
    /// with `--key-file` instead of a password: whoever reads it reads the repository.
    ExportMaster(KeyExportArgs),
}

/// Arguments of `diskray key export-master`.
#[derive(clap::Args, Debug)]
pub struct KeyExportArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// The key file to create (it must not exist).
    out: PathBuf,
}

/// Arguments of `diskray key add`.
#[derive(clap::Args, Debug)]
pub struct KeyAddArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// A file whose first line is the new password (default: asked on the terminal).
    #[arg(long, value_name = "FILE")]
    new_password_file: Option<PathBuf>,
    #[command(flatten)]
    kdf: Kdf,
}

/// Arguments of `diskray key list`.
#[derive(clap::Args, Debug)]
pub struct KeyListArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `diskray key remove`.
#[derive(clap::Args, Debug)]
pub struct KeyRemoveArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// The key id (`diskray key list`).
    id: String,
}

/// Runs `diskray key …`.
pub fn run(cmd: KeyCommand) -> Result<ExitCode> {
    match cmd {
        KeyCommand::Add(a) => {
            let repo = a.repo.open()?;
            let pw = new_password(a.new_password_file.as_deref(), "new password")?;
            let k = repo.key_add(&pw, a.kdf.choice())?;
            outln!("added key {}", k.id)?;
        }
        KeyCommand::List(a) => {
            let list = a.repo.open()?.key_list()?;
            crate::out::print(a.json, &list, &[] as &[String])?;
        }
        KeyCommand::ExportMaster(a) => {
            a.repo.open()?.export_master_key(&a.out)?;
            outln!("wrote the master key to {}", a.out.display())?;
        }
        KeyCommand::Remove(a) => {
            a.repo.open()?.key_remove(&a.id)?;
            outln!("removed key {}", a.id)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
