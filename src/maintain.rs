//! `diskray verify` and `diskray gc`.

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

/// Runs `diskray verify`: exit 0 when clean, 3 on damage.
pub fn verify(args: VerifyArgs) -> Result<ExitCode> {
    let repo = args.repo.open()?;
    let _lock = repo.lock(
        Mode::Shared,
        Some(&|| eprintln!("diskray: waiting for gc to finish")),
    )?;
    let images = match &args.image {
        Some(what) => vec![repo.find_image(what)?],
        None => Vec::new(),
    };
    let pb = crate::progress::count(0, "verifying", "chunks");
    let report = run_verify(&repo, &images, &|done, total| {
        pb.set_length(total);
        pb.set_position(done);
    })?;
    pb.finish_and_clear();
    let damaged = !report.damaged_chunks.is_empty() || !report.damaged_images.is_empty();
    if args.json {
        let doc = report.document();
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default())?;
    } else {
        outln!(
            "verified {} image{}: {} chunks, {}",
            report.images_checked,
            if report.images_checked == 1 { "" } else { "s" },
            report.chunks_checked,
            crate::human::size(report.bytes_checked)
        )?;
        for c in &report.damaged_chunks {
            outln!("damaged chunk {}: {}", c.digest, c.reason)?;
        }
        for (image, why) in &report.damaged_images {
            outln!("damaged image {image}: {why}")?;
        }
        if damaged {
            outln!(
                "damaged chunks were set aside (.bad); the next backup of each affected disk stores them again"
            )?;
        } else {
            outln!("no damage found")?;
        }
    }
    Ok(if damaged {
        ExitCode::from(EXIT_DAMAGE)
    } else {
        ExitCode::SUCCESS
    })
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
    let _lock = repo.lock(
        Mode::Exclusive,
        Some(&|| {
            eprintln!("diskray: waiting for running backups, restores and verifies to finish")
        }),
    )?;
    let r = run_gc(&repo)?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&r).unwrap_or_default())?;
    } else {
        outln!(
            "{} images; kept {} chunks ({}); removed {} chunks ({}) and {} leftovers of interrupted backups; {} damaged chunks set aside",
            r.images,
            r.chunks_kept,
            crate::human::size(r.bytes_kept),
            r.chunks_removed,
            crate::human::size(r.bytes_removed),
            r.leftovers_removed,
            r.bad_chunks
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Arguments of `diskray forget`.
#[derive(clap::Args, Debug)]
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
    let _lock = repo.lock(
        Mode::Shared,
        Some(&|| eprintln!("diskray: waiting for gc to finish")),
    )?;
    let (all, _) = repo.images()?;
    let mut chosen = Vec::new();
    for what in &args.images {
        if all
            .iter()
            .any(|e| e.manifest.name == *what && e.manifest.image != *what)
        {
            return Err(diskray_core::Error::invalid(
                "image id",
                format!("{what:?}"),
                format!(
                    "is a backup name; forget takes image ids (see `diskray images --repo {} {what}`)",
                    args.repo.repo.display()
                ),
            ));
        }
        chosen.push(repo.find_image(what)?);
    }
    for e in &chosen {
        repo.forget(e)?;
        outln!("forgot image {} of {}", e.manifest.image, e.manifest.name)?;
    }
    outln!("run `diskray gc` to free the chunks no other image uses")?;
    Ok(ExitCode::SUCCESS)
}
