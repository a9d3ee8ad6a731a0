//! A machine's guest filesystems as a read-only FUSE mount (`diskray mount`): the root
//! holds `disk.raw`, the whole disk (the first disk's bytes followed by the next disks'),
//! and one directory per volume whose files diskray can list, named `p1`, `p2`… by
//! partition index (`p0` for a filesystem on the whole disk) or `VG-LV` for a logical
//! volume. Files are read through the same file readers `ls` and `cat` use.
//!
//! Why FUSE through `fuser` (0.16, without libfuse: it mounts with `fusermount3`): it is
//! the maintained pure-Rust FUSE library, and its synchronous API lets the filesystem
//! borrow the disk and the opened filesystems instead of owning them.
//!
//! A file is read whole when it is opened (into memory up to [`MAX_IN_MEMORY`], else into
//! an unnamed temporary file), because the file readers stream a file from its start
//! (compressed NTFS runs, FAT chains, inline data) rather than serve random offsets.

use diskray_core::{Error, Result, VirtualDisk};
use diskray_guestfs::files::{Entry, FileType, Files};
use diskray_layout::{analyze_machine, Machine, Volume};
use fuser::{
    FileAttr, Filesystem, MountOption, ReplyAttr, ReplyData, ReplyDirectory, ReplyEntry, ReplyOpen,
    Request,
};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Largest file held in memory while it is open; larger ones go to a temporary file.
pub const MAX_IN_MEMORY: u64 = 64 << 20;

/// How long the kernel may cache what we answer: the mount never changes.
const TTL: Duration = Duration::from_secs(3600);

/// The inode of the root directory (FUSE's).
const ROOT: u64 = 1;
/// The inode of `disk.raw`.
const DISK_RAW: u64 = 2;

/// What an inode is.
enum Node {
    /// The mount's root.
    Root,
    /// The whole disk.
    DiskRaw,
    /// The root directory of volume `vol`.
    VolumeRoot { vol: usize, entry: Entry },
    /// A file, directory or link of volume `vol`.
    Entry { vol: usize, entry: Entry },
}

/// An open file's content.
enum Content {
    Memory(Vec<u8>),
    Spilled(std::fs::File),
}

/// The filesystem the kernel talks to.
struct GuestFs<'a> {
    disk: &'a dyn VirtualDisk,
    volumes: Vec<(String, &'a dyn Files)>,
    /// Inode `n` is `nodes[n - 1]`.
    nodes: Vec<Node>,
    /// (directory inode, name) → inode, so that a name keeps its inode.
    names: HashMap<(u64, Vec<u8>), u64>,
    /// A directory's children, listed once.
    children: HashMap<u64, Vec<u64>>,
    open: HashMap<u64, Content>,
    next_fh: u64,
    /// Mount time: the times of the synthetic directories.
    mounted: SystemTime,
}

