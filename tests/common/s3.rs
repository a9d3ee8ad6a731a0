//! An S3 server on loopback for the object-storage tests: `s3s-fs` (a Rust S3 server
//! over a directory, from the crate registry; `.ci/run` installs it). Each object is a
//! plain file under the server's root (`ROOT/BUCKET/KEY`, its mtime the object's
//! LastModified), so a test can damage, delete or age an object behind the repository's
//! back.
//!
//! The server runs as a child whose parent-death signal is SIGKILL, spawned from a thread
//! that lives as long as the child: when the test process ends, so does the server.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The bucket every test repository lives in.
pub const BUCKET: &str = "diskray-test";
/// The credentials the server is started with.
pub const ACCESS_KEY: &str = "diskray-test-key";
/// The secret of [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "diskray-test-secret";

/// A running (or stopped) s3s-fs.
pub struct S3Server {
    /// The directory the server keeps objects in.
    pub root: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    port: u16,
    pid: Mutex<Option<u32>>,
}

/// The s3s-fs binary: on PATH, or where `cargo install` puts it.
fn binary() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join("s3s-fs"))
        .find(|p| p.is_file())
}

/// The server shared by the tests of one test binary, with the `AWS_*` variables set so
/// that every `diskray` the tests run reaches it; `None` (after saying why) when s3s-fs is
/// not installed, except under CI, where that fails the test.
pub fn shared() -> Option<&'static S3Server> {
    static SERVER: OnceLock<Option<S3Server>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            let server = S3Server::start("shared")?;
            // Set once, before any test of this binary runs diskray against S3.
            std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
            std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
            std::env::set_var("AWS_REGION", "us-east-1");
            std::env::set_var("AWS_ENDPOINT_URL", &server.endpoint);
            Some(server)
        })
        .as_ref()
}

impl S3Server {
    /// Starts a server of its own, keeping objects under the test scratch directory
    /// `name`; `None` when s3s-fs is missing (outside CI).
    pub fn start(name: &str) -> Option<S3Server> {
        if binary().is_none() {
            assert!(
                std::env::var_os("CI").is_none(),
                "s3s-fs is not installed (.ci/run installs it: cargo install s3s-fs --features binary)"
            );
            eprintln!("SKIPPED: s3s-fs is not installed (cargo install s3s-fs --version 0.14.1 --features binary)");
            return None;
        }
        let root = super::scratch(&format!("s3-{name}"));
        std::fs::create_dir_all(root.join(BUCKET)).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = S3Server {
            root,
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            pid: Mutex::new(None),
        };
        server.restart();
        Some(server)
    }

