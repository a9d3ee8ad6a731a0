//! The client against `qemu-nbd`: block status of a named metadata context
//! (`qemu:dirty-bitmap:NAME`, the seam for backups from dirty bitmaps) equals what qemu's
//! own NBD client reads from the same server (`qemu-img map` with `x-dirty-bitmap`).
//! Needs qemu-utils (`.ci/run` installs it).

use diskray_core::ByteRange;
use diskray_nbd::{NbdDisk, NbdError};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server process, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().expect(cmd);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{cmd} {args:?}: {err}");
    String::from_utf8(out.stdout).unwrap()
}

/// Waits (bounded) until `socket` accepts connections.
fn wait_for(socket: &Path) {
    let start = Instant::now();
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "qemu-nbd did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn dirty_bitmap_extents_equal_qemus_own_client() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("b.qcow2");
    let img_s = img.to_str().unwrap();
    run("qemu-img", &["create", "-q", "-f", "qcow2", img_s, "64M"]);
    run("qemu-img", &["bitmap", "--add", img_s, "b0"]);
    for cmd in ["write 4M 128k", "write 40M 4k", "write 63M 1M"] {
        run("qemu-io", &["-f", "qcow2", "-c", cmd, img_s]);
    }
    let socket = dir.path().join("s");
    let server = Command::new("qemu-nbd")
        .args([
            "--persistent",
            "--read-only",
            "--shared=2",
            "-x",
            "disk",
            "-f",
            "qcow2",
        ])
        .args(["-B", "b0", &format!("--socket={}", socket.display()), img_s])
        .stdin(Stdio::null())
        .spawn()
        .map(Server)
        .expect("qemu-nbd (apt-get install qemu-utils)");
    wait_for(&socket);

    let context = "qemu:dirty-bitmap:b0";
    let uri = format!("nbd+unix:///disk?socket={}", socket.display());
    let disk = NbdDisk::open(&uri, &[context]).unwrap();
    assert_eq!(disk.contexts(), ["base:allocation", context]);
    let ours: Vec<(u64, u64)> = disk
        .extents(context, ByteRange::new(0, 64 << 20))
        .unwrap()
        .into_iter()
        .filter(|e| e.flags & 1 != 0)
        .map(|e| (e.start, e.length))
        .collect();
    drop(disk);

    // qemu's client prints a dirty bitmap as a map whose dirty entries have no data.
    let opts = format!(
        "driver=nbd,server.type=unix,server.path={},export=disk,x-dirty-bitmap={context}",
        socket.display()
    );
    let out = run("qemu-img", &["map", "--output=json", "--image-opts", &opts]);
    let entries: Vec<Value> = serde_json::from_str(&out).unwrap();
    let mut theirs: Vec<(u64, u64)> = Vec::new();
    for e in entries.iter().filter(|e| e["data"] == false) {
        let (s, l) = (e["start"].as_u64().unwrap(), e["length"].as_u64().unwrap());
        match theirs.last_mut() {
            Some(last) if last.0 + last.1 == s => last.1 += l,
            _ => theirs.push((s, l)),
        }
    }
    assert_eq!(ours, theirs);
    // And the writes are where they were made (64 KiB granularity).
    assert_eq!(
        ours,
        [
            (4 << 20, 128 << 10),
            (40 << 20, 64 << 10),
            (63 << 20, 1 << 20)
        ]
    );
    drop(server);
}

/// Makes a key and a certificate for `cn` signed by the CA in `ca` (or the CA itself when
/// `ca` is `None`), with the extensions in `ext`; returns (cert, key) paths.
fn certificate(
    dir: &Path,
    name: &str,
    cn: &str,
    ca: Option<(&Path, &Path)>,
    ext: &str,
) -> (String, String) {
    let cert = dir.join(format!("{name}-cert.pem")).display().to_string();
    let key = dir.join(format!("{name}-key.pem")).display().to_string();
    let subj = format!("/CN={cn}");
    match ca {
        None => {
            let args = [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ];
            run(
                "openssl",
                &[&args[..], &["-subj", &subj, "-keyout", &key, "-out", &cert]].concat(),
            );
        }
        Some((ca_cert, ca_key)) => {
            let csr = dir.join(format!("{name}.csr")).display().to_string();
            let extfile = dir.join(format!("{name}.ext"));
            std::fs::write(&extfile, ext).unwrap();
            let args = ["req", "-newkey", "rsa:2048", "-nodes", "-subj", &subj];
            run(
                "openssl",
                &[&args[..], &["-keyout", &key, "-out", &csr]].concat(),
            );
            let (ca_cert, ca_key) = (ca_cert.to_str().unwrap(), ca_key.to_str().unwrap());
            let ext = extfile.to_str().unwrap();
            let args = [
                "x509", "-req", "-in", &csr, "-CA", ca_cert, "-CAkey", ca_key,
            ];
            let more = [
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                ext,
                "-out",
                &cert,
            ];
            run("openssl", &[&args[..], &more[..]].concat());
        }
    }
    (cert, key)
}

