//! The repository lock (`docs/repository.md`, "Locking"): each backend takes it its own
//! way (`flock` on a directory, lock objects on an object store).

pub use crate::backend::{LockGuard, Mode};

/// A held repository lock; released when dropped.
pub type RepoLock = Box<dyn LockGuard>;
