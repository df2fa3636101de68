//! Faults and the supervisor that copes with them, on real processes, in
//! both architectures. For each fault: which worker dies or survives, which
//! connections are lost, whether the others keep working, how soon the
//! master replaces the dead, and that no zombie is left. Also the watchdog,
//! recycling, reloads under load, and the workloads' thread pool. Faults
//! are sent as POST, as they must be (tests/security.rs has the rest of
//! their access rules).

mod common;

use std::time::{Duration, Instant};

use common::*;

/// Short supervisor timeouts so tests finish quickly.
const SUPERVISED: &str = "[supervisor]\ntimeout = \"2s\"\ngraceful_timeout = \"2s\"\n";

fn start(mode: &str, extra_config: &str) -> Server {
    let config = write_config(&format!("{SUPERVISED}{extra_config}"));
    Server::start(mode, &["--config", &config, "--faults"])
}

/// Which worker serves this connection.
fn whose(client: &mut Client) -> i32 {
    pid_of(&client.get("/-/work/cpu?ms=0"))
}

/// Opens connections until `victim` has two (the one that triggers the
/// fault, and a bystander) and some other worker has one (a survivor).
fn spread(server: &Server) -> (i32, Client, Client, Client) {
    let deadline = Instant::now() + DEADLINE;
    let mut by_pid: std::collections::HashMap<i32, Vec<Client>> = Default::default();
    while Instant::now() < deadline {
        let mut client = server.connect();
        let pid = whose(&mut client);
        by_pid.entry(pid).or_default().push(client);
        let victim = by_pid.iter().find(|(_, c)| c.len() >= 2).map(|(p, _)| *p);
        let other = victim.and_then(|v| by_pid.keys().find(|&&p| p != v).copied());
        if let (Some(victim), Some(other)) = (victim, other) {
            let mut on_victim = by_pid.remove(&victim).unwrap();
            let survivor = by_pid.get_mut(&other).unwrap().pop().unwrap();
            let bystander = on_victim.pop().unwrap();
            let trigger = on_victim.pop().unwrap();
            return (victim, trigger, bystander, survivor);
        }
    }
    panic!(
        "could not spread connections over two workers: {:?}",
        by_pid.keys()
    );
}

