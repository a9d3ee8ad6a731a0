//! A backup of a machine: the disks of one VM analysed as one (a volume group may span
//! them), the kept set computed once for the whole machine and split per disk, one image
//! per disk in the series `NAME.diskI`, all with the same start time so that their ids
//! share their time prefix (`docs/design.md` §3.5).

use crate::counting::CountingDisk;
use crate::pipeline::{backup, backup_planned, volumes_summary, BackupOutcome, BackupReport};
use crate::plan::KeepPlan;
use crate::BackupRequest;
use diskray_core::{ByteRange, Error, RangeSet, Result, VirtualDisk, Warning};
use diskray_layout::{analyze_machine, Classification, ContainerMap, KeepOptions, Machine};
use diskray_store::lock::Mode as LockMode;
use diskray_store::manifest::VolumeSummary;
use diskray_store::Repo;
use std::path::Path;

/// What one disk's image keeps, worked out from the whole machine.
#[derive(Debug, Clone, Default)]
pub struct DiskPlan {
    /// The kept set and skipped bytes, in the disk's own bytes.
    pub keep: KeepPlan,
    /// The volumes that start on the disk, at their offsets on it.
    pub volumes: Vec<VolumeSummary>,
    /// Bytes the analysis read from this disk (partition tables, superblocks, bitmaps).
    pub read_metadata: u64,
}

/// The plans of every disk of a machine.
#[derive(Debug, Clone, Default)]
pub struct MachinePlan {
    /// One per disk, in order.
    pub disks: Vec<DiskPlan>,
    /// What the analysis said of the machine as a whole (tables, volume groups).
    pub warnings: Vec<Warning>,
}

/// Analyses `m` once and splits its kept set per disk: a logical volume that spans disks
/// keeps its filesystem's used bytes on each of them and nothing of its free space. The
/// skipped byte counts split the same way, so that each disk's sum is its capacity.
/// `read_metadata` is left 0: the caller counts reads per disk.
pub fn machine_plans(m: &Machine, keep_deleted: bool, keep_swap: bool) -> Result<MachinePlan> {
    let layout = analyze_machine(m)?;
    let c = Classification::of(m, &layout)?;
    let kept = c.kept(KeepOptions {
        keep_deleted,
        keep_swap,
    });
    let (free, vg_free) = if keep_deleted {
        (RangeSet::new(), RangeSet::new())
    } else {
        (c.free(), c.vg_free())
    };
    let excluded = if keep_swap {
        RangeSet::new()
    } else {
        c.excluded()
    };
    let mut disks = Vec::new();
    for (i, d) in m.disks().iter().enumerate() {
        let span = m.span_of(i);
        let on = |s: &RangeSet| on_disk(s, span);
        let container = ContainerMap {
            capacity: span.length,
            unallocated: on(&c.container.unallocated),
            zero: on(&c.container.zero),
            unreadable: on(&c.container.unreadable),
        };
        let mut keep = KeepPlan {
            kept: on(&kept),
            unallocated: container.unallocated.bytes() + container.unreadable.bytes(),
            zero: container.zero.bytes(),
            free: on(&free).bytes(),
            vg_free: on(&vg_free).bytes(),
            excluded: on(&excluded).bytes(),
            warnings: container.warning().into_iter().collect(),
        };
        let mine: Vec<_> = layout.volumes.iter().filter(|v| v.disk == i).collect();
        for v in mine.iter().filter(|v| v.error.is_some()) {
            let e = v.error.as_deref().unwrap_or_default();
            let what = v.lv.clone().unwrap_or_else(|| v.index.to_string());
            keep.warnings.push(Warning::new(format!(
                "{}: partition {what}: {e}; the whole partition is kept",
                d.label.display()
            )));
        }
        let mut volumes = volumes_summary(mine.into_iter());
        for v in &mut volumes {
            v.start = v.start.saturating_sub(span.start);
        }
        disks.push(DiskPlan {
            keep,
            volumes,
            read_metadata: 0,
        });
    }
    Ok(MachinePlan {
        disks,
        warnings: layout.warnings,
    })
}

/// The part of `set` (machine bytes) on the disk at `span`, in that disk's bytes.
fn on_disk(set: &RangeSet, span: ByteRange) -> RangeSet {
    set.ranges()
        .filter_map(|r| r.intersect(&span))
        .map(|r| ByteRange::new(r.start - span.start, r.length))
        .collect()
}

/// Why options given per disk do not fit `disks` disks (each `(option, times given)` must
/// be given once per disk, in the order of the disks, or not at all); `None` when they fit.
pub fn per_disk_mismatch(disks: usize, given: &[(&str, usize)]) -> Option<String> {
    given.iter().find(|(_, n)| *n != 0 && *n != disks).map(|(opt, n)| {
        format!("{opt} is given {n} times for {disks} disks: give it once per disk, in the order of the disks, or not at all\n")
    })
}

/// A finished backup of a machine.
#[derive(Debug, Clone)]
pub struct MachineOutcome {
    /// One image per disk, in order.
    pub images: Vec<BackupOutcome>,
    /// What was said of the machine as a whole.
    pub warnings: Vec<Warning>,
}

