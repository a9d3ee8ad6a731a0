//! Encrypted repositories through the real `diskray` binary: every repository round trip
//! (init, backup, incremental, restore, restore-file, verify, forget, gc), the password
//! sources, keys, damage in each kind of object, and hostile key objects.
//!
//! The disks are made here by mke2fs and debugfs in sparse files: a fresh ext4 has no
//! deleted data and its free blocks read as zeros, so a right restore equals the source
//! disk byte for byte (compared by SHA-256), and a restored file equals the file debugfs
//! wrote.

mod common;

use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const MIB: usize = 1 << 20;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs diskray with `env` set (and DISKRAY_PASSWORD* unset unless given), stdin closed
/// (no terminal), and the address space capped as `common::diskray` does.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -v 4194304; exec timeout 120 \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_diskray"))
        .args(args)
        .env_remove("DISKRAY_PASSWORD")
        .env_remove("DISKRAY_PASSWORD_FILE")
        .env_remove("DISKRAY_REPO");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run diskray")
}

fn ok(args: &[&str]) -> String {
    let out = run(args, &[]);
    assert!(
        out.status.success(),
        "diskray {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn sh(script: &str) {
    let st = Command::new("sh").arg("-c").arg(script).status().unwrap();
    assert!(st.success(), "{script}");
}

/// Deterministic incompressible bytes.
fn noise(len: usize, mut x: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

struct Fx {
    dir: PathBuf,
    t0: PathBuf,
    t1: PathBuf,
    big: PathBuf,
    cbt: PathBuf,
    pw: PathBuf,
    pw2: PathBuf,
}

/// t0: a 48 MiB ext4 with a 5 MiB file of noise and a text file; t1: t0 with one more
/// 2 MiB file; the change map between them; two password files.
fn fx() -> &'static Fx {
    static FX: OnceLock<Fx> = OnceLock::new();
    FX.get_or_init(|| {
        let dir = scratch("crypt-e2e-fixture");
        let (t0, t1) = (dir.join("t0.raw"), dir.join("t1.raw"));
        let (big, more) = (dir.join("big.bin"), dir.join("more.bin"));
        std::fs::write(&big, noise(5 * MIB, 7)).unwrap();
        std::fs::write(&more, noise(2 * MIB, 11)).unwrap();
        std::fs::write(dir.join("hello.txt"), "hello, sealed world\n".repeat(500)).unwrap();
        sh(&format!(
            "truncate -s 48M {t0} && mkfs.ext4 -q -F -b 4096 -E nodiscard {t0} && \
             debugfs -w -R 'write {big} big' {t0} >/dev/null 2>&1 && \
             debugfs -w -R 'write {d}/hello.txt hello.txt' {t0} >/dev/null 2>&1 && \
             cp --sparse=always {t0} {t1} && \
             debugfs -w -R 'write {more} more' {t1} >/dev/null 2>&1",
            t0 = s(&t0),
            t1 = s(&t1),
            big = s(&big),
            more = s(&more),
            d = s(&dir),
        ));
        let cbt = dir.join("cbt.json");
        let map = ok(&["changes", "diff", s(&t0), s(&t1)]);
        std::fs::write(&cbt, map).unwrap();
        let (pw, pw2) = (dir.join("pw"), dir.join("pw2"));
        std::fs::write(&pw, "correct horse\n").unwrap();
        std::fs::write(&pw2, "battery staple").unwrap();
        Fx {
            dir,
            t0,
            t1,
            big,
            cbt,
            pw,
            pw2,
        }
    })
}

/// `init --encrypt` with small (fast) Argon2 parameters.
fn init(repo: &Path, pw: &Path) {
    ok(&[
        "init",
        "--repo",
        s(repo),
        "--encrypt",
        "--password-file",
        s(pw),
        "--kdf-memory-mib",
        "1",
        "--kdf-iterations",
        "1",
    ]);
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn backup(disk: &Path, repo: &Path, extra: &[&str]) -> Value {
    let f = fx();
    let mut args = vec![
        "backup",
        s(disk),
        "--repo",
        s(repo),
        "--name",
        "vm",
        "--json",
        "--password-file",
        s(&f.pw),
    ];
    args.extend_from_slice(extra);
    json(&ok(&args))
}

fn chunk_files(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in std::fs::read_dir(repo.join("chunks")).unwrap().flatten() {
        for c in std::fs::read_dir(p.path()).unwrap().flatten() {
            out.push(c.path());
        }
    }
    out.sort();
    out
}

/// SHA-256 and BLAKE3 (hex) of each non-zero 1 MiB chunk of `disk`: (SHA-256s, BLAKE3s).
fn plain_chunk_digests(disk: &Path) -> (Vec<String>, Vec<String>) {
    let bytes = std::fs::read(disk).unwrap();
    let nonzero = || bytes.chunks(MIB).filter(|c| c.iter().any(|&b| b != 0));
    (
        nonzero().map(sha256).collect(),
        nonzero()
            .map(|c| blake3::hash(c).to_hex().to_string())
            .collect(),
    )
}

fn restore_sha(repo: &Path, image: &str, out: &Path) -> String {
    let f = fx();
    ok(&[
        "restore",
        "--repo",
        s(repo),
        "--password-file",
        s(&f.pw),
        image,
        s(out),
    ]);
    let sum = sha256_file(out);
    std::fs::remove_file(out).unwrap();
    sum
}

fn verify(repo: &Path) -> (Option<i32>, String) {
    let f = fx();
    let o = run(
        &[
            "verify",
            "--repo",
            s(repo),
            "--json",
            "--password-file",
            s(&f.pw),
        ],
        &[],
    );
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned() + &stderr(&o),
    )
}

#[test]
fn encrypted_round_trip_backup_incremental_restore_verify_forget_gc() {
    let f = fx();
    let dir = scratch("crypt-e2e-round-trip");
    let repo = dir.join("repo");
    init(&repo, &f.pw);
    let config = json(&std::fs::read_to_string(repo.join("config")).unwrap());
    assert_eq!(config["version"], 2);
    assert_eq!(config["encryption"]["aead"], "aes256gcm-blake3-subkeys");

    // Full backup; restore equals the source disk; restore-file equals the file written.
    let full = backup(&f.t0, &repo, &[]);
    let full_id = full["image"].as_str().unwrap().to_string();
    assert!(full["stats"]["new_chunks"].as_u64().unwrap() > 0);
    let out = dir.join("out.raw");
    assert_eq!(restore_sha(&repo, &full_id, &out), sha256_file(&f.t0));
    let file = dir.join("big.out");
    let pwf = s(&f.pw);
    ok(&[
        "restore-file",
        "--repo",
        s(&repo),
        "--password-file",
        pwf,
        &full_id,
        "/big",
        "-o",
        s(&file),
    ]);
    assert_eq!(sha256_file(&file), sha256_file(&f.big));

    // Chunk names are neither the SHA-256 nor the BLAKE3 of the disk's chunks (they are
    // the BLAKE3 in a clear repository of the same disk, so this comparison can fail).
    let names: Vec<String> = chunk_files(&repo)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let (shas, b3s) = plain_chunk_digests(&f.t0);
    assert!(!shas.is_empty());
    assert!(
        shas.iter().chain(&b3s).all(|h| !names.contains(h)),
        "an encrypted chunk is named by its SHA-256 or BLAKE3"
    );
    let clear = dir.join("clear");
    json(&ok(&[
        "backup",
        s(&f.t0),
        "--repo",
        s(&clear),
        "--name",
        "vm",
        "--json",
    ]));
    let clear_names: Vec<String> = chunk_files(&clear)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        b3s.iter().any(|h| clear_names.contains(h)),
        "the clear repository names chunks by BLAKE3"
    );
    assert_eq!(
        names.len(),
        clear_names.len(),
        "as many distinct chunks either way"
    );

    // Deduplication: a second backup of the same disk stores no chunk.
    let before = chunk_files(&repo);
    let again = backup(&f.t0, &repo, &[]);
    assert_eq!(again["stats"]["new_chunks"], 0, "{}", again["stats"]);
    assert_eq!(chunk_files(&repo), before);

    // Incremental from the change map: reads only the changes, restores t1 exactly.
    let incr = backup(&f.t1, &repo, &["--changes", s(&f.cbt)]);
    let incr_id = incr["image"].as_str().unwrap().to_string();
    assert_eq!(incr["stats"]["change_source"], "cbt", "{}", incr["stats"]);
    assert!(incr["stats"]["read_from_source"].as_u64().unwrap() < 4 * MIB as u64);
    assert_eq!(restore_sha(&repo, &incr_id, &out), sha256_file(&f.t1));
    let (code, v) = verify(&repo);
    assert_eq!(code, Some(0), "{v}");

    // images, forget, gc: the full images go, the incremental still restores.
    let images = json(&ok(&[
        "images",
        "--repo",
        s(&repo),
        "--json",
        "--password-file",
        pwf,
    ]));
    assert_eq!(images["images"].as_array().unwrap().len(), 3);
    let again_id = again["image"].as_str().unwrap();
    ok(&[
        "forget",
        "--repo",
        s(&repo),
        "--password-file",
        pwf,
        &full_id,
        again_id,
    ]);
    let gc = json(&ok(&[
        "gc",
        "--repo",
        s(&repo),
        "--json",
        "--password-file",
        pwf,
    ]));
    assert_eq!(gc["images"], 1, "{gc}");
    assert_eq!(restore_sha(&repo, &incr_id, &out), sha256_file(&f.t1));
    assert_eq!(verify(&repo).0, Some(0));

    // A machine backup of two disks: one image per disk, each restores to its disk.
    let m = json(&ok(&[
        "backup",
        s(&f.t0),
        s(&f.t1),
        "--repo",
        s(&repo),
        "--name",
        "m",
        "--json",
        "--password-file",
        pwf,
    ]));
    assert!(m.to_string().contains("m.disk1"), "{m}");
    assert_eq!(restore_sha(&repo, "m.disk0", &out), sha256_file(&f.t0));
    assert_eq!(restore_sha(&repo, "m.disk1", &out), sha256_file(&f.t1));

    // The password from the environment, by file or by value.
    let by_env = run(
        &["images", "--repo", s(&repo)],
        &[("DISKRAY_PASSWORD", "correct horse")],
    );
    assert!(by_env.status.success(), "{}", stderr(&by_env));
    let by_file = run(
        &["images", "--repo", s(&repo)],
        &[("DISKRAY_PASSWORD_FILE", pwf)],
    );
    assert!(by_file.status.success(), "{}", stderr(&by_file));
}

