//! An encrypted repository on its own: what is stored is sealed (no plaintext, no
//! SHA-256 names), damage anywhere is found, the password and the keys.

use diskray_core::{ByteRange, RangeSet};
use diskray_store::crypto::{KdfChoice, Password};
use diskray_store::verify::verify;
use diskray_store::{Digest, FixedIndex, ImageDescription, ImageWriter, Repo};
use sha2::{Digest as _, Sha256};
use std::path::Path;

const CS: u64 = 64 << 10;
/// Small Argon2 parameters: the tests run many derivations.
const FAST: KdfChoice = KdfChoice {
    memory_mib: 1,
    iterations: 1,
};

fn pw(s: &str) -> Password {
    Password::new(s.as_bytes().to_vec())
}

fn open(root: &Path, password: &str) -> diskray_core::Result<Repo> {
    Repo::open_with(root, &|| Ok(pw(password).into()))
}

fn description(name: &str, capacity: u64, micros: u64) -> ImageDescription {
    ImageDescription {
        name: name.into(),
        unix_micros: micros,
        capacity,
        chunk_size: CS,
        parent: None,
        change_id: None,
        source: Default::default(),
        stats: Default::default(),
        volumes: Vec::new(),
    }
}

/// Publishes an image of `chunks` as a backup does; returns its id and digests.
fn publish(repo: &Repo, name: &str, chunks: &[Vec<u8>], micros: u64) -> (String, Vec<Digest>) {
    let cap = CS * chunks.len() as u64;
    let mut index = FixedIndex::zeros(cap, CS).unwrap();
    let mut staged = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        let d = repo.chunk_digest(c);
        staged.extend(repo.stage_chunk(&d, c).unwrap().map(|(s, _)| s));
        index.digests[i] = d;
    }
    repo.publish_staged(staged).unwrap();
    let w = ImageWriter::create(repo, micros).unwrap();
    let kept: RangeSet = [ByteRange::new(0, cap)].into_iter().collect();
    let m = w
        .commit(repo, &index, &kept, description(name, cap, micros))
        .unwrap();
    (m.image, index.digests)
}

/// A chunk whose bytes are easy to find: a repeated marker and its seed.
fn chunk(seed: u8) -> Vec<u8> {
    (0..CS as usize)
        .map(|i| {
            if i % 64 < 8 {
                b"PLAINTXT"[i % 8]
            } else {
                seed ^ (i as u8)
            }
        })
        .collect()
}

fn every_file(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            every_file(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

fn new_repo(dir: &Path) -> Repo {
    Repo::init(&dir.join("r"), CS, Some((&pw("secret"), FAST))).unwrap()
}

#[test]
fn stored_objects_are_sealed_and_chunk_names_are_not_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path());
    let chunks = [chunk(1), chunk(2), chunk(1)];
    let (id, digests) = publish(&repo, "web01", &chunks, 1);
    // Equal plaintexts share a name (deduplication), names are not SHA-256.
    assert_eq!(digests[0], digests[2]);
    for (c, d) in chunks.iter().zip(&digests) {
        let sha: [u8; 32] = Sha256::digest(c).into();
        assert_ne!(d.0, sha);
        assert!(repo.has_chunk(d));
        assert!(!repo.has_chunk(&Digest(sha)));
    }
    // No file of the repository holds the plaintext marker, the name or the image id in
    // its content (the manifest is sealed).
    let mut files = Vec::new();
    every_file(repo.root(), &mut files);
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy();
        if name == "config" || f.parent().unwrap().ends_with("keys") {
            continue;
        }
        assert!(
            !bytes.windows(8).any(|w| w == b"PLAINTXT"),
            "{} holds plaintext",
            f.display()
        );
        assert!(!bytes.windows(5).any(|w| w == b"web01"), "{}", f.display());
    }
    // Read back through a new opening with the password.
    let again = open(repo.root(), "secret").unwrap();
    let entry = again.find_image("web01").unwrap();
    assert_eq!(entry.manifest.image, id);
    assert_eq!(entry.manifest.format_version, 2);
    let index = again.read_index(&entry).unwrap();
    assert_eq!(index.digests, digests);
    assert_eq!(again.get_chunk(&digests[1], CS).unwrap(), chunks[1]);
    // A second backup of the same content stores nothing new.
    let before = files
        .iter()
        .filter(|f| f.starts_with(repo.root().join("chunks")))
        .count();
    publish(&again, "web01", &chunks, 2);
    let mut after = Vec::new();
    every_file(&repo.root().join("chunks"), &mut after);
    assert_eq!(after.len(), before);
    let clean = verify(&again, &[], &|_, _| {}).unwrap();
    assert_eq!((clean.images_checked, clean.chunks_checked), (2, 2));
    assert!(clean.damaged_chunks.is_empty() && clean.damaged_images.is_empty());
    assert!(
        clean.damaged_objects.is_empty(),
        "{:?}",
        clean.damaged_objects
    );
}

