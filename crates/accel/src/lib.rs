//! The accelerator: a full backup for the cost of an incremental.
//!
//! The first backup of a disk reads only what the container has allocated and the guest
//! uses (plus filesystem metadata and everything outside recognised filesystems). Every
//! later backup starts from the previous image's index and reads only the chunks that
//! the change map (CBT) says changed or whose bytes became used since, so that the new
//! image is a *synthetic full*: new chunks plus links to unchanged ones
//! (`docs/design.md` invariants 1–2, NetBackup Accelerator and PBS fast incremental,
//! `docs/formats.md` §5.5).

#![warn(missing_docs)]

pub mod counting;
pub mod machine;
pub mod pipeline;
pub mod plan;
pub mod restore;
pub use diskray_store::manifest::{BackupStats, ChangeSource, Source};
pub use machine::{
    backup_machine, machine_plans, per_disk_mismatch, BackupDocument, DiskPlan, MachineOutcome,
    MachineReport,
};
pub use pipeline::{backup, BackupOutcome, BackupReport, BackupRequest};
pub use restore::{restore, RestoreRequest};
