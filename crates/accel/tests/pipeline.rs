//! The accelerator on in-memory disks whose every byte is known: no filesystem, so the
//! whole disk is "unknown" and kept. The ground truth is the disk itself; the read counts
//! are checked against the chunks the change map touches.

use diskray_accel::{backup, backup_machine, BackupOutcome, BackupRequest, ChangeSource};
use diskray_core::{ByteRange, MemDisk, RangeSet, VirtualDisk};
use diskray_store::{ImageDisk, Repo};
use std::path::Path;

const CS: u64 = 64 << 10;

fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn run(
    repo: &Repo,
    disk: &MemDisk,
    changed: Option<RangeSet>,
    rescan: bool,
    change_id: Option<&str>,
) -> BackupOutcome {
    run_whole(repo, disk, changed, rescan, change_id, false)
}

/// [`run`], reading changed chunks whole when `whole_chunks`.
fn run_whole(
    repo: &Repo,
    disk: &MemDisk,
    changed: Option<RangeSet>,
    rescan: bool,
    change_id: Option<&str>,
    whole_chunks: bool,
) -> BackupOutcome {
    backup(BackupRequest {
        disk,
        label: Path::new("mem"),
        repo,
        name: "m",
        changed,
        change_id,
        rescan,
        whole_chunks,
        at: None,
        keep_deleted: false,
        keep_swap: false,
        chunk_size: Some(CS),
        source: Default::default(),
        progress: &|_, _| {},
        on_lock_wait: None,
    })
    .expect("backup succeeds")
}

fn restored(repo: &Repo, image: &str) -> Vec<u8> {
    let entry = repo.find_image(image).unwrap();
    let disk = ImageDisk::new(repo.clone(), repo.read_index(&entry).unwrap());
    let mut buf = vec![0u8; disk.capacity() as usize];
    disk.read_at(&mut buf, 0).unwrap();
    buf
}

fn set(ranges: &[(u64, u64)]) -> RangeSet {
    ranges.iter().map(|&(s, l)| ByteRange::new(s, l)).collect()
}

/// Disk: 40 chunks of noise with zero chunks at 10..20, a partial last chunk.
fn base_disk() -> MemDisk {
    let len = 40 * CS as usize + 1000;
    let mut b = noise(len, 7);
    b[10 * CS as usize..20 * CS as usize].fill(0);
    MemDisk::new(b)
}

#[test]
fn full_then_cbt_reads_only_marked_chunks_and_restores_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::open_or_create(&dir.path().join("r"), CS).unwrap();
    let mut disk = base_disk();
    let full = run(&repo, &disk, None, false, None);
    let s = &full.stats;
    assert_eq!(s.change_source, Some(ChangeSource::Full));
    assert_eq!(s.read_from_source, disk.capacity());
    assert_eq!(s.zero_chunks, 10);
    assert_eq!(s.new_chunks, 31);
    assert_eq!(
        restored(&repo, &full.manifest.image),
        disk.bytes_mut().clone()
    );

    // Change 3 bytes in chunk 2, 100 bytes across chunks 5/6, and the partial tail.
    let b = disk.bytes_mut();
    b[2 * CS as usize + 5] ^= 0xff;
    for x in &mut b[6 * CS as usize - 50..6 * CS as usize + 50] {
        *x ^= 0x55;
    }
    let last = b.len() - 3;
    b[last] ^= 1;
    let cap = disk.capacity();
    let changed = set(&[(2 * CS + 5, 1), (6 * CS - 50, 100), (cap - 3, 1)]);
    // Whole chunks, into a second repository holding the same full image: chunks 2, 5, 6
    // (64 KiB each) and the 1000-byte tail chunk are read.
    let dir2 = tempfile::tempdir().unwrap();
    let repo2 = Repo::open_or_create(&dir2.path().join("r"), CS).unwrap();
    run(&repo2, &base_disk(), None, false, None);
    let whole = run_whole(&repo2, &disk, Some(changed.clone()), false, None, true);
    assert_eq!(whole.stats.read_from_source, 3 * CS + 1000);
    assert_eq!(whole.stats.from_parent, 0);
    assert_eq!(restored(&repo2, &whole.manifest.image), *disk.bytes_mut());
    // Patched (the default): only the changed bytes are read, the rest of those chunks
    // comes from the previous image's chunks.
    let inc = run(&repo, &disk, Some(changed), false, None);
    let s = &inc.stats;
    assert_eq!(s.change_source, Some(ChangeSource::Cbt));
    assert_eq!(inc.manifest.parent.as_deref(), Some(&*full.manifest.image));
    assert_eq!(s.read_from_source, 1 + 100 + 1);
    assert_eq!(s.from_parent, 3 * CS + 1000 - s.read_from_source);
    assert_eq!(s.new_chunks, 4);
    assert_eq!(s.changed_chunks, 4);
    assert_eq!(s.reused_chunks, 27);
    assert_eq!(
        s.read_from_source + s.skipped_unchanged + s.skipped_unallocated + s.skipped_zero,
        cap
    );
    assert_eq!(
        restored(&repo, &inc.manifest.image),
        disk.bytes_mut().clone()
    );
    // The older image is untouched.
    assert_eq!(
        restored(&repo, &full.manifest.image),
        base_disk().bytes_mut().clone()
    );
}