impl<'a> GuestFs<'a> {
    fn node(&self, ino: u64) -> Option<&Node> {
        self.nodes.get(usize::try_from(ino).ok()?.checked_sub(1)?)
    }

    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let (kind, size, mtime) = match self.node(ino)? {
            Node::Root => (fuser::FileType::Directory, 0, self.mounted),
            Node::DiskRaw => (
                fuser::FileType::RegularFile,
                self.disk.capacity(),
                self.mounted,
            ),
            Node::VolumeRoot { entry, .. } | Node::Entry { entry, .. } => {
                let kind = match entry.kind {
                    FileType::Dir => fuser::FileType::Directory,
                    FileType::Symlink => fuser::FileType::Symlink,
                    _ => fuser::FileType::RegularFile,
                };
                let mtime = entry.mtime.map_or(UNIX_EPOCH, |t| {
                    let nsec = Duration::from_nanos(entry.mtime_nsec as u64);
                    if t >= 0 {
                        UNIX_EPOCH + Duration::from_secs(t as u64) + nsec
                    } else {
                        UNIX_EPOCH - Duration::from_secs(t.unsigned_abs()) + nsec
                    }
                });
                (kind, entry.size, mtime)
            }
        };
        let perm = match kind {
            fuser::FileType::Directory => 0o555,
            fuser::FileType::Symlink => 0o777,
            _ => 0o444,
        };
        Some(FileAttr {
            ino,
            size,
            blocks: size.div_ceil(512),
            atime: mtime,
            mtime,
            ctime: mtime,
            crtime: mtime,
            kind,
            perm,
            nlink: if kind == fuser::FileType::Directory {
                2
            } else {
                1
            },
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    /// Adds (or finds) the inode of `name` in directory `dir`.
    fn intern(&mut self, dir: u64, name: &[u8], node: Node) -> u64 {
        let key = (dir, name.to_vec());
        if let Some(&ino) = self.names.get(&key) {
            return ino;
        }
        self.nodes.push(node);
        let ino = self.nodes.len() as u64;
        self.names.insert(key, ino);
        ino
    }

    /// The children of directory `dir`, listed on first use.
    fn list(&mut self, dir: u64) -> std::result::Result<Vec<u64>, libc::c_int> {
        if let Some(c) = self.children.get(&dir) {
            return Ok(c.clone());
        }
        let (vol, entry) = match self.node(dir) {
            Some(Node::Root) => {
                let mut out = vec![DISK_RAW];
                out.extend(3..3 + self.volumes.len() as u64);
                return Ok(out);
            }
            Some(Node::VolumeRoot { vol, entry }) | Some(Node::Entry { vol, entry })
                if entry.kind == FileType::Dir =>
            {
                (*vol, entry.clone())
            }
            Some(_) => return Err(libc::ENOTDIR),
            None => return Err(libc::ENOENT),
        };
        let files = self.volumes[vol].1;
        let listed = files.read_dir(&entry).map_err(|e| {
            eprintln!("diskray: {e}");
            libc::EIO
        })?;
        let mut out = Vec::new();
        for e in listed {
            let name = e.name_bytes().to_vec();
            if e.deleted || name == b"." || name == b".." || name.is_empty() || name.contains(&b'/')
            {
                continue;
            }
            out.push(self.intern(dir, &name, Node::Entry { vol, entry: e }));
        }
        self.children.insert(dir, out.clone());
        Ok(out)
    }

    fn name_of(&self, ino: u64) -> Vec<u8> {
        match self.node(ino) {
            Some(Node::DiskRaw) => b"disk.raw".to_vec(),
            Some(Node::VolumeRoot { vol, .. }) => self.volumes[*vol].0.as_bytes().to_vec(),
            Some(Node::Entry { entry, .. }) => entry.name_bytes().to_vec(),
            _ => Vec::new(),
        }
    }

    /// A file's content, read whole.
    fn read_whole(&self, vol: usize, entry: &Entry) -> Result<Content> {
        let files = self.volumes[vol].1;
        if entry.size <= MAX_IN_MEMORY {
            let mut buf = Vec::with_capacity(entry.size as usize);
            files.read_file(entry, &mut buf)?;
            return Ok(Content::Memory(buf));
        }
        let mut f =
            tempfile::tempfile().map_err(|e| Error::io(Path::new("temporary file"), 0, e))?;
        files.read_file(entry, &mut f)?;
        f.flush()
            .map_err(|e| Error::io(Path::new("temporary file"), 0, e))?;
        Ok(Content::Spilled(f))
    }
}

fn errno(e: &Error) -> libc::c_int {
    eprintln!("diskray: {e}");
    libc::EIO
}

impl Filesystem for GuestFs<'_> {
    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        let children = match self.list(parent) {
            Ok(c) => c,
            Err(e) => return reply.error(e),
        };
        let found = children
            .into_iter()
            .find(|&c| self.name_of(c) == name.as_bytes());
        match found.and_then(|ino| self.attr(ino)) {
            Some(a) => reply.entry(&TTL, &a, 0),
            None => reply.error(libc::ENOENT),
        }
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        match self.attr(ino) {
            Some(a) => reply.attr(&TTL, &a),
            None => reply.error(libc::ENOENT),
        }
    }

