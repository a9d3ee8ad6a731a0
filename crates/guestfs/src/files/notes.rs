//! What a file view learns while it lists (a bound reached, entries left out): kept behind
//! `&self`, since listing does not change the filesystem, and shown with the view's
//! warnings.

use diskray_core::Warning;
use std::sync::{Mutex, MutexGuard};

/// Most entries read from deleted directories in one listing: deleted directory blocks can
/// fill a volume's free space, and each entry listed costs a few hundred bytes (a quarter
/// million entries stay under 100 MiB).
pub(crate) const MAX_DELETED_DIR_ENTRIES: usize = 1 << 18;

/// The notes of one file view.
#[derive(Debug, Default)]
pub(crate) struct Notes(Mutex<Vec<Warning>>);

impl Notes {
    /// Counts `n` more entries read from deleted directories into `read`, the count of
    /// this listing; past [`MAX_DELETED_DIR_ENTRIES`] notes it and says false: the listing
    /// of deleted directories stops there.
    pub(crate) fn count_deleted_dir_entries(&self, read: &mut usize, n: usize) -> bool {
        *read += n;
        if *read > MAX_DELETED_DIR_ENTRIES {
            self.lock().push(Warning::new(format!(
                "more than {MAX_DELETED_DIR_ENTRIES} entries in deleted directories: \
                 the rest of them are not listed"
            )));
            return false;
        }
        true
    }

    /// `first`, if any (what the filesystem always says), then the notes so far: the file
    /// view's warnings.
    pub(crate) fn after(&self, first: Option<Warning>) -> Vec<Warning> {
        first
            .into_iter()
            .chain(self.lock().iter().cloned())
            .collect()
    }

    /// The notes; a listing that panicked while holding them leaves them readable.
    fn lock(&self) -> MutexGuard<'_, Vec<Warning>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