#[test]
fn a_change_the_map_missed_is_found_by_rescan() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::open_or_create(&dir.path().join("r"), CS).unwrap();
    let mut disk = base_disk();
    run(&repo, &disk, None, false, None);
    disk.bytes_mut()[30 * CS as usize + 7] ^= 1; // not in the map below
    disk.bytes_mut()[3 * CS as usize] ^= 1;
    let map = set(&[(3 * CS, 1)]);
    let inc = run(&repo, &disk, Some(map), false, None);
    let wrong = restored(&repo, &inc.manifest.image);
    assert_ne!(wrong, *disk.bytes_mut(), "the miss is really missed");
    assert_eq!(
        wrong[30 * CS as usize + 7],
        base_disk().bytes_mut()[30 * CS as usize + 7]
    );
    // A forced rescan with an empty map (nothing changed since the last image).
    let re = run(&repo, &disk, Some(RangeSet::new()), true, None);
    assert_eq!(re.stats.change_source, Some(ChangeSource::Rescan));
    assert_eq!(re.stats.cbt_missed_chunks, Some(1));
    assert_eq!(re.stats.changed_chunks, 1);
    assert_eq!(re.stats.new_chunks, 1);
    assert_eq!(restored(&repo, &re.manifest.image), *disk.bytes_mut());
}

#[test]
fn grown_disk_and_broken_change_ids_fall_back_to_rescan() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::open_or_create(&dir.path().join("r"), CS).unwrap();
    let mut disk = base_disk();
    run(&repo, &disk, None, false, Some("52 90 37 ee-b3 12/4"));
    // Same epoch, lower sequence: untrustworthy.
    let back = run(
        &repo,
        &disk,
        Some(RangeSet::new()),
        false,
        Some("52 90 37 ee-b3 12/3"),
    );
    assert_eq!(back.stats.change_source, Some(ChangeSource::Rescan));
    assert!(back
        .warnings
        .iter()
        .map(ToString::to_string)
        .any(|w| w.contains("backwards")));
    // New epoch.
    let epoch = run(&repo, &disk, Some(RangeSet::new()), false, Some("aa bb/1"));
    assert_eq!(epoch.stats.change_source, Some(ChangeSource::Rescan));
    assert!(epoch
        .warnings
        .iter()
        .map(ToString::to_string)
        .any(|w| w.contains("epoch")));
    // Grown by 3 chunks of noise: everything is read, the new tail is in the image.
    disk.bytes_mut().extend(noise(3 * CS as usize, 99));
    let grown = run(&repo, &disk, Some(RangeSet::new()), false, Some("aa bb/2"));
    assert_eq!(grown.stats.change_source, Some(ChangeSource::Rescan));
    assert_eq!(grown.stats.capacity, disk.capacity());
    assert_eq!(restored(&repo, &grown.manifest.image), *disk.bytes_mut());
}

#[test]
fn a_missing_parent_chunk_is_read_again_instead_of_linked() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::open_or_create(&dir.path().join("r"), CS).unwrap();
    let disk = base_disk();
    let full = run(&repo, &disk, None, false, None);
    let index = repo
        .read_index(&repo.find_image(&full.manifest.image).unwrap())
        .unwrap();
    let victim = index.digests[25];
    repo.quarantine_chunk(&victim).unwrap();
    let inc = run(&repo, &disk, Some(RangeSet::new()), false, None);
    assert_eq!(inc.stats.change_source, Some(ChangeSource::Cbt));
    assert_eq!(inc.stats.healed_chunks, 1);
    assert_eq!(inc.stats.read_from_source, CS);
    assert!(repo.has_chunk(&victim));
    let mut want = base_disk();
    assert_eq!(restored(&repo, &inc.manifest.image), *want.bytes_mut());
    // The healed chunk serves the older image too.
    assert_eq!(restored(&repo, &full.manifest.image), *want.bytes_mut());
}

/// Alters chunk `i`'s file of `image` behind the repository's back (its digest no longer
/// holds) and returns that chunk's digest.
fn damage_chunk(repo: &Repo, image: &BackupOutcome, i: usize) -> diskray_store::Digest {
    let index = repo
        .read_index(&repo.find_image(&image.manifest.image).unwrap())
        .unwrap();
    let victim = index.digests[i];
    let path = repo.chunk_path(&victim);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    victim
}