    /// Starts the server (again, on the same port and directory) and waits until it
    /// accepts connections.
    pub fn restart(&self) {
        let (tx, rx) = std::sync::mpsc::channel();
        let (root, port) = (self.root.clone(), self.port);
        std::thread::spawn(move || {
            use std::os::unix::process::CommandExt;
            let mut cmd = Command::new(binary().unwrap());
            cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                .arg(&root)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // SAFETY: prctl is async-signal-safe; it only sets this child's death signal.
            unsafe {
                cmd.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            let mut child = cmd.spawn().expect("start s3s-fs");
            tx.send(child.id()).unwrap();
            // This thread lives as long as the server: the death signal is the thread's.
            let _ = child.wait();
        });
        let pid = rx.recv().unwrap();
        *self.pid.lock().unwrap() = Some(pid);
        let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
        let t0 = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "s3s-fs did not listen on {addr} within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the server at once (SIGKILL), as a crash or a network loss would.
    pub fn kill(&self) {
        if let Some(pid) = self.pid.lock().unwrap().take() {
            // SAFETY: sends a signal to the child this server started.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            let addr: SocketAddr = format!("127.0.0.1:{}", self.port).parse().unwrap();
            let t0 = Instant::now();
            while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok()
                && t0.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// A repository URL of its own: `s3://BUCKET/NAME` (emptied first).
    pub fn repo(&self, name: &str) -> PathBuf {
        let _ = std::fs::remove_dir_all(self.root.join(BUCKET).join(name));
        PathBuf::from(format!("s3://{BUCKET}/{name}"))
    }

    /// The file holding object `key` of repository `repo` (an `s3://` URL of this server).
    pub fn object(&self, repo: &Path, key: &str) -> PathBuf {
        let rel = repo
            .to_str()
            .and_then(|s| s.strip_prefix("s3://"))
            .expect("an s3:// repository");
        self.root.join(rel).join(key)
    }

    /// Copies repository `from` to `to` (both of this server), as `cp -a` copies a
    /// repository directory.
    pub fn copy_repo(&self, from: &Path, to: &Path) {
        let (src, dst) = (self.object(from, ""), self.object(to, ""));
        let _ = std::fs::remove_dir_all(&dst);
        let st = Command::new("cp")
            .arg("-a")
            .arg(src.as_os_str())
            .arg(dst.as_os_str())
            .status()
            .unwrap();
        assert!(st.success(), "cp -a {} {}", src.display(), dst.display());
    }

    /// Makes every object of `repo` look `secs` seconds older (its LastModified).
    pub fn age(&self, repo: &Path, secs: u64) {
        let st = Command::new("find")
            .arg(self.object(repo, ""))
            .args(["-type", "f", "-exec", "touch", "-m", "-d"])
            .arg(format!("@{}", now() - secs as i64))
            .args(["{}", "+"])
            .status()
            .unwrap();
        assert!(st.success(), "aging the objects of {}", repo.display());
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How the proxy fails a request.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Answers `503 Slow Down` itself, as a busy S3 endpoint does.
    Unavailable,
    /// Answers nothing for this long, then closes the connection, as a stalled server
    /// does.
    Stall(Duration),
}

/// A proxy in front of a server that fails the first attempt of every `every`-th
/// distinct request (method and path) as its [`Fault`] says, and forwards everything
/// else: each request fails at most once, so a client that retries succeeds, and one that
/// does not fails.
pub struct FlakyProxy {
    /// `http://127.0.0.1:PORT`, to give as the endpoint.
    pub endpoint: String,
    injected: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// Longest request or response head the proxy reads (a hostile or broken peer cannot make
/// it allocate more).
const MAX_HEAD: usize = 64 << 10;

impl FlakyProxy {
    /// Starts the proxy in front of `upstream` (`http://HOST:PORT`), answering 503.
    pub fn start(upstream: &str, every: u64) -> FlakyProxy {
        FlakyProxy::failing(upstream, every, Fault::Unavailable)
    }

    /// Starts the proxy in front of `upstream` (`http://HOST:PORT`), failing with `fault`.
    pub fn failing(upstream: &str, every: u64, fault: Fault) -> FlakyProxy {
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::Arc;
        let upstream = upstream
            .strip_prefix("http://")
            .expect("an http:// upstream")
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let injected = Arc::new(AtomicU64::new(0));
        let seen = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(Mutex::new(std::collections::HashSet::<String>::new()));
        let inj = injected.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (upstream, inj, seen, failed) =
                    (upstream.clone(), inj.clone(), seen.clone(), failed.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &upstream, every, fault, &inj, &seen, &failed);
                });
            }
        });
        return FlakyProxy { endpoint, injected };

        /// Serves one client connection, request after request.
        fn serve(
            mut client: TcpStream,
            upstream: &str,
            every: u64,
            fault: Fault,
            injected: &AtomicU64,
            seen: &AtomicU64,
            failed: &Mutex<std::collections::HashSet<String>>,
        ) -> std::io::Result<()> {
            use std::io::Write;
            client.set_read_timeout(Some(Duration::from_secs(60)))?;
            loop {
                let Some((head, body)) = read_request(&mut client)? else {
                    return Ok(());
                };
                let line = head.lines().next().unwrap_or_default().to_string();
                let key: String = line.split(' ').take(2).collect::<Vec<_>>().join(" ");
                let n = seen.fetch_add(1, Ordering::SeqCst);
                if n % every == every - 1 && failed.lock().unwrap().insert(key) {
                    injected.fetch_add(1, Ordering::SeqCst);
                    if let Fault::Stall(d) = fault {
                        std::thread::sleep(d);
                        return Ok(());
                    }
                    let msg = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>injected by the test proxy</Message></Error>";
                    write!(
                        client,
                        "HTTP/1.1 503 Slow Down\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\r\n{msg}",
                        msg.len()
                    )?;
                    continue;
                }
                // Forwarded on a connection of its own, closed after the response, which
                // is relayed whole.
                let mut up = TcpStream::connect(upstream)?;
                up.set_read_timeout(Some(Duration::from_secs(60)))?;
                let mut req = head.replacen("\r\n", "\r\nconnection: close\r\n", 1);
                req.push_str("\r\n\r\n");
                up.write_all(req.as_bytes())?;
                up.write_all(&body)?;
                let mut resp = Vec::new();
                std::io::Read::read_to_end(&mut up, &mut resp)?;
                let is_head = line.starts_with("HEAD ");
                // The response as the upstream sent it, minus its connection header: the
                // client's connection stays open.
                let Some(end) = find(&resp, b"\r\n\r\n") else {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                };
                let mut resp_head = String::from_utf8_lossy(&resp[..end])
                    .split("\r\n")
                    .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
                    .collect::<Vec<_>>()
                    .join("\r\n");
                resp_head.push_str("\r\n\r\n");
                let text_end = end + 4;
                client.write_all(resp_head.as_bytes())?;
                if !is_head {
                    client.write_all(&resp[text_end..])?;
                }
            }
        }

        /// One HTTP/1.1 request head without its final empty line, and its
        /// `content-length` body; `None` at a clean end of the connection.
        fn read_request(s: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
            use std::io::Read;
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if s.read(&mut byte)? == 0 {
                    return if head.is_empty() {
                        Ok(None)
                    } else {
                        Err(std::io::ErrorKind::UnexpectedEof.into())
                    };
                }
                head.push(byte[0]);
                assert!(head.len() <= MAX_HEAD, "head longer than {MAX_HEAD} bytes");
            }
            let text = String::from_utf8_lossy(&head[..head.len() - 4]).to_string();
            let mut len = 0usize;
            for l in text.lines().skip(1) {
                let lower = l.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                assert!(
                    !lower.starts_with("transfer-encoding:"),
                    "the proxy does not relay chunked requests"
                );
            }
            let mut body = vec![0u8; len];
            s.read_exact(&mut body)?;
            Ok(Some((text, body)))
        }

        fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
            hay.windows(needle.len()).position(|w| w == needle)
        }
    }

    /// How many requests the proxy has answered with 503 so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(std::sync::atomic::Ordering::SeqCst)
    }
}
