//! Entry handles: each filesystem's own [`FileHandle`] type, and [`AnyHandle`], the same
//! with its type erased, which entries carry behind `&dyn Files` (see the [`super`]
//! module for why there are two).

use std::any::Any;
use std::fmt;
use std::hash::{Hash, Hasher};

/// How a filesystem finds one of its entries again: its own identity for it (an inode
/// number on ext and XFS; a directory entry's first cluster, size and flags on FAT; a file
/// record and stream on NTFS). Each filesystem has its own type, the `Handle` of its
/// [`FileView`](super::FileView).
pub trait FileHandle: Clone + fmt::Debug + Eq + Hash + Send + Sync + 'static {
    /// Whether the entry still leads to content: false for a deleted name whose inode
    /// number is gone (ext), which is all there is of it (see
    /// [`Entry::name_only`](super::Entry::name_only)).
    fn has_content(&self) -> bool {
        true
    }
}

/// The handle of an entry read through `&dyn Files`: some filesystem's [`FileHandle`],
/// its type erased. Only the [`Files`](super::Files) adapter of a
/// [`FileView`](super::FileView) makes one, and it turns it back into its own type; it
/// cannot be made outside this crate, so an [`Entry`](super::Entry) always comes from a
/// filesystem's listing.
#[derive(Debug)]
pub struct AnyHandle(Box<dyn DynHandle>);

/// [`FileHandle`] in a form that can live behind a pointer.
trait DynHandle: Any + fmt::Debug + Send + Sync {
    fn clone_box(&self) -> Box<dyn DynHandle>;
    fn eq_dyn(&self, other: &dyn DynHandle) -> bool;
    fn hash_dyn(&self, state: &mut dyn Hasher);
    fn has_content_dyn(&self) -> bool;
}

impl<H: FileHandle> DynHandle for H {
    fn clone_box(&self) -> Box<dyn DynHandle> {
        Box::new(self.clone())
    }
    fn eq_dyn(&self, other: &dyn DynHandle) -> bool {
        (other as &dyn Any).downcast_ref::<H>() == Some(self)
    }
    fn hash_dyn(&self, mut state: &mut dyn Hasher) {
        self.hash(&mut state)
    }
    fn has_content_dyn(&self) -> bool {
        self.has_content()
    }
}

impl AnyHandle {
    pub(super) fn new<H: FileHandle>(handle: H) -> Self {
        AnyHandle(Box::new(handle))
    }

    /// The handle as filesystem type `H`'s, when it is one.
    pub(super) fn downcast_ref<H: FileHandle>(&self) -> Option<&H> {
        (&*self.0 as &dyn Any).downcast_ref::<H>()
    }
}

impl Clone for AnyHandle {
    fn clone(&self) -> Self {
        AnyHandle(self.0.clone_box())
    }
}

impl PartialEq for AnyHandle {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_dyn(&*other.0)
    }
}

impl Eq for AnyHandle {}

impl Hash for AnyHandle {
    fn hash<S: Hasher>(&self, state: &mut S) {
        self.0.hash_dyn(state)
    }
}

impl FileHandle for AnyHandle {
    fn has_content(&self) -> bool {
        self.0.has_content_dyn()
    }
}