/// `nbds+unix://` against `qemu-nbd --tls-creds` (X.509, as `tls-creds-x509`): the export
/// reads as the file, with and without client certificates; a server the client's
/// authority did not sign, and a plain client to a TLS server, are refused by name.
#[test]
fn tls_against_qemu_nbd() {
    let dir = tempfile::tempdir().unwrap();
    let (d, p) = (dir.path(), |p: &Path| p.display().to_string());
    let (srv, cli, other) = (d.join("srv"), d.join("cli"), d.join("other"));
    for x in [&srv, &cli, &other] {
        std::fs::create_dir(x).unwrap();
    }
    let (ca_cert, ca_key) = certificate(d, "ca", "diskray test CA", None, "");
    let ca = (Path::new(&ca_cert), Path::new(&ca_key));
    let server_ext = "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n";
    let (sc, sk) = certificate(d, "server", "localhost", Some(ca), server_ext);
    let client_ext = "extendedKeyUsage=clientAuth\n";
    let (cc, ck) = certificate(d, "client", "diskray", Some(ca), client_ext);
    for (from, to) in [
        (&ca_cert, srv.join("ca-cert.pem")),
        (&sc, srv.join("server-cert.pem")),
    ] {
        std::fs::copy(from, to).unwrap();
    }
    std::fs::copy(&sk, srv.join("server-key.pem")).unwrap();
    std::fs::copy(&ca_cert, cli.join("ca-cert.pem")).unwrap();
    std::fs::copy(&cc, cli.join("client-cert.pem")).unwrap();
    std::fs::copy(&ck, cli.join("client-key.pem")).unwrap();
    let (other_ca, _) = certificate(&other, "ca", "another CA", None, "");
    assert!(other_ca.ends_with("ca-cert.pem"));

    // A 4 MiB disk of known bytes.
    let img = d.join("disk.raw");
    let content: Vec<u8> = (0..4u32 << 20).map(|i| (i % 253) as u8).collect();
    std::fs::write(&img, &content).unwrap();
    let socket = d.join("s");
    let creds = format!(
        "tls-creds-x509,id=tls0,dir={},endpoint=server,verify-peer=on",
        p(&srv)
    );
    let server = Command::new("qemu-nbd")
        .args([
            "--object",
            &creds,
            "--tls-creds=tls0",
            "--persistent",
            "--read-only",
        ])
        .args([
            "--shared=4",
            "-x",
            "disk",
            "-f",
            "raw",
            &format!("--socket={}", p(&socket)),
        ])
        .arg(&img)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(Server)
        .expect("qemu-nbd (apt-get install qemu-utils)");
    wait_for(&socket);

    let uri = |certs: &Path| {
        format!(
            "nbds+unix:///disk?socket={}&tls-certificates={}",
            p(&socket),
            p(certs)
        )
    };
    let disk = NbdDisk::open(&uri(&cli), &[]).unwrap();
    let mut buf = vec![0; content.len()];
    diskray_core::VirtualDisk::read_at(&disk, &mut buf, 0).unwrap();
    assert!(buf == content, "the export over TLS differs from the file");
    drop(disk);

    // The server checks clients (verify-peer=on): without a client certificate it refuses.
    let no_client = d.join("no-client");
    std::fs::create_dir(&no_client).unwrap();
    std::fs::copy(&ca_cert, no_client.join("ca-cert.pem")).unwrap();
    let e = NbdDisk::open_typed(&uri(&no_client), &[]).unwrap_err();
    // (In TLS 1.3 the client's side of the handshake is over before the server judges
    // the client, so the refusal is the server hanging up, or its alert.)
    let refused = matches!(e, NbdError::Closed { .. } | NbdError::Tls { .. });
    assert!(refused, "{e:?}");

    // A server certificate from an authority the client does not trust.
    let e = NbdDisk::open_typed(&uri(&other), &[]).unwrap_err();
    assert!(matches!(e, NbdError::Tls { .. }), "{e:?}");
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");

    // A plain client is told that the server requires TLS.
    let plain = format!("nbd+unix:///disk?socket={}", p(&socket));
    let e = NbdDisk::open_typed(&plain, &[]).unwrap_err();
    assert!(e.to_string().contains("NBD_REP_ERR_TLS_REQD"), "{e}");
    drop(server);
}
