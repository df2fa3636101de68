//! The accept strategy as a variable: `--accept reuseport` spreads
//! connections evenly, keeps a crash's blast radius near 1/K, and steers
//! new connections around a position that can't accept (in thread-loops
//! mode, each of its loops' sockets); `max_connections = 1` makes process
//! mode behave as Apache prefork (and a one-loop worker of any mode hold
//! one connection at a time). Every test runs in every mode.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;
use serde_json::Value;

fn status(server: &Server) -> Value {
    let response = server.get("/-/status");
    assert_eq!(response.status, 200, "{}", response.text());
    serde_json::from_str(&response.text()).expect("status is JSON")
}

/// Waits until `/-/status` shows `n` workers, all ready; returns it.
fn ready_status(server: &Server, n: usize) -> Value {
    let mut last = Value::Null;
    let ready = wait_until(DEADLINE, || {
        last = status(server);
        let workers = last["workers"].as_array().unwrap();
        workers.len() == n && workers.iter().all(|w| w["state"] == "ready")
    });
    assert!(ready, "{last:#}");
    last
}

/// `n` keep-alive connections, each having had one request answered (so
/// each is accepted), with the pid that served it.
fn served_connections(server: &Server, n: usize) -> Vec<(i32, Client)> {
    let clients: Vec<Client> = (0..n).map(|_| server.connect()).collect();
    clients
        .into_iter()
        .map(|mut client| (pid_of(&client.get("/-/work/cpu?ms=0")), client))
        .collect()
}

every_mode!(reuseport_spreads_connections_evenly_over_workers, |mode| {
    let server = Server::start(
        mode,
        &["--workers", "4", "--threads", "2", "--accept", "reuseport"],
    );
    server.wait_for_workers(4);
    ready_status(&server, 4);
    let connections = served_connections(&server, 256);
    let status = status(&server);
    let accepted: Vec<u64> = status["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["accepted"].as_u64().unwrap())
        .collect();
    // Every connection above, plus the status requests' own.
    assert!(accepted.iter().sum::<u64>() >= 256, "{accepted:?}");
    let fairness = status["totals"]["fairness"].as_f64().unwrap();
    assert!(fairness >= 0.9, "Jain's index {fairness} over {accepted:?}");
    assert!((fairness - jain(&accepted)).abs() < 1e-9);
    assert_eq!(status["config"]["accept"], "reuseport");
    drop(connections);
});

every_mode!(
    killing_one_of_four_reuseport_workers_loses_about_a_quarter,
    |mode| {
        let server = Server::start(
            mode,
            &["--workers", "4", "--threads", "2", "--accept", "reuseport"],
        );
        server.wait_for_workers(4);
        ready_status(&server, 4);
        let mut connections = served_connections(&server, 64);
        let victim = connections[0].0;
        let victims = connections.iter().filter(|(pid, _)| *pid == victim).count();
        // SAFETY: kill(2) on one of our server's workers.
        unsafe { libc::kill(victim, libc::SIGKILL) };
        let mut lost = 0;
        for (pid, client) in &mut connections {
            // The victim's sockets are gone: the write may fail, the read sees
            // the close or a reset.
            let _ = client
                .stream
                .write_all(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
            match client.read_response(false) {
                Some(response) => {
                    assert_ne!(*pid, victim);
                    assert_eq!(response.status, 200);
                }
                None => {
                    assert_eq!(*pid, victim, "a bystander worker's connection was lost");
                    lost += 1;
                }
            }
        }
        assert_eq!(lost, victims);
        // A quarter of 64 is 16; the hash spreads by chance (a binomial, sd 3.5).
        assert!((6..=28).contains(&lost), "lost {lost} of 64");
        server.wait_for_replacement(victim, 4);
    }
);

every_mode!(
    reuseport_steers_new_connections_off_a_removed_worker,
    |mode| {
        let server = Server::start(
            mode,
            &["--workers", "2", "--threads", "2", "--accept", "reuseport"],
        );
        server.wait_for_workers(2);
        ready_status(&server, 2);
        server.signal(libc::SIGTTOU);
        server.wait_for_workers(1);
        // Half of these would hash to the removed worker's socket, which the
        // master keeps open: without steering they would wait there forever.
        for _ in 0..40 {
            let mut client = server.connect();
            client.send(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n");
            assert!(
                !client.silent_for(Duration::from_secs(5)),
                "a new connection was queued where nobody accepts"
            );
            assert_eq!(client.read_response(false).unwrap().status, 200);
        }
    }
);

every_mode!(prefork_serves_one_connection_per_worker, |mode| {
    let config = write_config("max_connections = 1\n");
    let server = Server::start(
        mode,
        &["--workers", "2", "--threads", "1", "--config", &config],
    );
    server.wait_for_workers(2);
    // Two connections, each held by a worker of its own.
    let mut first = server.connect();
    let first_pid = pid_of(&first.get("/-/work/cpu?ms=0"));
    let mut second = server.connect();
    let second_pid = pid_of(&second.get("/-/work/cpu?ms=0"));
    assert_ne!(first_pid, second_pid, "one worker took both connections");
    // A third waits in the backlog while both workers are taken...
    let mut third = server.connect();
    third.send(b"GET /-/work/cpu?ms=0 HTTP/1.1\r\nHost: localhost\r\n\r\n");
    assert!(third.silent_for(Duration::from_millis(500)));
    // ...and is served once one of them is free.
    drop(first);
    let response = third.read_response(false).expect("served after a close");
    assert_eq!(pid_of(&response), first_pid);
    assert_eq!(pid_of(&second.get("/-/work/cpu?ms=0")), second_pid);
});