    fn readlink(&mut self, _req: &Request<'_>, ino: u64, reply: ReplyData) {
        match self.node(ino) {
            Some(Node::Entry { vol, entry }) if entry.kind == FileType::Symlink => {
                let files = self.volumes[*vol].1;
                let target = files
                    .link_path(entry)
                    .or_else(|| entry.target.as_ref().map(|t| t.as_bytes().to_vec()));
                match target {
                    Some(t) => reply.data(&t),
                    None => reply.error(libc::EIO),
                }
            }
            _ => reply.error(libc::EINVAL),
        }
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, flags: i32, reply: ReplyOpen) {
        if flags & libc::O_ACCMODE != libc::O_RDONLY {
            return reply.error(libc::EROFS);
        }
        let content = match self.node(ino) {
            Some(Node::DiskRaw) => None,
            Some(Node::Entry { vol, entry }) if entry.kind == FileType::File => {
                match self.read_whole(*vol, entry) {
                    Ok(c) => Some(c),
                    Err(e) => return reply.error(errno(&e)),
                }
            }
            Some(_) => return reply.error(libc::EISDIR),
            None => return reply.error(libc::ENOENT),
        };
        self.next_fh += 1;
        if let Some(c) = content {
            self.open.insert(self.next_fh, c);
        }
        reply.opened(self.next_fh, 0);
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        let Ok(offset) = u64::try_from(offset) else {
            return reply.error(libc::EINVAL);
        };
        if ino == DISK_RAW {
            let cap = self.disk.capacity();
            let len = (size as u64).min(cap.saturating_sub(offset)) as usize;
            let mut buf = vec![0u8; len];
            return match self.disk.read_at(&mut buf, offset) {
                Ok(()) => reply.data(&buf),
                Err(e) => reply.error(errno(&e)),
            };
        }
        match self.open.get_mut(&fh) {
            Some(Content::Memory(b)) => {
                let start = (offset as usize).min(b.len());
                let end = start.saturating_add(size as usize).min(b.len());
                reply.data(&b[start..end]);
            }
            Some(Content::Spilled(f)) => {
                let mut buf = vec![0u8; size as usize];
                let r = f.seek(SeekFrom::Start(offset)).and_then(|_| {
                    let mut n = 0;
                    while n < buf.len() {
                        match f.read(&mut buf[n..])? {
                            0 => break,
                            k => n += k,
                        }
                    }
                    Ok(n)
                });
                match r {
                    Ok(n) => reply.data(&buf[..n]),
                    Err(_) => reply.error(libc::EIO),
                }
            }
            None => reply.error(libc::EBADF),
        }
    }

    fn release(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        _flags: i32,
        _lock_owner: Option<u64>,
        _flush: bool,
        reply: fuser::ReplyEmpty,
    ) {
        self.open.remove(&fh);
        reply.ok();
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        let children = match self.list(ino) {
            Ok(c) => c,
            Err(e) => return reply.error(e),
        };
        let mut all: Vec<(u64, fuser::FileType, Vec<u8>)> = vec![
            (ino, fuser::FileType::Directory, b".".to_vec()),
            (ino, fuser::FileType::Directory, b"..".to_vec()),
        ];
        for c in children {
            let kind = self
                .attr(c)
                .map_or(fuser::FileType::RegularFile, |a| a.kind);
            all.push((c, kind, self.name_of(c)));
        }
        for (i, (child, kind, name)) in all.into_iter().enumerate().skip(offset.max(0) as usize) {
            if reply.add(child, i as i64 + 1, kind, OsStr::from_bytes(&name)) {
                break;
            }
        }
        reply.ok();
    }
}

/// The directory name of a volume in the mount: `p1`, `d1-p1` on the second disk,
/// `VG-LV`.
fn dir_name(v: &Volume) -> String {
    match (&v.lv, v.disk) {
        (Some(lv), _) => lv.replace('/', "-"),
        (None, 0) => format!("p{}", v.index),
        (None, d) => format!("d{d}-p{}", v.index),
    }
}

