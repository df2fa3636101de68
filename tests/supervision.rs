//! The master's supervision, on real processes, in both architectures:
//! respawn after a kill, graceful and fast stops, resizing, boot failure,
//! parent-death, and no zombies.

mod common;

use std::time::Duration;

use common::*;

every_mode!(a_killed_worker_is_respawned_and_logged, |mode| {
    let server = Server::start(mode, &[]);
    let before = server.wait_for_workers(2);
    // SAFETY: kill(2) on a worker of our own server.
    unsafe { libc::kill(before[0], libc::SIGKILL) };
    let after = server.wait_for_replacement(before[0], 2);
    assert!(
        after.contains(&before[1]),
        "the other worker must be untouched"
    );
    server.wait_for_log(&format!("(pid {}) killed by SIGKILL after", before[0]));
    assert!(server.log().contains("request(s) served"));
    assert!(zombies_of(server.pid()).is_empty());
    assert_eq!(server.get("/hello.txt").status, 200);
});

every_mode!(
    sigterm_finishes_the_request_in_flight_then_exits_0,
    |mode| {
        let mut server = Server::start(mode, &["--workers", "1"]);
        let workers = server.wait_for_workers(1);
        // A response larger than the socket buffers, read slowly: in flight
        // when SIGTERM arrives.
        let mut slow = server.connect();
        slow.send(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n");
        let mut idle = server.connect();
        assert_eq!(idle.get("/hello.txt").status, 200);
        std::thread::sleep(Duration::from_millis(100)); // let the first bytes go out
        server.signal(libc::SIGTERM);
        let response = slow.read_response(false).expect("the in-flight response");
        assert_eq!(response.status, 200);
        assert!(response.body == big_bin(), "the in-flight body was cut");
        assert_eq!(
            response.header("connection"),
            None,
            "headers went out before the stop"
        );
        assert!(
            slow.is_closed(),
            "a draining worker closes after the response"
        );
        assert!(
            idle.is_closed(),
            "idle keep-alive connections are closed on drain"
        );
        let status = server.wait_exit();
        assert_eq!(status.code(), Some(0), "log:\n{}", server.log());
        assert!(!is_alive(workers[0]), "worker outlived the master");
        assert!(
            server
                .log()
                .contains(&format!("(pid {}) exited with code 0", workers[0])),
            "{}",
            server.log()
        );
    }
);

every_mode!(sigint_stops_like_ctrl_c, |mode| {
    let mut server = Server::start(mode, &[]);
    let workers = server.wait_for_workers(2);
    server.signal(libc::SIGINT);
    assert_eq!(server.wait_exit().code(), Some(0), "log:\n{}", server.log());
    assert!(wait_until(DEADLINE, || workers
        .iter()
        .all(|&w| !is_alive(w))));
});

every_mode!(sigquit_stops_fast_even_with_a_busy_connection, |mode| {
    let mut server = Server::start(mode, &["--workers", "1"]);
    let workers = server.wait_for_workers(1);
    let mut slow = server.connect();
    slow.send(b"GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n");
    std::thread::sleep(Duration::from_millis(100));
    server.signal(libc::SIGQUIT);
    assert_eq!(server.wait_exit().code(), Some(0), "log:\n{}", server.log());
    assert!(!is_alive(workers[0]));
});

every_mode!(ttin_and_ttou_resize_the_pool, |mode| {
    let server = Server::start(mode, &["--workers", "1"]);
    server.wait_for_workers(1);
    server.signal(libc::SIGTTIN);
    server.wait_for_workers(2);
    server.signal(libc::SIGTTOU);
    server.wait_for_workers(1);
    // Never below one.
    server.signal(libc::SIGTTOU);
    server.wait_for_log("workers: 1 -> 1");
    assert_eq!(server.wait_for_workers(1).len(), 1);
    assert_eq!(server.get("/hello.txt").status, 200);
});

every_mode!(workers_exit_when_the_master_dies, |mode| {
    let server = Server::start(mode, &[]);
    let workers = server.wait_for_workers(2);
    server.signal(libc::SIGKILL);
    let all_gone = wait_until(DEADLINE, || workers.iter().all(|&w| !is_alive(w)));
    assert!(all_gone, "orphaned workers kept running");
});

every_mode!(a_worker_that_cannot_boot_stops_the_master, |mode| {
    // The first worker boots; then the root disappears, so the worker that
    // SIGTTIN adds can't open it, exits 3, and the master stops with an
    // error instead of respawning it forever.
    let mut server = Server::start(mode, &["--workers", "1"]);
    server.wait_for_workers(1);
    std::fs::remove_dir_all(server.root.path()).unwrap();
    server.signal(libc::SIGTTIN);
    let status = server.wait_exit();
    assert_eq!(status.code(), Some(1), "log:\n{}", server.log());
    assert!(server.log().contains("failed to start"), "{}", server.log());
    assert!(server.log().contains("exit code 3"), "{}", server.log());
});

every_mode!(sighup_while_stopping_starts_nothing, |mode| {
    let mut server = Server::start(mode, &["--workers", "1"]);
    let workers = server.wait_for_workers(1);
    // A request in flight keeps the graceful stop going while SIGHUP comes.
    let mut slow = server.connect();
    slow.send(b"GET /-/work/io?ms=1500 HTTP/1.1\r\nHost: localhost\r\n\r\n");
    server.signal(libc::SIGTERM);
    server.wait_for_log("stopping gracefully");
    server.signal(libc::SIGHUP);
    server.wait_for_log("ignoring SIGHUP: stopping");
    assert_eq!(slow.read_response(false).map(|r| r.status), Some(200));
    assert_eq!(server.wait_exit().code(), Some(0), "log:\n{}", server.log());
    let log = server.log();
    assert!(!log.contains("reloaded configuration"), "{log}");
    assert!(!is_alive(workers[0]));
});
