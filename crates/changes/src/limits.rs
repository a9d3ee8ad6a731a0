//! Bounds on hostile or runaway input, each with the reason for its value.
//!
//! Source: `docs/design.md` invariant 4 ("every parser bounds every count, size and
//! offset it reads; no unbounded allocation").

/// Largest change-map file read: a JSON area is ~40 bytes, so this holds more areas than
/// [`MAX_ITEMS`] allows while refusing a wrong file (a disk image) before reading it all.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// Most pages plus areas (plus top-level values) kept from one file, counted while parsing
/// so memory never grows past this: 1 Mi areas is a 1 TiB disk with every other 512 KiB
/// changed, beyond what CBT or a dirty bitmap hands back. Measured worst case (1 Mi
/// `qemu-img map` entries, raw and checked forms alive at once): ~260 MB peak RSS including
/// the 40 MB input. A refused map means a full backup, never a wrong one.
pub const MAX_ITEMS: usize = 1 << 20;

/// Most warnings kept on a [`crate::ChangeMap`]: one per page could otherwise be millions.
pub const MAX_WARNINGS: usize = 100;

/// Longest change id accepted: real ones are a 47-character UUID, `/` and a number.
pub const MAX_CHANGE_ID_BYTES: usize = 1024;

/// Smallest `diff` block: one sector, the smallest unit any disk format writes.
pub const MIN_DIFF_BLOCK: u64 = 512;

/// Largest `diff` block: the largest chunk size a backup store uses is well below this,
/// and each worker holds two blocks in memory.
pub const MAX_DIFF_BLOCK: u64 = 64 << 20;

/// Bytes of the disks `diff` maps and compares per batch; memory stays bounded by the
/// worker count times two blocks whatever the disk size.
pub const DIFF_BATCH_BYTES: u64 = 256 << 20;

/// Longest type name kept for an error message (`_typeName`, `_vimtype`).
pub const MAX_TYPE_NAME_CHARS: usize = 80;