/// Opened volumes: each one's directory name and files.
type Opened<'a> = [(String, &'a dyn Files)];

/// Opens the files of every volume of `vols` (those diskray cannot list are left out with
/// a warning on stderr), then runs `run` with all of them open.
fn nest(
    m: &Machine,
    vols: &[&Volume],
    opened: &Opened<'_>,
    run: &mut dyn FnMut(&Opened<'_>) -> Result<()>,
) -> Result<()> {
    let Some((v, rest)) = vols.split_first() else {
        return run(opened);
    };
    let label = &m.disks()[v.disk].label;
    let disk: &dyn VirtualDisk = m;
    v.with_slice(disk, label, |slice| {
        let fs = diskray_guestfs::any::open(slice)?;
        match fs.as_ref().and_then(|fs| fs.files()) {
            Some(files) => {
                let mut next = opened.to_vec();
                next.push((dir_name(v), files));
                nest(m, rest, &next, run)
            }
            None => nest(m, rest, opened, run),
        }
    })
}

/// Mounts the guest filesystems of `m` read-only on `dir` and serves them until the mount
/// is unmounted (`umount DIR`, `fusermount3 -u DIR`) or the process is asked to end
/// (SIGINT, SIGTERM), which unmounts it. `ready` is called once the mount is in place.
pub fn mount(m: &Machine, dir: &Path, ready: &dyn Fn(&[String])) -> Result<()> {
    let layout = analyze_machine(m)?;
    let vols: Vec<&Volume> = layout
        .volumes
        .iter()
        .filter(|v| v.error.is_none() && v.allocation.is_some())
        .collect();
    nest(m, &vols, &[], &mut |opened| {
        let mut nodes = vec![Node::Root, Node::DiskRaw];
        let mut names = HashMap::new();
        names.insert((ROOT, b"disk.raw".to_vec()), DISK_RAW);
        for (i, (name, files)) in opened.iter().enumerate() {
            let root = files.root()?;
            nodes.push(Node::VolumeRoot {
                vol: i,
                entry: root,
            });
            names.insert((ROOT, name.as_bytes().to_vec()), 3 + i as u64);
        }
        let fs = GuestFs {
            disk: m,
            volumes: opened.to_vec(),
            nodes,
            names,
            children: HashMap::new(),
            open: HashMap::new(),
            next_fh: 0,
            mounted: SystemTime::now(),
        };
        serve(
            fs,
            dir,
            &opened.iter().map(|o| o.0.clone()).collect::<Vec<_>>(),
            ready,
        )
    })
}

/// Mounts `fs` on `dir` and serves it on this thread until it is unmounted.
fn serve(fs: GuestFs<'_>, dir: &Path, names: &[String], ready: &dyn Fn(&[String])) -> Result<()> {
    let options = [
        MountOption::RO,
        MountOption::FSName("diskray".into()),
        MountOption::Subtype("diskray".into()),
        MountOption::NoDev,
        MountOption::NoSuid,
    ];
    let failed = |e: std::io::Error| Error::Open {
        path: dir.to_path_buf(),
        source: e,
    };
    // SIGINT and SIGTERM are taken by a thread that unmounts: blocked here first, so that
    // every thread started later (the kernel's replies are on this one) inherits that.
    let signals = block_signals();
    let mut session = fuser::Session::new(fs, dir, &options).map_err(failed)?;
    let mut unmounter = session.unmount_callable();
    std::thread::spawn(move || {
        let mut sig: libc::c_int = 0;
        // SAFETY: sigwait reads the set and writes the signal number it was given.
        unsafe { libc::sigwait(&signals, &mut sig) };
        let _ = unmounter.unmount();
    });
    ready(names);
    session.run().map_err(failed)
}

/// Blocks SIGINT and SIGTERM in this thread (and those it starts), returning their set.
fn block_signals() -> libc::sigset_t {
    // SAFETY: the set is initialised by sigemptyset before use; pthread_sigmask reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}
