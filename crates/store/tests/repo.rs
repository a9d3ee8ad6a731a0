//! The repository on its own: publishing, damage detection (every byte of a chunk, index,
//! kept file), quarantine, gc, the lock, and refusal of unknown formats.

use diskray_core::{ByteRange, RangeSet};
use diskray_store::lock::Mode;
use diskray_store::verify::verify;
use diskray_store::{Digest, FixedIndex, ImageDescription, ImageWriter, Repo, ZERO_DIGEST};
use std::path::Path;

const CS: u64 = 64 << 10;

fn description(name: &str, capacity: u64) -> ImageDescription {
    ImageDescription {
        name: name.into(),
        unix_micros: 0,
        capacity,
        chunk_size: CS,
        parent: None,
        change_id: None,
        source: Default::default(),
        stats: Default::default(),
        volumes: Vec::new(),
    }
}

/// Publishes an image of `chunks` (each `CS` bytes); returns its id and digests.
fn publish(repo: &Repo, name: &str, chunks: &[Vec<u8>], micros: u64) -> (String, Vec<Digest>) {
    let cap = CS * chunks.len() as u64;
    let mut index = FixedIndex::zeros(cap, CS).unwrap();
    let mut staged = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        if c.iter().any(|&b| b != 0) {
            let d = repo.chunk_digest(c);
            staged.extend(repo.stage_chunk(&d, c).unwrap().map(|(s, _)| s));
            index.digests[i] = d;
        }
    }
    repo.publish_staged(staged).unwrap();
    let w = ImageWriter::create(repo, micros).unwrap();
    let mut m = description(name, cap);
    m.unix_micros = micros;
    let kept: RangeSet = [ByteRange::new(0, cap)].into_iter().collect();
    let m = w.commit(repo, &index, &kept, m).unwrap();
    (m.image, index.digests)
}

fn chunk(seed: u8) -> Vec<u8> {
    (0..CS as usize)
        .map(|i| (i as u8).wrapping_mul(seed) ^ seed)
        .collect()
}

#[test]
fn verify_finds_every_flipped_byte_and_names_the_images() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::open_or_create(&dir.path().join("r"), CS).unwrap();
    let (a, da) = publish(&repo, "a", &[chunk(3), vec![0; CS as usize], chunk(5)], 1);
    let (b, _) = publish(&repo, "b", &[chunk(5), chunk(9)], 2);
    let clean = verify(&repo, &[], &|_, _| {}).unwrap();
    assert_eq!(clean.images_checked, 2);
    assert_eq!(clean.chunks_checked, 3);
    assert!(clean.damaged_chunks.is_empty() && clean.damaged_images.is_empty());

    // chunk(5) is shared by both images: damage in it hurts both.
    let shared = da[2];
    let path = repo.chunk_path(&shared);
    let good = std::fs::read(&path).unwrap();
    for at in [0usize, 9, 13, 20, good.len() / 2, good.len() - 1] {
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        std::fs::write(&path, &bad).unwrap();
        let r = verify(&repo, &[repo.find_image(&a).unwrap()], &|_, _| {}).unwrap();
        assert_eq!(r.damaged_chunks.len(), 1, "flip at {at}");
        assert_eq!(r.damaged_chunks[0].digest, shared);
        let names: Vec<&String> = r.damaged_images.keys().collect();
        assert_eq!(names.len(), 2, "both images need it: {names:?}");
        assert!(r.damaged_images.contains_key(&a) && r.damaged_images.contains_key(&b));
        // Set aside: the chunk is gone under its name, kept as .bad.
        assert!(!repo.has_chunk(&shared));
        let mut bad_name = path.clone().into_os_string();
        bad_name.push(".bad");
        assert!(Path::new(&bad_name).exists());
        std::fs::write(&path, &good).unwrap();
    }
    // Missing is damage too.
    std::fs::remove_file(repo.chunk_path(&da[0])).unwrap();
    let r = verify(&repo, &[], &|_, _| {}).unwrap();
    assert_eq!(r.damaged_chunks.len(), 1);
    assert!(r.damaged_chunks[0].reason.contains("missing"));
    assert!(r.damaged_images.contains_key(&a) && !r.damaged_images.contains_key(&b));
}

