//! `diskray verify`, `diskray gc` and `diskray forget`.

use crate::out::outln;
use crate::repo_args::RepoArgs;
use diskray_core::Result;
use diskray_store::gc::gc as run_gc;
use diskray_store::lock::Mode;
use diskray_store::verify::verify as run_verify;
use std::process::ExitCode;

/// Exit status when verify finds damage (`docs/design.md` §3.1, command line contract).
pub const EXIT_DAMAGE: u8 = 3;

/// Arguments of `diskray verify`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Damaged chunks are set aside (renamed .bad); the next backup of a disk that\nstill holds the content stores them again.\n\nExample:\n  diskray verify --repo /backups"
)]
pub struct VerifyArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Only this image (id, unique prefix, or backup name for its newest image); default
    /// every image.
    image: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Said when gc holds the repository.
fn waiting() {
    eprintln!("diskray: waiting for gc to finish");
}

/// Runs `diskray verify`: exit 0 when clean, 3 on damage.
pub fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let repo = args.repo.open()?;
    let _lock = repo.lock(Mode::Shared, Some(&waiting))?;
    let images: Vec<_> = args
        .image
        .iter()
        .map(|what| repo.find_image(what))
        .collect::<Result<_>>()?;
    let pb = crate::progress::count(0, "verifying", "chunks");
    let report = run_verify(&repo, &images, &|done, total| {
        pb.set_length(total);
        pb.set_position(done);
    })?;
    pb.finish_and_clear();
    crate::out::print(args.json, &report.document(), &[] as &[String])?;
    let damaged = !report.damaged_chunks.is_empty() || !report.damaged_images.is_empty();
    Ok(ExitCode::from(if damaged { EXIT_DAMAGE } else { 0 }))
}

/// Arguments of `diskray gc`.
#[derive(clap::Args, Debug)]
pub struct GcArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `diskray gc`: waits for running backups, then deletes unreferenced chunks.
pub fn gc(args: GcArgs) -> Result<ExitCode> {
    let repo = args.repo.open()?;
    let busy =
        || eprintln!("diskray: waiting for running backups, restores and verifies to finish");
    let _lock = repo.lock(Mode::Exclusive, Some(&busy))?;
    crate::out::print(args.json, &run_gc(&repo)?, &[] as &[String])?;
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `diskray forget`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Images are full images: forgetting one never breaks another, even its\nchildren.\n\nExample:\n  diskray forget --repo /backups 20261122T101530.482913Z-1a2b3c4d\n  diskray gc --repo /backups"
)]
pub struct ForgetArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// The images to remove (ids or unique id prefixes; a backup name is refused here, so
    /// that a name never removes more than the user meant).
    #[arg(required = true)]
    images: Vec<String>,
}

/// Runs `diskray forget`: removes images; `gc` then frees the chunks only they used.
pub fn forget(args: ForgetArgs) -> Result<ExitCode> {
    let repo = args.repo.open()?;
    let _lock = repo.lock(Mode::Shared, Some(&waiting))?;
    for e in &repo.find_by_ids(&args.images)? {
        repo.forget(e)?;
        outln!("forgot image {} of {}", e.manifest.image, e.manifest.name)?;
    }
    outln!("run `diskray gc` to free the chunks no other image uses")?;
    Ok(ExitCode::SUCCESS)
}
