//! Who may reach what, against the real binary in every mode: the `Host`
//! check (DNS rebinding), faults as same-origin POSTs only (CSRF), the
//! reload that must not switch faults on for a public socket, and the lab
//! endpoints as another machine sees them.
//!
//! Another machine is a network namespace this test makes, joined to the
//! host by a veth pair it addresses itself (a /30 in 10.200.0.0/13, picked
//! from the test's pid, checked unused): the client runs on a thread that
//! entered the namespace, the server listens on 0.0.0.0 and sees the
//! namespace's address as the peer. Nothing leaves the pair, and both are
//! removed on drop. Without `ip` (iproute2) or root those tests print
//! "skipped" and pass, except when `CI` is set: then they fail, so a CI
//! image can't skip them silently.

mod common;

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use common::*;

/// The server's port on 127.0.0.1, whatever address it listens on.
fn local(server: &Server) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, server.addr.port()))
}

/// One request on a fresh connection to `addr`.
fn ask(addr: SocketAddr, raw: &str) -> Response {
    let head_only = raw.starts_with("HEAD ");
    let mut client = Client::connect(addr);
    client.send(raw.as_bytes());
    client.read_response(head_only).expect("a response")
}

/// Starts forkpool listening on `0.0.0.0:0` (every interface: not loopback
/// for the rules, still reachable at 127.0.0.1) with `config` as its file.
fn start_public(mode: &str, config: &str) -> Server {
    let root = TempDir::new();
    write_fixtures(root.path());
    let config = write_config(config);
    let args: Vec<String> = [
        root.path().to_str().unwrap(),
        "--config",
        &config,
        "--listen",
        "0.0.0.0:0",
        "--mode",
        mode,
        "--workers",
        "2",
        "--threads",
        "2",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect();
    Server::start_with(root, &args)
}

// ---------------------------------------------------------------------------
// Host (DNS rebinding)
// ---------------------------------------------------------------------------

every_mode!(a_host_that_is_not_this_server_gets_421, |mode| {
    let server = Server::start(mode, &["--server-name", "dev.example"]);
    let port = server.addr.port();
    let mut client = server.connect();
    for path in ["/hello.txt", "/", "/-/status", "/-/work/cpu?ms=0"] {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: attacker.example:{port}\r\n\r\n");
        let refused = client.request(&raw);
        assert_eq!(refused.status, 421, "{path}");
        let text = refused.text();
        assert!(!text.contains("hello, world"), "{path}: {text}");
        assert!(
            text.contains("--server-name attacker.example"),
            "{path}: {text}"
        );
        assert!(text.contains("server_names"), "{path}: {text}");
        // The connection carries on.
        assert_eq!(client.get(path).status, 200, "{path}");
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("app.localhost:{port}"),
        format!("[::1]:{port}"),
        format!("Dev.Example:{port}"),
        "dev.example".to_string(),
    ] {
        for path in ["/hello.txt", "/-/status"] {
            let raw = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
            assert_eq!(client.request(&raw).status, 200, "{host} {path}");
        }
    }
    // HTTP/1.0 may omit Host; a browser never does, so it is no rebinding.
    for path in ["/hello.txt", "/-/status"] {
        let raw = format!("GET {path} HTTP/1.0\r\n\r\n");
        assert_eq!(ask(server.addr, &raw).status, 200, "{path}");
    }
    let raw = "GET /hello.txt HTTP/1.1\r\nHost: localhost:port\r\n\r\n";
    assert_eq!(ask(server.addr, raw).status, 400);
});

// ---------------------------------------------------------------------------
// Faults: POST only, same origin only (CSRF)
// ---------------------------------------------------------------------------

every_mode!(workloads_refuse_other_sites_pages, |mode| {
    let server = Server::start(mode, &[]);
    let port = server.addr.port();
    let host = format!("Host: 127.0.0.1:{port}\r\n");
    // An <img src> or fetch from a page of another site (browsers say so
    // in Sec-Fetch-Site, fetch also in Origin) burns nothing.
    for extra in [
        "Sec-Fetch-Site: cross-site\r\n".to_string(),
        format!("Sec-Fetch-Site: same-site\r\nOrigin: http://localhost:{port}\r\n"),
        "Origin: http://attacker.example\r\n".to_string(),
    ] {
        let raw = format!("GET /-/work/cpu?ms=2000 HTTP/1.1\r\n{host}{extra}\r\n");
        let response = ask(server.addr, &raw);
        assert_eq!(response.status, 403, "{extra:?}");
    }
    server.wait_for_log("refused GET /-/work/cpu?ms=2000 from another origin");
    // The server's own page, and load generators and curl (no Origin).
    for extra in [
        format!("Sec-Fetch-Site: same-origin\r\nOrigin: http://127.0.0.1:{port}\r\n"),
        String::new(),
    ] {
        let raw = format!("GET /-/work/cpu?ms=0 HTTP/1.1\r\n{host}{extra}\r\n");
        assert_eq!(ask(server.addr, &raw).status, 200, "{extra:?}");
    }
});

every_mode!(faults_are_same_origin_posts_only, |mode| {
    let server = Server::start(mode, &["--faults"]);
    let workers = server.wait_for_workers(2);
    let port = server.addr.port();
    let host = format!("Host: 127.0.0.1:{port}\r\n");
    // A GET (an <img>, a link) or a HEAD never runs a fault.
    for method in ["GET", "HEAD"] {
        let raw = format!("{method} /-/fault/abort HTTP/1.1\r\n{host}\r\n");
        let response = ask(server.addr, &raw);
        assert_eq!(response.status, 405, "{method}");
        assert_eq!(response.header("allow"), Some("POST"), "{method}");
    }
    // A POST another site's page sent (a form, fetch in no-cors mode).
    for extra in [
        "Origin: http://attacker.example\r\n".to_string(),
        format!("Origin: http://localhost:{port}\r\n"),
        format!("Origin: http://127.0.0.1:{}\r\n", port.wrapping_add(1)),
        "Origin: null\r\n".to_string(),
        "Sec-Fetch-Site: cross-site\r\n".to_string(),
        format!("Origin: http://127.0.0.1:{port}\r\nSec-Fetch-Site: same-site\r\n"),
    ] {
        let raw = format!("POST /-/fault/abort HTTP/1.1\r\n{host}{extra}\r\n");
        let response = ask(server.addr, &raw);
        assert_eq!(response.status, 403, "{extra:?}");
        assert!(response.text().contains("Origin"), "{}", response.text());
    }
    server.wait_for_log("refused POST /-/fault/abort from another origin");
    assert_eq!(server.workers(), workers, "a refused fault killed a worker");
    // This server's own page, and a client that is no browser (curl).
    for extra in [
        format!("Origin: http://127.0.0.1:{port}\r\nSec-Fetch-Site: same-origin\r\n"),
        String::new(),
    ] {
        let raw = format!("POST /-/fault/panic HTTP/1.1\r\n{host}{extra}\r\n");
        assert_eq!(ask(server.addr, &raw).status, 500, "{extra:?}");
    }
    // The other lab endpoints keep GET and HEAD only.
    let raw = format!("POST /-/status HTTP/1.1\r\n{host}\r\n");
    let response = ask(server.addr, &raw);
    assert_eq!(response.status, 405);
    assert_eq!(response.header("allow"), Some("GET, HEAD"));
    // Loopback only: nothing to warn about.
    assert!(!server.log().contains("not a loopback address"));
});

// ---------------------------------------------------------------------------
// Reload (SIGHUP) against the socket in force
// ---------------------------------------------------------------------------

every_mode!(a_reload_cannot_turn_faults_on_for_a_public_socket, |mode| {
    let root = TempDir::new();
    write_fixtures(root.path());
    // The address (and the worker count) come from the file, so a reload
    // may name others.
    let config = write_config("listen = \"0.0.0.0:0\"\nworkers = 2\n");
    let args: Vec<String> = [
        root.path().to_str().unwrap(),
        "--config",
        &config,
        "--mode",
        mode,
        "--threads",
        "2",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect();
    let server = Server::start_with(root, &args);
    assert!(server.addr.ip().is_unspecified(), "{}", server.addr);
    let workers = server.wait_for_workers(2);
    // One line at start names what other machines get.
    server.wait_for_log("not a loopback address");
    let exposed = server.log();
    assert_eq!(exposed.matches("not a loopback address").count(), 1);
    assert!(exposed.contains("/-/fault: off"), "{exposed}");
    let real = format!("listening on {}, not a loopback address", server.addr);
    assert!(exposed.contains(&real), "{exposed}");

    // The file now asks for faults on a loopback address; the socket in
    // force stays 0.0.0.0 (a new one needs a restart): refused.
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\n[faults]\nenabled = true\n",
    )
    .unwrap();
    server.signal(libc::SIGHUP);
    server.wait_for_log(
        "reload failed, still running on the old configuration: invalid faults.enabled",
    );
    let raw = "POST /-/fault/panic HTTP/1.1\r\nHost: localhost\r\n\r\n";
    assert_eq!(ask(local(&server), raw).status, 404);
    assert_eq!(server.workers(), workers);

    // A file the gate lets through is applied, still without faults.
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nworkers = 3\n").unwrap();
    server.signal(libc::SIGHUP);
    server.wait_for_log("the listen address and backlog need a restart; keeping 0.0.0.0:");
    let replaced = wait_until(DEADLINE, || {
        let now = server.workers();
        now.len() == 3 && now.iter().all(|pid| !workers.contains(pid))
    });
    assert!(replaced, "log:\n{}", server.log());
    assert_eq!(ask(local(&server), raw).status, 404);
});

// ---------------------------------------------------------------------------
// Another machine: a network namespace over a veth pair
// ---------------------------------------------------------------------------

/// A network namespace joined to this one by a veth pair, both made for
/// one test and deleted on drop.
struct RemotePeer {
    namespace: String,
    /// This side of the pair (deleting it deletes both ends).
    link: String,
    /// The address of this side, which the namespace's client connects to.
    host_ip: Ipv4Addr,
}

impl RemotePeer {
    /// Makes the namespace and the pair; `None` (with a note) when this
    /// machine can't, a panic under `CI`.
    fn create() -> Option<RemotePeer> {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        // SAFETY: geteuid has no preconditions and cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let has_ip = Command::new("ip").arg("-V").output().is_ok();
        if !has_ip || !root {
            let why = if has_ip {
                "not root (creating a network namespace needs CAP_NET_ADMIN)"
            } else {
                "`ip` not found (apt-get install iproute2)"
            };
            return skip(why);
        }
        let pid = std::process::id();
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let peer = RemotePeer {
            namespace: format!("forkpool-{pid}-{n}"),
            link: format!("fp{pid:x}h{n}"),
            host_ip: unused_subnet(pid, n),
        };
        let [a, b, c, d] = peer.host_ip.octets();
        let ns_ip = Ipv4Addr::new(a, b, c, d + 1);
        let ns_link = format!("fp{pid:x}n{n}");
        let steps: [Vec<String>; 6] = [
            vec!["netns".into(), "add".into(), peer.namespace.clone()],
            vec![
                "link".into(),
                "add".into(),
                peer.link.clone(),
                "type".into(),
                "veth".into(),
                "peer".into(),
                "name".into(),
                ns_link.clone(),
                "netns".into(),
                peer.namespace.clone(),
            ],
            vec![
                "addr".into(),
                "add".into(),
                format!("{}/30", peer.host_ip),
                "dev".into(),
                peer.link.clone(),
            ],
            vec!["link".into(), "set".into(), peer.link.clone(), "up".into()],
            vec![
                "-n".into(),
                peer.namespace.clone(),
                "addr".into(),
                "add".into(),
                format!("{ns_ip}/30"),
                "dev".into(),
                ns_link.clone(),
            ],
            vec![
                "-n".into(),
                peer.namespace.clone(),
                "link".into(),
                "set".into(),
                ns_link,
                "up".into(),
            ],
        ];
        for step in steps {
            if let Err(why) = ip(&step) {
                drop(peer); // removes whatever was made
                return skip(&why);
            }
        }
        Some(peer)
    }

    /// A connection to `port` on this side of the pair, made from inside
    /// the namespace: the server sees the namespace's address as its peer.
    fn connect(&self, port: u16) -> Client {
        let namespace = format!("/run/netns/{}", self.namespace);
        let addr = SocketAddr::from((self.host_ip, port));
        // A socket belongs to the namespace of the thread that made it, so
        // a thread enters the namespace, connects and ends.
        std::thread::spawn(move || {
            let file = std::fs::File::open(&namespace).expect("the namespace file");
            // SAFETY: setns(2) on a namespace fd we hold; it moves only this
            // thread, which does nothing after connecting.
            let entered = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(entered, 0, "setns: {}", std::io::Error::last_os_error());
            Client::connect(addr)
        })
        .join()
        .unwrap()
    }

    /// `GET path` from the namespace, with the Host a browser there would send.
    fn get(&self, port: u16, path: &str) -> Response {
        let host = SocketAddr::from((self.host_ip, port));
        self.connect(port)
            .request(&format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n"))
    }

    /// `POST path` from the namespace, as curl would send it.
    fn post(&self, port: u16, path: &str) -> Response {
        let host = SocketAddr::from((self.host_ip, port));
        self.connect(port)
            .request(&format!("POST {path} HTTP/1.1\r\nHost: {host}\r\n\r\n"))
    }
}

impl Drop for RemotePeer {
    fn drop(&mut self) {
        let _ = ip(&["link".into(), "del".into(), self.link.clone()]);
        let _ = ip(&["netns".into(), "del".into(), self.namespace.clone()]);
    }
}

/// Runs `ip ARGS`; the command and its stderr when it fails.
fn ip(args: &[String]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The first address of a /30 in 10.200.0.0/13 that no interface here
/// uses, starting from one picked by `pid` and `n`.
fn unused_subnet(pid: u32, n: u32) -> Ipv4Addr {
    let used = Command::new("ip")
        .args(["-o", "-4", "addr", "show"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default();
    const BLOCKS: u32 = 1 << 17; // /30s in a /13
    let first = pid.wrapping_mul(64).wrapping_add(n) % BLOCKS;
    (0..BLOCKS)
        .map(|i| {
            let block = (first + i) % BLOCKS;
            let [_, b, c, d] = (block * 4).to_be_bytes();
            Ipv4Addr::new(10, 200 + b, c, d + 1)
        })
        .find(|ip| {
            let [a, b, c, d] = ip.octets();
            (0..2).all(|k| !used.contains(&format!(" {a}.{b}.{c}.{}/", d + k)))
        })
        .expect("a free /30 in 10.200.0.0/13")
}

/// Says why the remote-peer test can't run: a note on fd 2, or a panic
/// under `CI`.
fn skip<T>(why: &str) -> Option<T> {
    assert!(
        std::env::var_os("CI").is_none(),
        "the remote-peer tests can't run ({why}) and CI is set, so they may not skip"
    );
    // Straight to fd 2: eprintln! would be captured, and so never seen.
    let note = format!("skipped: remote-peer test: {why}\n");
    let _ = std::io::stderr().write_all(note.as_bytes());
    None
}

every_mode!(lab_endpoints_are_404_to_another_machine, |mode| {
    let Some(peer) = RemotePeer::create() else {
        return;
    };
    let server = start_public(mode, "");
    let port = server.addr.port();
    server.wait_for_workers(2);
    // The peer check is the one refusing: the same requests from loopback
    // are answered.
    for path in ["/-/status", "/-/metrics", "/-/", "/-/work/cpu?ms=0"] {
        assert_eq!(peer.get(port, path).status, 404, "{path}");
        assert_eq!(ask(local(&server), &get_raw(path)).status, 200, "{path}");
    }
    assert_eq!(peer.post(port, "/-/status").status, 404);
    let file = peer.get(port, "/hello.txt");
    assert_eq!(file.status, 200);
    assert_eq!(file.text(), "hello, world\n");
    let note = server.log();
    assert!(
        note.contains("/-/metrics: loopback peers only ([lab] allow_remote)"),
        "{note}"
    );
});

every_mode!(lab_allow_remote_opens_the_views_only, |mode| {
    let Some(peer) = RemotePeer::create() else {
        return;
    };
    let server = start_public(mode, "[lab]\nallow_remote = true\n");
    let port = server.addr.port();
    server.wait_for_workers(2);
    for path in ["/-/status", "/-/metrics", "/-/"] {
        assert_eq!(peer.get(port, path).status, 200, "{path}");
    }
    assert_eq!(peer.get(port, "/-/work/cpu?ms=0").status, 404);
    assert_eq!(peer.get(port, "/hello.txt").status, 200);
    server.wait_for_log("/-/metrics: every peer ([lab] allow_remote)");
});

every_mode!(
    work_and_faults_open_to_another_machine_on_their_own_keys,
    |mode| {
        let Some(peer) = RemotePeer::create() else {
            return;
        };
        let config =
            "[lab]\nallow_remote_work = true\n[faults]\nenabled = true\nallow_remote = true\n";
        let server = start_public(mode, config);
        let port = server.addr.port();
        server.wait_for_workers(2);
        assert_eq!(peer.get(port, "/-/work/cpu?ms=0").status, 200);
        assert_eq!(peer.post(port, "/-/fault/panic").status, 500);
        assert_eq!(peer.get(port, "/-/fault/panic").status, 405);
        assert_eq!(peer.get(port, "/-/status").status, 404);
        server.wait_for_log("/-/fault: every peer");
    }
);

fn get_raw(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")
}