/// An encrypted repository with one full backup, made once and copied by each test.
fn base_repo() -> &'static (PathBuf, String) {
    static BASE: OnceLock<(PathBuf, String)> = OnceLock::new();
    BASE.get_or_init(|| {
        let f = fx();
        let repo = f.dir.join("base-repo");
        let _ = std::fs::remove_dir_all(&repo);
        init(&repo, &f.pw);
        let b = backup(&f.t0, &repo, &[]);
        (repo, b["image"].as_str().unwrap().to_string())
    })
}

fn copy_of_base(name: &str) -> (PathBuf, String) {
    let (base, id) = base_repo();
    let dir = scratch(name);
    let repo = dir.join("repo");
    sh(&format!("cp -a {} {}", s(base), s(&repo)));
    (repo, id.clone())
}

fn flip(path: &Path, at: usize) {
    let mut b = std::fs::read(path).unwrap();
    b[at] ^= 0x04;
    std::fs::write(path, b).unwrap();
}

#[test]
fn wrong_or_missing_password_is_a_clear_error() {
    let f = fx();
    let (repo, id) = copy_of_base("crypt-e2e-wrong-password");
    let out = repo.parent().unwrap().join("out.raw");
    for cmd in [
        vec!["images", "--repo", s(&repo), "--password-file", s(&f.pw2)],
        vec![
            "restore",
            "--repo",
            s(&repo),
            "--password-file",
            s(&f.pw2),
            &id,
            s(&out),
        ],
        vec!["verify", "--repo", s(&repo), "--password-file", s(&f.pw2)],
        vec![
            "backup",
            s(&f.t0),
            "--repo",
            s(&repo),
            "--name",
            "x",
            "--password-file",
            s(&f.pw2),
        ],
    ] {
        let o = run(&cmd, &[]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{cmd:?}: {e}");
        assert!(e.contains("wrong password"), "{cmd:?}: {e}");
        assert!(!e.contains("panicked"), "{e}");
        assert!(!out.exists());
    }
    let o = run(&["images", "--repo", s(&repo)], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--password-file"), "{}", stderr(&o));
    let o = run(
        &["images", "--repo", s(&repo)],
        &[("DISKRAY_PASSWORD", "nope")],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("wrong password"));
}

#[test]
fn one_flipped_bit_in_each_kind_of_object_is_found_and_restore_refuses() {
    let f = fx();
    let (_, id) = base_repo();
    let image = move |r: &Path| r.join("images").join(id);
    let key = |r: &Path| {
        std::fs::read_dir(r.join("keys"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path()
    };
    let config_mac = |r: &Path| {
        let c = std::fs::read_to_string(r.join("config")).unwrap();
        c.find("\"mac\"").unwrap() + 20
    };
    type Target = (&'static str, Box<dyn Fn(&Path) -> (PathBuf, usize)>);
    let targets: Vec<Target> = vec![
        (
            "chunk",
            Box::new(|r: &Path| {
                let c = chunk_files(r)[0].clone();
                let len = std::fs::metadata(&c).unwrap().len() as usize;
                (c, len / 2)
            }),
        ),
        (
            "index",
            Box::new(move |r: &Path| (image(r).join("index"), 70)),
        ),
        (
            "kept",
            Box::new(move |r: &Path| (image(r).join("kept"), 40)),
        ),
        (
            "manifest",
            Box::new(move |r: &Path| (image(r).join("manifest.json"), 100)),
        ),
        (
            "config",
            Box::new(move |r: &Path| (r.join("config"), config_mac(r))),
        ),
        (
            "config chunk size",
            Box::new(|r: &Path| {
                let c = std::fs::read_to_string(r.join("config")).unwrap();
                (r.join("config"), c.find("1048576").unwrap() + 3)
            }),
        ),
        ("key", Box::new(move |r: &Path| (key(r), 300))),
    ];
    for (kind, target) in &targets {
        let (repo, id) = copy_of_base(&format!("crypt-e2e-flip-{}", kind.replace(' ', "-")));
        let (path, at) = target(&repo);
        let inside = path.strip_prefix(&repo).unwrap().display().to_string();
        flip(&path, at);
        let (code, v) = verify(&repo);
        assert_eq!(code, Some(3), "{kind}: verify: {v}");
        let named = match *kind {
            "chunk" => path.file_name().unwrap().to_string_lossy().into_owned(),
            "index" | "kept" => id.clone(),
            "key" => "keys".into(),
            _ => inside.clone(),
        };
        assert!(
            v.contains(&named),
            "{kind}: verify does not name {named}: {v}"
        );
        let out = repo.parent().unwrap().join("out.raw");
        let o = run(
            &[
                "restore",
                "--repo",
                s(&repo),
                "--password-file",
                s(&f.pw),
                &id,
                s(&out),
            ],
            &[],
        );
        if *kind == "kept" {
            // A restore does not read the kept ranges (only the next incremental does, and
            // it then reads the whole disk): the data it restores is intact.
            assert!(o.status.success(), "{}", stderr(&o));
            assert_eq!(sha256_file(&out), sha256_file(&f.t0));
            continue;
        }
        assert!(!o.status.success(), "{kind}: restore succeeded");
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
        assert!(!out.exists(), "{kind}: restore left an output");
    }
}

#[test]
fn keys_add_list_remove() {
    let f = fx();
    let (repo, _) = copy_of_base("crypt-e2e-keys");
    let (r, pw1, pw2) = (s(&repo), s(&f.pw), s(&f.pw2));
    let list = |pw: &str| {
        json(&ok(&[
            "key",
            "list",
            "--repo",
            r,
            "--password-file",
            pw,
            "--json",
        ]))
    };
    let first = list(pw1)["keys"][0]["id"].as_str().unwrap().to_string();
    let o = run(
        &["key", "remove", "--repo", r, "--password-file", pw1, &first],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "removing the last key");
    ok(&[
        "key",
        "add",
        "--repo",
        r,
        "--password-file",
        pw1,
        "--new-password-file",
        pw2,
        "--kdf-memory-mib",
        "1",
        "--kdf-iterations",
        "1",
    ]);
    let both = list(pw2);
    let keys = both["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let current: Vec<&Value> = keys.iter().filter(|k| k["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_ne!(current[0]["id"], first.as_str(), "pw2 opened the new key");
    let o = run(
        &["key", "remove", "--repo", r, "--password-file", pw1, &first],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "removing the key in use");
    ok(&["key", "remove", "--repo", r, "--password-file", pw2, &first]);
    let o = run(&["images", "--repo", r, "--password-file", pw1], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("wrong password"));
    ok(&["images", "--repo", r, "--password-file", pw2]);
    // A clear repository has no keys.
    let clear = repo.parent().unwrap().join("clear");
    ok(&["init", "--repo", s(&clear)]);
    assert!(!run(&["key", "list", "--repo", s(&clear)], &[])
        .status
        .success());
}

/// A key object rewritten with `edit`, its SHA-256 recomputed the way the format says
/// (compact JSON of the object with `sha256` empty), so that only the bounds stop it.
fn forge_key(path: &Path, edit: impl Fn(&mut Value)) {
    let mut k: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    edit(&mut k);
    k["sha256"] = "".into();
    let sum = sha256(&serde_json::to_vec(&k).unwrap());
    k["sha256"] = sum.into();
    std::fs::write(path, serde_json::to_vec_pretty(&k).unwrap()).unwrap();
}

#[test]
fn hostile_key_objects_are_refused_by_a_bound() {
    let f = fx();
    type Breaker = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Breaker)> = vec![
        (
            "4 TiB of memory",
            Box::new(|p: &Path| forge_key(p, |k| k["kdf"]["memory_kib"] = u32::MAX.into())),
        ),
        (
            "iterations",
            Box::new(|p: &Path| forge_key(p, |k| k["kdf"]["iterations"] = 4_000_000_000u32.into())),
        ),
        (
            "parallelism",
            Box::new(|p: &Path| forge_key(p, |k| k["kdf"]["parallelism"] = 1_000_000.into())),
        ),
        (
            "another KDF",
            Box::new(|p: &Path| forge_key(p, |k| k["kdf"]["name"] = "scrypt".into())),
        ),
        (
            "short salt",
            Box::new(|p: &Path| forge_key(p, |k| k["kdf"]["salt"] = "00".into())),
        ),
        (
            "huge wrapped key",
            Box::new(|p: &Path| forge_key(p, |k| k["wrapped"] = "00".repeat(40_000).into())),
        ),
        (
            "truncated",
            Box::new(|p: &Path| {
                let b = std::fs::read(p).unwrap();
                std::fs::write(p, &b[..b.len() / 2]).unwrap();
            }),
        ),
        (
            "16 MiB",
            Box::new(|p: &Path| std::fs::write(p, vec![b' '; 16 << 20]).unwrap()),
        ),
    ];
    for (what, break_it) in &cases {
        let (repo, _) = copy_of_base(&format!("crypt-e2e-hostile-{}", what.replace(' ', "-")));
        let key = std::fs::read_dir(repo.join("keys"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        break_it(&key);
        let t = std::time::Instant::now();
        let o = run(
            &["images", "--repo", s(&repo), "--password-file", s(&f.pw)],
            &[],
        );
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{what}: {e}");
        assert!(e.contains("damaged") && e.contains("keys"), "{what}: {e}");
        assert!(
            !e.contains("panicked") && !e.contains("memory allocation"),
            "{what}: {e}"
        );
        assert!(t.elapsed().as_secs() < 20, "{what}: took {:?}", t.elapsed());
        let (code, v) = verify(&repo);
        assert_eq!(code, Some(3), "{what}: {v}");
    }
}

#[test]
fn a_password_never_writes_in_clear() {
    let f = fx();
    let dir = scratch("crypt-e2e-downgrade");
    // A first backup given a password does not make a clear repository.
    let new = dir.join("new");
    let o = run(
        &[
            "backup",
            s(&f.t0),
            "--repo",
            s(&new),
            "--name",
            "x",
            "--password-file",
            s(&f.pw),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("init --repo R --encrypt"),
        "{}",
        stderr(&o)
    );
    assert!(!new.join("config").exists());
    // An encrypted repository whose config is replaced by a clear one is refused, by
    // backup (which would write plaintext) and by verify (damage).
    let (repo, _) = copy_of_base("crypt-e2e-downgrade-repo");
    let clear = dir.join("clear");
    ok(&["init", "--repo", s(&clear)]);
    std::fs::copy(clear.join("config"), repo.join("config")).unwrap();
    for pw in [None, Some(s(&f.pw))] {
        let mut args = vec!["backup", s(&f.t1), "--repo", s(&repo), "--name", "x"];
        args.extend(pw.iter().flat_map(|p| ["--password-file", p]));
        let o = run(&args, &[]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains("key objects"), "{}", stderr(&o));
    }
    let names = |r: &Path| -> Vec<PathBuf> {
        let files = chunk_files(r);
        files
            .iter()
            .map(|p| p.strip_prefix(r).unwrap().to_path_buf())
            .collect()
    };
    assert_eq!(names(&repo), names(&base_repo().0), "nothing written");
    assert_eq!(verify(&repo).0, Some(3));
}

#[test]
fn serve_exports_an_encrypted_image_qemu() {
    if Command::new("qemu-img").arg("--version").output().is_err() {
        eprintln!("skipped: qemu-img is not installed");
        return;
    }
    let f = fx();
    let (repo, id) = copy_of_base("crypt-e2e-serve");
    let dir = repo.parent().unwrap().to_path_buf();
    let sock = dir.join("nbd.sock");
    let mut server = Command::new(env!("CARGO_BIN_EXE_diskray"))
        .args([
            "serve",
            "--repo",
            s(&repo),
            "--password-file",
            s(&f.pw),
            &id,
        ])
        .args(["--listen", &format!("unix:{}", s(&sock))])
        .env_remove("DISKRAY_PASSWORD")
        .env_remove("DISKRAY_PASSWORD_FILE")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !sock.exists() && start.elapsed().as_secs() < 30 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = dir.join("served.raw");
    let uri = format!("nbd+unix:///?socket={}", s(&sock));
    let convert = Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "raw", &uri, s(&out)])
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(convert.status.success(), "{}", stderr(&convert));
    assert_eq!(sha256_file(&out), sha256_file(&f.t0));
}

#[test]
fn a_key_file_opens_the_repository_without_a_password() {
    use std::os::unix::fs::PermissionsExt;
    let f = fx();
    let (repo, id) = copy_of_base("crypt-e2e-key-file");
    let dir = repo.parent().unwrap().to_path_buf();
    let kf = dir.join("master.key");
    let (r, pw) = (s(&repo), s(&f.pw));
    ok(&[
        "key",
        "export-master",
        "--repo",
        r,
        "--password-file",
        pw,
        s(&kf),
    ]);
    let mode = std::fs::metadata(&kf).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // Never overwritten.
    let o = run(
        &[
            "key",
            "export-master",
            "--repo",
            r,
            "--password-file",
            pw,
            s(&kf),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    let out = dir.join("out.raw");
    ok(&["restore", "--repo", r, "--key-file", s(&kf), &id, s(&out)]);
    assert_eq!(sha256_file(&out), sha256_file(&f.t0));
    // Another repository's key file is refused, clearly.
    let other = dir.join("other");
    init(&other, &f.pw);
    let o = run(&["images", "--repo", s(&other), "--key-file", s(&kf)], &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("another repository"), "{}", stderr(&o));
    // A key file that is not one.
    std::fs::write(dir.join("bad.key"), "{\"format\": 1}").unwrap();
    let o = run(
        &["images", "--repo", r, "--key-file", s(&dir.join("bad.key"))],
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("key file"), "{}", stderr(&o));
}

/// `init --encrypt --key-file FILE` makes a repository that only its new key file opens:
/// the file is private (0600); a backup through it restores equal to the disk; a password
/// is refused, saying to use the key file, until `key add` gives one; an existing file is
/// never replaced (and no repository is made); `--key-file` without `--encrypt` is
/// refused.
#[test]
fn init_with_a_key_file_makes_a_repository_only_it_opens() {
    use std::os::unix::fs::PermissionsExt;
    let f = fx();
    let dir = scratch("crypt-e2e-init-key-file");
    let (repo, kf) = (dir.join("repo"), dir.join("new.key"));
    let (r, k) = (s(&repo), s(&kf));
    let out = ok(&["init", "--repo", r, "--encrypt", "--key-file", k]);
    assert!(out.contains("encrypted"), "{out}");
    let mode = std::fs::metadata(&kf).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        std::fs::read_dir(repo.join("keys")).map_or(0, |d| d.count()),
        0,
        "a key object was written: the repository has a password"
    );
    let b = json(&ok(&[
        "backup",
        s(&f.t0),
        "--repo",
        r,
        "--name",
        "vm",
        "--json",
        "--key-file",
        k,
    ]));
    let id = b["image"].as_str().unwrap();
    let restored = dir.join("out.raw");
    ok(&["restore", "--repo", r, "--key-file", k, id, s(&restored)]);
    assert_eq!(sha256_file(&restored), sha256_file(&f.t0));
    // No password opens it yet, and the error says what does.
    let o = run(&["images", "--repo", r, "--password-file", s(&f.pw)], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--key-file"), "{}", stderr(&o));
    let keys = ok(&["key", "list", "--repo", r, "--key-file", k]);
    assert!(keys.starts_with("no keys"), "{keys}");
    ok(&[
        "key",
        "add",
        "--repo",
        r,
        "--key-file",
        k,
        "--new-password-file",
        s(&f.pw),
        "--kdf-memory-mib",
        "1",
        "--kdf-iterations",
        "1",
    ]);
    let listed = ok(&["images", "--repo", r, "--password-file", s(&f.pw), "--json"]);
    assert!(listed.contains(id), "{listed}");
    // The key file exists: refused, nothing made.
    let other = dir.join("other");
    let o = run(
        &["init", "--repo", s(&other), "--encrypt", "--key-file", k],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!other.join("config").exists(), "a repository was made");
    let o = run(
        &[
            "init",
            "--repo",
            s(&other),
            "--key-file",
            s(&dir.join("x.key")),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--encrypt"), "{}", stderr(&o));
    assert!(!dir.join("x.key").exists());
}