/// Injects `fault` on `trigger`; returns whether any response came back.
fn inject(trigger: &mut Client, fault: &str) -> Option<Response> {
    trigger.send(format!("POST /-/fault/{fault} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes());
    trigger.read_response(false)
}

/// A fault that answers, on `client`.
fn post(client: &mut Client, fault: &str) -> Response {
    inject(client, fault).unwrap_or_else(|| panic!("no answer to {fault}"))
}

/// A fault that kills its whole worker process, in either architecture.
fn fatal_fault(mode: &str, fault: &str, death: &str) {
    let server = start(mode, "");
    server.wait_for_workers(2);
    let (victim, mut trigger, mut bystander, mut survivor) = spread(&server);
    let started = Instant::now();
    assert!(
        inject(&mut trigger, fault).is_none(),
        "{fault} answered instead of dying"
    );
    // Every connection of the dead worker is lost, bystanders included...
    assert!(
        bystander.is_closed(),
        "a connection of the dead worker survived {fault}"
    );
    // ...and the other worker's connections don't notice.
    assert_eq!(survivor.get("/hello.txt").status, 200);
    server.wait_for_log(&format!("(pid {victim}) {death}"));
    server.wait_for_replacement(victim, 2);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "replacement took {:?}",
        started.elapsed()
    );
    assert!(zombies_of(server.pid()).is_empty());
    assert_eq!(server.get("/hello.txt").status, 200);
}

every_mode!(abort_kills_only_its_worker, |mode| {
    fatal_fault(mode, "abort", "killed by SIGABRT");
});

every_mode!(segv_kills_only_its_worker, |mode| {
    fatal_fault(mode, "segv", "killed by SIGSEGV");
});

every_mode!(exit_ends_only_its_worker, |mode| {
    fatal_fault(mode, "exit", "exited with code 1");
});

every_mode!(stack_overflow_kills_only_its_worker, |mode| {
    // Rust reports the overflow on the guard page and aborts.
    fatal_fault(mode, "stack-overflow", "killed by SIG");
});

every_mode!(a_panic_is_contained_to_its_request, |mode| {
    let server = start(mode, "");
    let workers = server.wait_for_workers(2);
    let mut client = server.connect();
    let pid = whose(&mut client);
    let response = post(&mut client, "panic");
    assert_eq!(response.status, 500);
    // Same connection, same worker, still serving.
    assert_eq!(whose(&mut client), pid);
    assert_eq!(server.workers(), workers);
    server.wait_for_log("handler panicked on POST /-/fault/panic: injected panic");
});

every_mode!(a_poisoned_lock_recovers, |mode| {
    let server = start(mode, "");
    let mut client = server.connect();
    let pid = whose(&mut client);
    assert_eq!(post(&mut client, "poison").status, 500);
    let shared = client.get("/-/work/shared?ops=10");
    assert_eq!(shared.status, 200, "{}", shared.text());
    assert_eq!(pid_of(&shared), pid);
    server.wait_for_log("poisoned");
});

every_mode!(a_hang_is_caught_by_the_watchdog, |mode| {
    let server = start(mode, "");
    server.wait_for_workers(2);
    let (victim, mut trigger, mut bystander, mut survivor) = spread(&server);
    trigger.send(b"POST /-/fault/hang HTTP/1.1\r\nHost: localhost\r\n\r\n");
    std::thread::sleep(Duration::from_millis(200));
    bystander.send(b"GET /-/work/cpu?ms=0 HTTP/1.1\r\nHost: localhost\r\n\r\n");
    if mode == "process" {
        // The event loop is stuck: the bystander waits with it, until the
        // watchdog kills the worker (no heartbeat) and both are lost.
        assert!(bystander.read_response(false).is_none());
        server.wait_for_log(&format!("(pid {victim}) sent no heartbeat"));
        server.wait_for_log(&format!("(pid {victim}) killed by SIGABRT"));
    } else {
        if mode == "thread" {
            // Only one pool thread is stuck: the bystander is served.
            let response = bystander
                .read_response(false)
                .expect("the bystander's answer");
            assert_eq!(response.status, 200);
        }
        // (thread-loops: only one loop is stuck; whether the bystander
        // shares it is the kernel's choice. `tests/loops.rs` pins that
        // down.) The master sees the hung request, or the loop that stopped
        // turning, whichever passes the timeout first; it starts a
        // replacement and drains the old worker, which gives up on the hung
        // request once `graceful_timeout` has passed.
        server.wait_for_any_log(&[
            &format!("(pid {victim}): a request has been running"),
            &format!("(pid {victim}): a loop thread has not turned"),
        ]);
        server.wait_for_log(&format!("[{victim}] graceful stop took longer"));
        server.wait_for_log(&format!("(pid {victim}) exited with code 4"));
    }
    assert!(
        trigger.read_response(false).is_none(),
        "the hung request can't be answered"
    );
    assert_eq!(survivor.get("/hello.txt").status, 200);
    server.wait_for_replacement(victim, 2);
    assert!(zombies_of(server.pid()).is_empty());
});

every_mode!(a_leak_past_max_rss_recycles_the_worker, |mode| {
    let server = start(mode, "max_rss = \"64MiB\"\n");
    let workers = server.wait_for_workers(2);
    let mut client = server.connect();
    let leaker = whose(&mut client);
    assert_eq!(post(&mut client, "leak?mb=100").status, 200);
    server.wait_for_log(&format!("(pid {leaker}): RSS"));
    server.wait_for_replacement(leaker, 2);
    // The other worker was not touched.
    let other = workers.iter().find(|&&p| p != leaker).unwrap();
    assert!(server.workers().contains(other));
    server.wait_for_log(&format!("(pid {leaker}) exited with code 0"));
});

every_mode!(max_requests_recycles_without_failures, |mode| {
    let server = start(mode, "max_requests = 20\nmax_requests_jitter = 5\n");
    let first = server.wait_for_workers(2);
    let mut failures = 0;
    let mut recycled = false;
    let deadline = Instant::now() + DEADLINE;
    while !recycled && Instant::now() < deadline {
        // A fresh connection per burst, as a browser would reconnect.
        let mut client = server.connect();
        for _ in 0..10 {
            client.send(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
            match client.read_response(false) {
                Some(r) if r.status == 200 => {
                    if r.header("connection") == Some("close") {
                        break;
                    }
                }
                _ => {
                    failures += 1;
                    break;
                }
            }
        }
        recycled = !server.workers().iter().any(|p| first.contains(p));
    }
    assert!(
        recycled,
        "workers were not recycled; log:\n{}",
        server.log()
    );
    assert_eq!(failures, 0, "log:\n{}", server.log());
    server.wait_for_log("(max_requests)");
});

every_mode!(reload_under_load_drops_nothing, |mode| {
    let config = write_config(SUPERVISED);
    let server = Server::start(mode, &["--config", &config]);
    let first = server.wait_for_workers(2);
    let addr = server.addr;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let (mut ok, mut failed) = (0, 0);
                let mut client = Client::connect(addr);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    client.send(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
                    match client.read_response(false) {
                        Some(r) if r.status == 200 => {
                            ok += 1;
                            if r.header("connection") == Some("close") {
                                client = Client::connect(addr);
                            }
                        }
                        _ => {
                            failed += 1;
                            client = Client::connect(addr);
                        }
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    for round in 1..=2 {
        let before = server.workers();
        server.signal(libc::SIGHUP);
        let replaced = wait_until(DEADLINE, || {
            let now = server.workers();
            now.len() == 2 && now.iter().all(|p| !before.contains(p))
        });
        assert!(
            replaced,
            "reload {round} did not replace the workers; log:\n{}",
            server.log()
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = clients
        .into_iter()
        .map(|c| c.join().unwrap())
        .fold((0, 0), |(a, b), (c, d)| (a + c, b + d));
    assert!(ok > 100, "too little traffic to mean anything: {ok}");
    assert_eq!(
        failed,
        0,
        "{failed} failed of {}; log:\n{}",
        ok + failed,
        server.log()
    );
    assert!(server.workers().iter().all(|p| !first.contains(p)));
});

every_mode!(a_bad_config_on_reload_keeps_the_old_one, |mode| {
    let root = TempDir::new();
    write_fixtures(root.path());
    let config = root.path().join("forkpool.toml");
    std::fs::write(&config, "workers = 2\n").unwrap();
    let args: Vec<String> = vec![
        root.path().display().to_string(),
        "--config".into(),
        config.display().to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--mode".into(),
        mode.into(),
    ];
    let server = Server::start_with(root, &args);
    let workers = server.wait_for_workers(2);
    std::fs::write(&config, "workers = \"many\"\n").unwrap();
    server.signal(libc::SIGHUP);
    server.wait_for_log("reload failed, still running on the old configuration: invalid workers");
    assert_eq!(server.workers(), workers);
    // A good file is then applied: three workers.
    std::fs::write(&config, "workers = 3\n").unwrap();
    server.signal(libc::SIGHUP);
    // Three new ones: while the old drain, three may run, not all new.
    let replaced = wait_until(DEADLINE, || {
        let now = server.workers();
        now.len() == 3 && now.iter().all(|p| !workers.contains(p))
    });
    assert!(replaced, "log:\n{}", server.log());
});

every_mode!(faults_are_off_by_default, |mode| {
    let server = Server::start(mode, &[]);
    let workers = server.wait_for_workers(2);
    let mut client = server.connect();
    for fault in ["abort", "segv", "panic", "hang", "exit"] {
        assert_eq!(client.get(&format!("/-/fault/{fault}")).status, 404);
        assert_eq!(post(&mut client, fault).status, 404, "{fault}");
    }
    assert_eq!(server.workers(), workers);
});

every_mode!(a_reload_can_turn_faults_on_for_a_loopback_socket, |mode| {
    let config = write_config(SUPERVISED);
    let server = Server::start(mode, &["--config", &config]);
    let workers = server.wait_for_workers(2);
    let mut client = server.connect();
    assert_eq!(post(&mut client, "panic").status, 404);
    std::fs::write(&config, format!("{SUPERVISED}[faults]\nenabled = true\n")).unwrap();
    server.signal(libc::SIGHUP);
    server.wait_for_log("reloaded configuration");
    let replaced = wait_until(DEADLINE, || {
        let now = server.workers();
        now.len() == 2 && now.iter().all(|p| !workers.contains(p))
    });
    assert!(replaced, "log:\n{}", server.log());
    assert_eq!(post(&mut server.connect(), "panic").status, 500);
});

every_mode!(io_waits_do_not_block_other_requests, |mode| {
    let server = Server::start(mode, &["--workers", "1", "--threads", "4"]);
    let mut waiter = server.connect();
    waiter.send(b"GET /-/work/io?ms=1500 HTTP/1.1\r\nHost: localhost\r\n\r\n");
    // While one request waits, another connection is served at once: on the
    // event loop because the wait is a timer, on the pool because another
    // thread is free.
    let started = Instant::now();
    assert_eq!(server.get("/hello.txt").status, 200);
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "{:?}",
        started.elapsed()
    );
    let response = waiter.read_response(false).unwrap();
    assert_eq!(response.status, 200);
    assert!(response.text().contains(&format!("\"mode\":\"{mode}\"")));
});

every_mode!(bad_workload_parameters_are_400, |mode| {
    let server = Server::start(mode, &[]);
    for path in [
        "/-/work/cpu?ms=99999",
        "/-/work/mem?kb=x",
        "/-/work/io",
        "/-/work/shared?ops=-3",
    ] {
        let response = server.get(path);
        assert_eq!(response.status, 400, "{path}");
    }
});

every_mode!(each_worker_names_its_threads, |mode| {
    let server = Server::start(mode, &["--workers", "1", "--threads", "3"]);
    let worker = server.wait_for_workers(1)[0];
    // Process mode: the loop is the worker's one thread; thread mode adds
    // its pool threads, thread-loops its loop threads.
    let expected: &[&str] = match mode {
        "process" => &["forkpool-w0"],
        "thread" => &[
            "forkpool-w0",
            "forkpool-w0-t0",
            "forkpool-w0-t1",
            "forkpool-w0-t2",
        ],
        _ => &[
            "forkpool-w0",
            "forkpool-w0l0",
            "forkpool-w0l1",
            "forkpool-w0l2",
        ],
    };
    let mut names = Vec::new();
    let ok = wait_until(DEADLINE, || {
        names = std::fs::read_dir(format!("/proc/{worker}/task"))
            .unwrap()
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
            .map(|n| n.trim().to_string())
            .collect();
        names.sort();
        // A new thread carries its parent's name until it sets its own.
        names == expected
    });
    assert!(ok, "{names:?}");
});

every_mode!(a_crash_loop_backs_off, |mode| {
    let config = write_config(SUPERVISED);
    let server = Server::start(mode, &["--config", &config, "--faults", "--workers", "1"]);
    // Kill each incarnation right after it starts: every death within 5 s
    // of its spawn doubles the delay before the next one.
    for delay in ["100ms", "200ms", "400ms"] {
        let victim = server.wait_for_workers(1)[0];
        let mut client = server.connect();
        assert_eq!(whose(&mut client), victim);
        assert!(inject(&mut client, "abort").is_none());
        server.wait_for_log(&format!("(pid {victim}) killed by SIGABRT"));
        server.wait_for_log(&format!("crash loop? respawning in {delay}"));
        let replaced = wait_until(DEADLINE, || {
            let workers = server.workers();
            workers.len() == 1 && !workers.contains(&victim)
        });
        assert!(replaced, "log:\n{}", server.log());
    }
});