#[test]
fn damaged_index_or_kept_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::open_or_create(&dir.path().join("r"), CS).unwrap();
    let (a, _) = publish(&repo, "a", &[chunk(3)], 1);
    let entry = repo.find_image(&a).unwrap();
    for file in ["index", "kept"] {
        let p = entry.dir.join(file);
        let good = std::fs::read(&p).unwrap();
        let mut bad = good.clone();
        bad[good.len() / 2] ^= 1;
        std::fs::write(&p, &bad).unwrap();
        let r = verify(&repo, &[], &|_, _| {}).unwrap();
        assert!(r.damaged_images.contains_key(&a), "{file}");
        assert!(
            r.damaged_images[&a].contains("damaged") || r.damaged_images[&a].contains("checksum")
        );
        std::fs::write(&p, &good).unwrap();
    }
    // A manifest that is not JSON: the image is skipped with a warning, gc refuses.
    std::fs::write(entry.dir.join("manifest.json"), b"{not json").unwrap();
    let (images, warnings) = repo.images().unwrap();
    assert!(images.is_empty());
    assert_eq!(warnings.len(), 1);
    assert!(
        diskray_store::gc::gc(&repo).is_err(),
        "gc must not delete with an unreadable image"
    );
}

#[test]
fn gc_deletes_only_unreferenced_chunks_and_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::open_or_create(&dir.path().join("r"), CS).unwrap();
    let (_, da) = publish(&repo, "a", &[chunk(3), chunk(4)], 1);
    let orphan = chunk(77);
    let od = Digest::of(&orphan);
    let (staged, _) = repo.stage_chunk(&od, &orphan).unwrap().unwrap();
    repo.publish_staged(vec![staged]).unwrap();
    // An interrupted backup's chunk, written but never published.
    let unpublished = chunk(78);
    let staged = repo.stage_chunk(&Digest::of(&unpublished), &unpublished);
    drop(staged);
    let r = diskray_store::gc::gc(&repo).unwrap();
    assert_eq!(r.chunks_removed, 1);
    assert_eq!(r.chunks_kept, 2);
    assert_eq!(r.leftovers_removed, 1);
    assert!(!repo.has_chunk(&od));
    assert!(da.iter().all(|d| repo.has_chunk(d)));
    assert!(verify(&repo, &[], &|_, _| {})
        .unwrap()
        .damaged_chunks
        .is_empty());
}

#[test]
fn gc_lock_excludes_writers() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::open_or_create(&dir.path().join("r"), CS).unwrap();
    let shared1 = repo.lock(Mode::Shared, None).unwrap();
    let shared2 = repo.lock(Mode::Shared, None).unwrap();
    assert!(repo.lock(Mode::Exclusive, None).is_err());
    drop(shared1);
    assert!(repo.lock(Mode::Exclusive, None).is_err());
    drop(shared2);
    let ex = repo.lock(Mode::Exclusive, None).unwrap();
    assert!(repo.lock(Mode::Shared, None).is_err());
    drop(ex);
}

#[test]
fn unknown_versions_and_non_repositories_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("r");
    Repo::open_or_create(&root, CS).unwrap();
    let cfg = std::fs::read_to_string(root.join("config")).unwrap();
    std::fs::write(
        root.join("config"),
        cfg.replace("\"version\": 3", "\"version\": 4"),
    )
    .unwrap();
    let e = Repo::open(&root).unwrap_err().to_string();
    assert!(e.contains("version 4"), "{e}");
    std::fs::write(root.join("config"), "garbage").unwrap();
    assert!(Repo::open(&root).is_err());
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("x"), "").unwrap();
    let e = Repo::open_or_create(&other, CS).unwrap_err().to_string();
    assert!(e.contains("not a diskray repository"), "{e}");
    assert!(Repo::open_or_create(&dir.path().join("bad"), 3 << 20).is_err());
}

#[test]
fn image_lookup_by_id_name_and_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::open_or_create(&dir.path().join("r"), CS).unwrap();
    let (a1, _) = publish(&repo, "a", &[chunk(3)], 1_000_000);
    let (a2, _) = publish(&repo, "a", &[chunk(4)], 2_000_000);
    assert_eq!(repo.find_image("a").unwrap().manifest.image, a2);
    assert_eq!(repo.find_image(&a1).unwrap().manifest.image, a1);
    assert_eq!(
        repo.find_image(&a1[..a1.len() - 2]).unwrap().manifest.image,
        a1
    );
    assert!(repo.find_image("1970").is_err(), "ambiguous prefix");
    assert!(repo.find_image("nope").is_err());
    assert_eq!(ZERO_DIGEST, Digest::default());
}
