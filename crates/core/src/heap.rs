//! Process-wide tuning of the C allocator (glibc's `malloc`, which Rust's global allocator
//! calls).
//!
//! Backups, restores and conversions allocate buffers of 64 KiB–16 MiB (chunks, patches,
//! encodings) over and over on several threads. glibc serves blocks above its mmap
//! threshold (128 KiB at first, raised on the fly) with a fresh `mmap` and gives the
//! memory back on `free`, and trims the top of a heap above 128 KiB: each new buffer is
//! then faulted in again, page by page, and the kernel zeroes every page first. On the
//! benchmark's incremental backup that was about 10,000 page faults for 270 chunks made
//! (`docs/benchmarks.md`, "seventh session"). With [`keep_freed_memory`] freed blocks stay
//! in the allocator and are reused, and the memory is not handed back before the process
//! ends. The peak is a little higher (each thread's arena keeps the blocks it freed for
//! itself): 5–10 MiB more in the benchmarks' backups and conversions, bounded like the
//! buffers themselves.

/// Largest block still taken from the heap rather than mapped on its own: glibc's upper
/// limit for the threshold on 64-bit (`DEFAULT_MMAP_THRESHOLD_MAX`), above the largest
/// chunk (16 MiB) and its encoding.
const MMAP_THRESHOLD: i32 = 32 << 20;
/// Free memory at the top of a heap kept rather than returned to the kernel: a few
/// windows' worth of chunk buffers.
const TRIM_THRESHOLD: i32 = 256 << 20;

/// Asks the C allocator to keep and reuse freed memory (see the module's docs). Call it
/// once, first thing in `main`, before other threads start. A no-op where the C library
/// is not glibc.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any other thread runs.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}
