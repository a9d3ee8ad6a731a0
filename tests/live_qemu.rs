//! Live cross-checks against qemu-img on freshly made images with random layouts (skipped,
//! with the reason printed, when qemu-img or qemu-io is missing; `.ci/run` installs them).

mod common;

use common::*;
use std::path::Path;
use std::process::Command;

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A deterministic pseudo-random generator (xorshift) so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn qemu_sha(disk: &Path, dir: &Path) -> String {
    let out = dir.join("qemu.raw");
    run(
        "qemu-img",
        &[
            "convert",
            "-f",
            "vmdk",
            "-O",
            "raw",
            disk.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
    );
    sha256_file(&out)
}

fn our_sha(disk: &Path, dir: &Path) -> String {
    let out = dir.join("ours.raw");
    diskray_ok(&["convert", disk.to_str().unwrap(), out.to_str().unwrap()]);
    sha256_file(&out)
}

#[test]
fn live_qemu_random_chains_and_subformats() {
    if !have("qemu-img") || !have("qemu-io") {
        println!("SKIPPED live_qemu_random_chains_and_subformats: qemu-img/qemu-io not installed (apt-get install qemu-utils)");
        return;
    }
    let dir = scratch("live_qemu");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..4 {
        // A base with random writes (some unaligned, some zero, some across a GT boundary).
        let size_mib = 40 + rng.next() % 40;
        let base = dir.join(format!("base{round}.vmdk"));
        let sub = [
            "monolithicSparse",
            "streamOptimized",
            "twoGbMaxExtentSparse",
            "monolithicFlat",
        ][round % 4];
        let raw = dir.join(format!("src{round}.raw"));
        std::fs::File::create(&raw)
            .unwrap()
            .set_len(size_mib << 20)
            .unwrap();
        let mut cmds: Vec<String> = Vec::new();
        for _ in 0..12 {
            let off = rng.next() % ((size_mib << 20) - 300_000);
            let len = 1 + rng.next() % 200_000;
            let pat = rng.next() % 256;
            cmds.push(format!("write -P {pat} {off} {len}"));
        }
        cmds.push(format!("write -P 7 {} 131072", (32 << 20) - 65536));
        let mut args = vec!["-f".to_string(), "raw".to_string()];
        for c in &cmds {
            args.push("-c".into());
            args.push(c.clone());
        }
        args.push(raw.to_str().unwrap().into());
        run(
            "qemu-io",
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        run(
            "qemu-img",
            &[
                "convert",
                "-f",
                "raw",
                "-O",
                "vmdk",
                "-o",
                &format!("subformat={sub}"),
                raw.to_str().unwrap(),
                base.to_str().unwrap(),
            ],
        );
        assert_eq!(
            our_sha(&base, &dir),
            qemu_sha(&base, &dir),
            "round {round}: {sub}"
        );
        if sub != "monolithicSparse" {
            continue;
        }
        // Two snapshot layers with random writes, zero writes and a zeroed-grain layer.
        let mut parent = base.clone();
        for depth in 1..=3 {
            let child = dir.join(format!("r{round}-child{depth}.vmdk"));
            let mut create = vec![
                "create",
                "-q",
                "-f",
                "vmdk",
                "-b",
                parent.to_str().unwrap(),
                "-F",
                "vmdk",
            ];
            if depth == 3 {
                create.extend(["-o", "zeroed_grain=on"]);
            }
            create.push(child.to_str().unwrap());
            run("qemu-img", &create);
            let mut args = vec!["-f".to_string(), "vmdk".to_string()];
            for _ in 0..6 {
                let off = (rng.next() % ((size_mib << 20) - 70_000)) & !0xffff;
                let op = if depth == 3 {
                    format!("write -z {off} 65536")
                } else {
                    format!(
                        "write -P {} {} {}",
                        rng.next() % 256,
                        off + rng.next() % 5000,
                        1 + rng.next() % 100_000
                    )
                };
                args.push("-c".into());
                args.push(op);
            }
            args.push(child.to_str().unwrap().into());
            run(
                "qemu-io",
                &args.iter().map(String::as_str).collect::<Vec<_>>(),
            );
            assert_eq!(
                our_sha(&child, &dir),
                qemu_sha(&child, &dir),
                "round {round}: chain depth {depth}"
            );
            parent = child;
        }
    }
}