/// A changed chunk is stored as a patch over its parent's chunk without decoding it (as
/// an unchanged chunk is linked without decoding it): a damaged parent copy is found by
/// verify, which sets it aside, and the next backup reads the chunk whole again.
#[test]
fn a_patch_over_a_damaged_parent_chunk_is_healed_after_verify() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::open_or_create(&dir.path().join("r"), CS).unwrap();
    let mut disk = base_disk();
    let full = run(&repo, &disk, None, false, None);
    let victim = damage_chunk(&repo, &full, 25);
    disk.bytes_mut()[25 * CS as usize + 9] ^= 0xff;
    disk.bytes_mut()[3 * CS as usize + 9] ^= 0xff;
    let changed = set(&[(25 * CS + 9, 1), (3 * CS + 9, 1)]);
    let inc = run(&repo, &disk, Some(changed), false, None);
    assert_eq!(inc.stats.read_from_source, 2);
    assert_eq!(inc.stats.patched_chunks, 2);
    let patched = repo
        .read_index(&repo.find_image(&inc.manifest.image).unwrap())
        .unwrap();
    assert_eq!(patched.base_of(25), Some(victim));
    let report = diskray_store::verify::verify(&repo, &[], &|_, _| {}).unwrap();
    assert_eq!(report.damaged_chunks.len(), 1);
    assert_eq!(report.damaged_chunks[0].digest, victim);
    assert_eq!(report.damaged_images.len(), 2, "{report:?}");
    // The next backup finds the base missing and reads chunk 25 whole.
    let healed = run(&repo, &disk, Some(RangeSet::new()), false, None);
    assert_eq!(healed.stats.healed_chunks, 1);
    assert_eq!(healed.stats.read_from_source, CS);
    assert_eq!(healed.stats.patched_chunks, 1, "chunk 3's patch is linked");
    assert_eq!(restored(&repo, &healed.manifest.image), *disk.bytes_mut());
}

/// A chunk rewritten whole is made from the bytes read alone, without its parent's copy:
/// a damaged copy neither needs healing nor is read. A chunk three quarters rewritten
/// (too much for a patch) is made over its parent's copy and stored whole.
#[test]
fn a_chunk_rewritten_whole_is_stored_without_reading_its_parent_copy() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::open_or_create(&dir.path().join("r"), CS).unwrap();
    let mut disk = base_disk();
    let full = run(&repo, &disk, None, false, None);
    damage_chunk(&repo, &full, 25);
    let (c25, c4) = (25 * CS as usize, 4 * CS as usize);
    let part = 3 * CS as usize / 4;
    disk.bytes_mut()[c25..c25 + CS as usize].copy_from_slice(&noise(CS as usize, 99));
    disk.bytes_mut()[c4..c4 + part].copy_from_slice(&noise(part, 98));
    let changed = set(&[(25 * CS, CS), (4 * CS, part as u64)]);
    let inc = run(&repo, &disk, Some(changed), false, None);
    let s = &inc.stats;
    assert_eq!(s.healed_chunks, 0, "the damaged copy was not needed");
    assert_eq!(s.read_from_source, CS + part as u64);
    assert_eq!(s.patched_chunks, 0, "both too large for a patch");
    assert_eq!(s.new_chunks, 2);
    assert_eq!(restored(&repo, &inc.manifest.image), *disk.bytes_mut());
}

/// A disk whose reads of `from` bytes or more fail: analysis (partition and filesystem
/// probes, a few KiB each) succeeds, the backup's chunk reads do not.
struct FailsLargeReads {
    inner: MemDisk,
    from: usize,
}

