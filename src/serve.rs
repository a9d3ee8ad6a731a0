//! `diskray serve`: an image exported over NBD, read-only or with an overlay for writes.

use crate::repo_args::RepoArgs;
use diskray_core::{Error, Result, VirtualDisk};
use diskray_nbd::overlay::Overlay;
use diskray_nbd::server::{listen_and_serve, Export};
use diskray_nbd::tls::server_config;
use diskray_store::OpenImage;
use std::process::ExitCode;

/// Arguments of `diskray serve`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "The export is named after the image id and is also the default export (\"\").\nRead-only unless --overlay; every chunk's digest is checked when read. Runs until\ninterrupted.\n\nExamples:\n  diskray serve --repo /backups web01 --listen unix:/run/web01.sock\n  qemu-img convert -O raw 'nbd+unix:///?socket=/run/web01.sock' web01.raw\n  diskray serve --repo /backups web01            # nbd://127.0.0.1:10809/"
)]
pub struct ServeArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// The image: its id, a unique prefix of it, or a backup name (its newest image).
    image: String,
    /// Where to listen: `unix:PATH` or `HOST:PORT` (default loopback).
    #[arg(long, default_value = "127.0.0.1:10809")]
    listen: String,
    /// Make the export writable: writes land in this sparse file (created when missing,
    /// with FILE.map beside it), never in the repository.
    #[arg(long, value_name = "FILE")]
    overlay: Option<std::path::PathBuf>,
    /// Require TLS: the server's certificate chain (PEM), with --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The server's private key (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Ask clients for certificates signed by this authority (PEM), refusing the others.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_client_ca: Option<std::path::PathBuf>,
}

/// Runs `diskray serve` until it is interrupted.
pub fn run(args: ServeArgs) -> Result<ExitCode> {
    let wait = || eprintln!("diskray: waiting for gc to finish");
    let image = OpenImage::open(&args.repo.open()?, &args.image, Some(&wait))?;
    let name = image
        .dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let overlay = args
        .overlay
        .as_deref()
        .map(|p| Overlay::open(&image.disk, p))
        .transpose()?;
    let export = Export {
        disk: overlay
            .as_ref()
            .map_or(&image.disk as &dyn VirtualDisk, |o| o),
        name: name.unwrap_or_default(),
        overlay: overlay.as_ref(),
        tls: match (&args.tls_cert, &args.tls_key) {
            (Some(c), Some(k)) => Some(
                server_config(c, k, args.tls_client_ca.as_deref())
                    .map_err(|e| e.into_core(&c.display().to_string(), None))?,
            ),
            _ => None,
        },
    };
    let failed = |e: std::io::Error| Error::Open {
        path: args.listen.clone().into(),
        source: e,
    };
    let said = format!(
        "{} on {} (export {:?} or \"\")",
        args.image, args.listen, export.name
    );
    listen_and_serve(&export, &args.listen, &|| {
        eprintln!("diskray: serving {said}")
    })
    .map_err(failed)?;
    Ok(ExitCode::SUCCESS)
}