#[test]
fn every_flipped_bit_of_a_chunk_index_kept_or_manifest_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path());
    let (a, da) = publish(&repo, "a", &[chunk(3)], 1);
    let entry = repo.find_image(&a).unwrap();
    let targets = [
        repo.chunk_path(&da[0]),
        entry.dir.join("index"),
        entry.dir.join("kept"),
        entry.dir.join("manifest.json"),
    ];
    for path in &targets {
        let good = std::fs::read(path).unwrap();
        // Every bit of the small objects; a spread of bits of the chunk.
        let step = (good.len() * 8 / 400).max(1);
        for bit in (0..good.len() * 8).step_by(step) {
            let mut bad = good.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            std::fs::write(path, &bad).unwrap();
            let r = verify(&repo, &[], &|_, _| {}).unwrap();
            let found = !r.damaged_chunks.is_empty()
                || r.damaged_images.contains_key(&a)
                || r.damaged_objects.keys().any(|k| k.contains(&a));
            assert!(found, "{} bit {bit}: {r:?}", path.display());
            // verify sets a damaged chunk aside; put it back for the next flip.
            let mut set_aside = path.clone().into_os_string();
            set_aside.push(".bad");
            let _ = std::fs::remove_file(&set_aside);
            std::fs::write(path, &good).unwrap();
        }
    }
    let r = verify(&repo, &[], &|_, _| {}).unwrap();
    assert!(r.damaged_chunks.is_empty() && r.damaged_images.is_empty());
}

#[test]
fn every_flipped_bit_of_the_config_or_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path());
    let root = repo.root().to_path_buf();
    let key = std::fs::read_dir(root.join("keys"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for path in [root.join("config"), key] {
        let good = std::fs::read(&path).unwrap();
        for bit in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            std::fs::write(&path, &bad).unwrap();
            match open(&root, "secret") {
                // Only a flip JSON reads as the same text may still open (none known).
                Ok(r) => assert_eq!(r.config(), repo.config(), "{} bit {bit}", path.display()),
                Err(e) => {
                    let e = e.to_string();
                    assert!(
                        !e.contains("wrong password"),
                        "{} bit {bit}: {e}",
                        path.display()
                    );
                }
            }
        }
        std::fs::write(&path, &good).unwrap();
    }
    open(&root, "secret").unwrap();
}

#[test]
fn wrong_password_and_keys_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path());
    let root = repo.root().to_path_buf();
    let e = open(&root, "Secret").unwrap_err().to_string();
    assert!(e.contains("wrong password"), "{e}");
    let e = Repo::open(&root).unwrap_err().to_string();
    assert!(e.contains("encrypted"), "{e}");
    let first = repo.key_list().unwrap().keys;
    assert_eq!(first.len(), 1);
    assert!(first[0].current);
    // The last key and the key in use cannot go.
    assert!(repo.key_remove(&first[0].id).is_err());
    let added = repo.key_add(&pw("second"), FAST).unwrap();
    let by_second = open(&root, "second").unwrap();
    assert_eq!(by_second.key_list().unwrap().keys.len(), 2);
    let e = repo.key_remove(&first[0].id).unwrap_err().to_string();
    assert!(e.contains("this password opened"), "{e}");
    by_second.key_remove(&first[0].id).unwrap();
    assert!(open(&root, "secret").is_err());
    let only = open(&root, "second").unwrap().key_list().unwrap().keys;
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].id, added.id);
    // A clear repository has no keys; init refuses a directory in use.
    let clear = Repo::init(&dir.path().join("c"), CS, None).unwrap();
    assert!(!clear.is_encrypted());
    assert!(clear.key_list().is_err() || clear.key_add(&pw("x"), FAST).is_err());
    assert!(Repo::init(&root, CS, Some((&pw("x"), FAST))).is_err());
}

#[test]
fn a_clear_repository_is_version_3_with_blake3_names_and_version_1_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repo::init(&dir.path().join("c"), CS, None).unwrap();
    let config = std::fs::read_to_string(repo.root().join("config")).unwrap();
    assert_eq!(
        config,
        "{\n  \"format\": \"diskray-repository\",\n  \"version\": 3,\n  \"digest\": \"blake3\",\n  \"chunk_size\": 65536\n}"
    );
    let c = chunk(7);
    let (_, d) = publish(&repo, "x", std::slice::from_ref(&c), 1);
    assert_eq!(d[0].0, *blake3::hash(&c).as_bytes());
    let stored = std::fs::read(repo.chunk_path(&d[0])).unwrap();
    assert_eq!(stored, diskray_store::chunk::encode(&c));
    // A repository of version 1 (what diskray created before version 3): SHA-256 names.
    let old = dir.path().join("v1");
    Repo::init(&old, CS, None).unwrap();
    std::fs::write(
        old.join("config"),
        "{\n  \"format\": \"diskray-repository\",\n  \"version\": 1,\n  \"digest\": \"sha256\",\n  \"chunk_size\": 65536\n}",
    )
    .unwrap();
    let v1 = Repo::open(&old).unwrap();
    let (_, d) = publish(&v1, "x", std::slice::from_ref(&c), 1);
    assert_eq!(d[0], Digest::of(&c));
    assert_eq!(v1.get_chunk(&d[0], CS).unwrap(), c);
    // A version whose digest is not its own is refused.
    std::fs::write(
        old.join("config"),
        "{\"format\": \"diskray-repository\", \"version\": 3, \"digest\": \"sha256\", \"chunk_size\": 65536}",
    )
    .unwrap();
    assert!(Repo::open(&old).is_err());
}