impl VirtualDisk for FailsLargeReads {
    fn capacity(&self) -> u64 {
        self.inner.capacity()
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> diskray_core::Result<()> {
        if buf.len() >= self.from {
            return Err(diskray_core::Error::refused(
                Path::new("disk1"),
                format!("test: read of {} bytes at {offset} fails", buf.len()),
            ));
        }
        self.inner.read_at(buf, offset)
    }
    fn map(&self, range: ByteRange) -> diskray_core::Result<Vec<diskray_core::MapRange>> {
        self.inner.map(range)
    }
}

#[test]
fn a_machine_backup_that_fails_on_a_later_disk_leaves_no_image() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::open_or_create(dir.path(), CS).unwrap();
    let d0 = MemDisk::new(noise(4 * CS as usize, 1));
    let d1 = FailsLargeReads {
        inner: MemDisk::new(noise(4 * CS as usize, 2)),
        from: CS as usize,
    };
    let req = |disk: &'static dyn VirtualDisk, label: &'static str| BackupRequest {
        disk,
        label: Path::new(label),
        repo: &repo,
        name: "vm",
        changed: None,
        change_id: None,
        rescan: false,
        whole_chunks: false,
        at: None,
        keep_deleted: false,
        keep_swap: false,
        chunk_size: Some(CS),
        source: Default::default(),
        progress: &|_, _| {},
        on_lock_wait: None,
    };
    let (d0, d1): (&'static MemDisk, &'static FailsLargeReads) =
        (Box::leak(Box::new(d0)), Box::leak(Box::new(d1)));
    let err = backup_machine(vec![req(d0, "disk0"), req(d1, "disk1")])
        .expect_err("the second disk's reads fail");
    assert!(err.to_string().contains("disk1"), "{err}");
    let (images, _) = repo.images().unwrap();
    assert!(
        images.is_empty(),
        "the first disk's image was withdrawn: {:?}",
        images.iter().map(|i| &i.manifest.image).collect::<Vec<_>>()
    );
    // The same machine without the failure backs up whole.
    let d1_ok: &'static MemDisk = Box::leak(Box::new(MemDisk::new(noise(4 * CS as usize, 2))));
    let done = backup_machine(vec![req(d0, "disk0"), req(d1_ok, "disk1")]).unwrap();
    assert_eq!(done.images.len(), 2);
    assert_eq!(repo.images().unwrap().0.len(), 2);
}

/// Eight incrementals of scattered small changes, some over the same chunks, some into
/// zero chunks, one rewriting most of a chunk: every image restores to the disk as it was,
/// a changed chunk's patch always has a whole chunk as its base (the earlier patch is
/// merged, never stacked), a rescan finds nothing changed, and gc keeps the bases the
/// newest image needs after the older images are forgotten.
#[test]
fn chains_of_patches_restore_every_image_and_survive_gc() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::open_or_create(&dir.path().join("r"), CS).unwrap();
    let mut disk = base_disk();
    let mut images = vec![(
        run(&repo, &disk, None, false, None),
        disk.bytes_mut().clone(),
    )];
    let cap = disk.capacity();
    let mut x = 99u64;
    let mut next = |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    for round in 0..8u64 {
        let mut changed = Vec::new();
        for _ in 0..6 {
            // Chunks 0..4 and 12..14 (zeros at first) again and again.
            let chunk = [0, 1, 2, 3, 12, 13][next(6) as usize];
            let at = chunk * CS + next(CS - 600);
            let len = 1 + next(512);
            changed.push((at, len));
        }
        if round == 5 {
            changed.push((30 * CS + 100, CS - 200)); // most of chunk 30
        }
        let b = disk.bytes_mut();
        for &(at, len) in &changed {
            for (j, v) in b[at as usize..(at + len) as usize].iter_mut().enumerate() {
                *v = (round as u8 + 1).wrapping_mul(31).wrapping_add(j as u8) | 1;
            }
        }
        let inc = run(&repo, &disk, Some(set(&changed)), false, None);
        assert_eq!(
            inc.stats.read_from_source,
            set(&changed).bytes(),
            "round {round}"
        );
        assert!(inc.stats.patched_chunks > 0, "round {round}");
        images.push((inc, disk.bytes_mut().clone()));
        for (img, want) in &images {
            assert_eq!(restored(&repo, &img.manifest.image), *want, "round {round}");
        }
    }
    let (last, want) = images.last().unwrap();
    let index = repo
        .read_index(&repo.find_image(&last.manifest.image).unwrap())
        .unwrap();
    assert!(!index.patches.is_empty());
    assert!(index.base_of(30).is_none(), "chunk 30 stored whole");
    let first = repo
        .read_index(&repo.find_image(&images[0].0.manifest.image).unwrap())
        .unwrap();
    for (i, base) in &index.patches {
        assert_eq!(
            *base, first.digests[*i],
            "entry {i}: base is the full image's chunk"
        );
    }
    assert_eq!(cap, want.len() as u64);
    // Nothing changed since: a rescan links every chunk, patches included.
    let re = run(&repo, &disk, Some(RangeSet::new()), true, None);
    assert_eq!(re.stats.cbt_missed_chunks, Some(0));
    assert_eq!(re.stats.changed_chunks, 0);
    assert_eq!(re.stats.new_chunks, 0);
    assert_eq!(re.stats.patched_chunks, index.patches.len() as u64);
    // Only the newest image left: gc keeps the bases its patches need.
    let (all, _) = repo.images().unwrap();
    for e in &all[..all.len() - 1] {
        repo.forget(e).unwrap();
    }
    let gc = diskray_store::gc::gc(&repo).unwrap();
    assert!(gc.chunks_removed > 0);
    assert_eq!(restored(&repo, &re.manifest.image), *want);
    let report = diskray_store::verify::verify(&repo, &[], &|_, _| {}).unwrap();
    assert!(report.damaged_chunks.is_empty() && report.damaged_images.is_empty());
}
