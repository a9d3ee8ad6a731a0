//! `diskray verify`, `diskray gc` and `diskray forget`.

use crate::out::outln;
use crate::repo_args::RepoArgs;
use diskray_core::Result;
use diskray_store::gc::gc as run_gc;
use diskray_store::lock::Mode;
use diskray_store::retention::{self, Policy, Span};
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
    let repo = match args.repo.open() {
        // A config or key object that does not authenticate is damage found, not a
        // failure to run.
        Err(e @ diskray_core::Error::Corrupt { .. }) => {
            crate::out::print(
                args.json,
                &DamagedRepository {
                    damaged: e.to_string(),
                },
                &[] as &[String],
            )?;
            return Ok(ExitCode::from(EXIT_DAMAGE));
        }
        r => r?,
    };
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
    let damaged = !report.damaged_chunks.is_empty()
        || !report.damaged_images.is_empty()
        || !report.damaged_objects.is_empty();
    Ok(ExitCode::from(if damaged { EXIT_DAMAGE } else { 0 }))
}

/// `verify`'s record when the repository itself (its config or keys) is damaged.
#[derive(serde::Serialize)]
struct DamagedRepository {
    /// What is damaged, and where.
    damaged: String,
}

impl std::fmt::Display for DamagedRepository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "damaged: {}", self.damaged)
    }
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
    crate::out::print(args.json, &collect(&repo)?, &[] as &[String])?;
    Ok(ExitCode::SUCCESS)
}

/// gc under the exclusive lock, saying so while it waits for it.
fn collect(repo: &diskray_store::Repo) -> Result<diskray_store::gc::GcReport> {
    let busy =
        || eprintln!("diskray: waiting for running backups, restores and verifies to finish");
    let _lock = repo.lock(Mode::Exclusive, Some(&busy))?;
    run_gc(repo)
}

/// Arguments of `diskray forget`.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Images are full images: forgetting one never breaks another, even its\nchildren. A policy (restic's forget semantics, times in UTC) applies to each backup\nname; the disks of a machine backup are kept or forgotten together.\n\nExamples:\n  diskray forget --repo /backups 20261122T101530.482913Z-1a2b3c4d\n  diskray forget --repo /backups --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --dry-run\n  diskray forget --repo /backups --name web01 --keep-last 3 --prune"
)]
pub struct ForgetArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// The images to remove (ids or unique id prefixes; a backup name is refused here, so
    /// that a name never removes more than the user meant).
    #[arg(required_unless_present = "keep", conflicts_with = "keep")]
    images: Vec<String>,
    #[command(flatten)]
    keep: Keep,
    /// Apply the policy to this backup name only (default: every name).
    #[arg(long, requires = "keep")]
    name: Option<String>,
    /// Say what the policy would forget, and forget nothing.
    #[arg(long, requires = "keep")]
    dry_run: bool,
    /// Then run gc, freeing the chunks no image uses any more.
    #[arg(long)]
    prune: bool,
    /// Print the policy's result as JSON.
    #[arg(long, requires = "keep")]
    json: bool,
}

/// A retention policy (`--keep-*`): what each rule keeps per backup name.
#[derive(clap::Args, Debug)]
#[group(id = "keep", multiple = true)]
struct Keep {
    /// Keep the N newest backups.
    #[arg(long, value_name = "N")]
    keep_last: Option<u32>,
    /// Keep the newest backup of each of the N newest hours that hold one.
    #[arg(long, value_name = "N")]
    keep_hourly: Option<u32>,
    /// The same per day.
    #[arg(long, value_name = "N")]
    keep_daily: Option<u32>,
    /// The same per ISO week.
    #[arg(long, value_name = "N")]
    keep_weekly: Option<u32>,
    /// The same per month.
    #[arg(long, value_name = "N")]
    keep_monthly: Option<u32>,
    /// The same per year.
    #[arg(long, value_name = "N")]
    keep_yearly: Option<u32>,
    /// Keep every backup newer than the name's newest less this span (e.g. 1y5m7d2h).
    #[arg(long, value_name = "SPAN")]
    keep_within: Option<Span>,
}

impl Keep {
    fn policy(&self) -> Policy {
        Policy {
            last: self.keep_last.unwrap_or(0),
            hourly: self.keep_hourly.unwrap_or(0),
            daily: self.keep_daily.unwrap_or(0),
            weekly: self.keep_weekly.unwrap_or(0),
            monthly: self.keep_monthly.unwrap_or(0),
            yearly: self.keep_yearly.unwrap_or(0),
            within: self.keep_within,
        }
    }
}

/// Runs `diskray forget`: removes the images named, or those a policy does not keep;
/// `gc` (or `--prune`) then frees the chunks only they used.
pub fn forget(args: ForgetArgs) -> Result<ExitCode> {
    let policy = args.keep.policy();
    if args.images.is_empty() && policy.is_empty() {
        let msg = "every --keep-* given is 0: such a policy would forget everything\n";
        clap::Error::raw(clap::error::ErrorKind::InvalidValue, msg).exit();
    }
    let repo = args.repo.open()?;
    let prune = args.prune && !args.dry_run;
    if args.images.is_empty() {
        let (name, dry) = (args.name.as_deref(), args.dry_run);
        let (plan, warnings) =
            retention::forget_by_policy(&repo, &policy, name, dry, Some(&waiting))?;
        let gc = prune.then(|| collect(&repo)).transpose()?;
        crate::out::print(args.json, &retention::PolicyDone { plan, gc }, &warnings)?;
    } else {
        let lock = repo.lock(Mode::Shared, Some(&waiting))?;
        for e in &repo.find_by_ids(&args.images)? {
            repo.forget(e)?;
            outln!("forgot image {} of {}", e.manifest.image, e.manifest.name)?;
        }
        drop(lock);
        if prune {
            outln!("{}", collect(&repo)?)?;
        }
    }
    if !prune && !args.json && !args.dry_run {
        outln!("run `diskray gc` to free the chunks no other image uses")?;
    }
    Ok(ExitCode::SUCCESS)
}