/// Backs up the disks of one machine, one request per disk in order, each naming the
/// machine's backup (`req.name`, the same for all). One disk: exactly [`backup`], in the
/// series of that name. Several: the machine is analysed once, and disk `i` is backed up
/// in the series `NAME.diskI`; every image gets the same start time. The progress each
/// request is given counts the whole machine's bytes. A machine backup is whole or absent:
/// when a disk fails, the images already published for the disks before it are withdrawn
/// (forgotten; their chunks stay until `gc`, so the next backup links them) and the
/// disk's error is returned.
pub fn backup_machine(reqs: Vec<BackupRequest<'_>>) -> Result<MachineOutcome> {
    if reqs.is_empty() {
        return Err(Error::refused(
            Path::new("-"),
            "a machine needs at least one disk",
        ));
    }
    if reqs.len() == 1 {
        let images = reqs.into_iter().map(backup).collect::<Result<_>>()?;
        return Ok(MachineOutcome {
            images,
            warnings: Vec::new(),
        });
    }
    let (keep_deleted, keep_swap) = (reqs[0].keep_deleted, reqs[0].keep_swap);
    let counting: Vec<CountingDisk> = reqs.iter().map(|r| CountingDisk::new(r.disk)).collect();
    let m = Machine::new(
        counting
            .iter()
            .zip(&reqs)
            .map(|(c, r)| (c as &dyn VirtualDisk, r.label.to_path_buf())),
    )?;
    let mut plan = machine_plans(&m, keep_deleted, keep_swap)?;
    for (p, c) in plan.disks.iter_mut().zip(&counting) {
        p.read_metadata = c.bytes_read();
    }
    let unix_micros = reqs[0].at.unwrap_or_else(crate::pipeline::now_micros);
    let total = m.capacity();
    let repo = reqs[0].repo;
    let mut images = Vec::new();
    for (i, (req, disk_plan)) in reqs.into_iter().zip(plan.disks).enumerate() {
        let name = format!("{}.disk{i}", req.name);
        let base = m.span_of(i).start;
        let outer = req.progress;
        let progress = move |done: u64, _: u64| outer(base + done, total);
        let req = BackupRequest {
            name: &name,
            progress: &progress,
            ..req
        };
        match backup_planned(req, disk_plan, unix_micros) {
            Ok(done) => images.push(done),
            Err(e) => return Err(withdraw(repo, &images, e)),
        }
    }
    Ok(MachineOutcome {
        images,
        warnings: plan.warnings,
    })
}

/// Forgets the images of `done` after `failed` stopped their machine's backup, and returns
/// `failed`, or an error naming the images that could not be withdrawn.
fn withdraw(repo: &Repo, done: &[BackupOutcome], failed: Error) -> Error {
    let forget = |o: &BackupOutcome| -> Result<()> {
        let _lock = repo.lock(LockMode::Shared, None)?;
        repo.forget(&repo.find_image(&o.manifest.image)?)
    };
    let left: Vec<String> = done
        .iter()
        .filter_map(|o| {
            forget(o)
                .err()
                .map(|e| format!("{} ({e})", o.manifest.image))
        })
        .collect();
    if left.is_empty() {
        return failed;
    }
    Error::refused(
        repo.root(),
        format!(
            "the machine backup failed ({failed}), and the images of the disks before it could not be withdrawn: {}; forget them with `diskray forget`",
            left.join(", ")
        ),
    )
}

/// `diskray backup`'s record of a machine's backup (several disks).
#[derive(Debug, Clone, serde::Serialize)]
pub struct MachineReport<'a> {
    /// One record per disk, in order.
    pub images: Vec<BackupReport<'a>>,
    /// What was said of the machine as a whole.
    pub warnings: &'a [Warning],
}

/// What `diskray backup` prints: one disk's record as it has always been, or the
/// machine's record for several disks.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(untagged)]
pub enum BackupDocument<'a> {
    /// One disk.
    Disk(BackupReport<'a>),
    /// Several disks.
    Machine(MachineReport<'a>),
}

impl MachineOutcome {
    /// Puts `opened` (what opening the disks said) first among the warnings: the image's
    /// for one disk, the machine's for several.
    pub fn opened(&mut self, opened: impl IntoIterator<Item = Warning>) {
        let to = match &mut self.images[..] {
            [one] => &mut one.warnings,
            _ => &mut self.warnings,
        };
        to.splice(0..0, opened);
    }

    /// The record `diskray backup` prints.
    pub fn document(&self) -> BackupDocument<'_> {
        match &self.images[..] {
            [one] => BackupDocument::Disk(one.report()),
            _ => BackupDocument::Machine(MachineReport {
                images: self.images.iter().map(BackupOutcome::report).collect(),
                warnings: &self.warnings,
            }),
        }
    }
}

impl BackupDocument<'_> {
    /// Every warning, for people: with several disks, the machine's, then each image's
    /// after its series name.
    pub fn warnings(&self) -> Vec<String> {
        let (images, machine) = match self {
            BackupDocument::Disk(r) => (std::slice::from_ref(r), &[][..]),
            BackupDocument::Machine(m) => (&m.images[..], m.warnings),
        };
        let several = images.len() > 1;
        let each = images.iter().flat_map(|r| {
            r.warnings.iter().map(move |w| match several {
                true => format!("{}: {w}", r.name),
                false => w.to_string(),
            })
        });
        machine.iter().map(|w| w.to_string()).chain(each).collect()
    }
}

/// For people: one block per disk.
impl std::fmt::Display for BackupDocument<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackupDocument::Disk(r) => write!(f, "{r}"),
            BackupDocument::Machine(m) => m.images.iter().try_for_each(|r| write!(f, "{r}")),
        }
    }
}
