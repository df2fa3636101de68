//! Thread-loops mode by itself: each loop thread serves its own
//! connections end to end, so one stuck loop stalls only those, the loops
//! share the worker's memory (one cache), and with `--accept reuseport`
//! each loop gets an even share.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

/// Which loop thread serves this connection (`forkpool-w0l1`).
fn loop_of(client: &mut Client) -> String {
    let response = client.get("/-/work/cpu?ms=0");
    json_field(&response, "thread")
        .as_str()
        .unwrap()
        .to_string()
}

/// Opens connections to a one-worker, two-loop server until loop A has
/// two and loop B one: (A's first, A's second, B's).
fn two_on_one_loop_one_on_the_other(server: &Server) -> (Client, Client, Client) {
    let mut by_loop: std::collections::HashMap<String, Vec<Client>> = Default::default();
    let found = wait_until(DEADLINE, || {
        let mut client = server.connect();
        let name = loop_of(&mut client);
        by_loop.entry(name).or_default().push(client);
        by_loop.len() == 2 && by_loop.values().any(|c| c.len() >= 2)
    });
    assert!(found, "connections never reached both loops");
    let mut loops: Vec<Vec<Client>> = by_loop.into_values().collect();
    // The loop with two connections first.
    loops.sort_by_key(|clients| std::cmp::Reverse(clients.len()));
    let other = loops[1].remove(0);
    let mut first = loops.swap_remove(0).into_iter();
    (first.next().unwrap(), first.next().unwrap(), other)
}

#[test]
fn one_stuck_loop_stalls_only_its_own_connections() {
    let server = Server::start(
        "thread-loops",
        &["--workers", "1", "--threads", "2", "--faults"],
    );
    server.wait_for_workers(1);
    let (mut trigger, mut same_loop, mut other_loop) = two_on_one_loop_one_on_the_other(&server);
    trigger.send(b"POST /-/fault/hang HTTP/1.1\r\nHost: localhost\r\n\r\n");
    server.wait_for_log("injecting fault \"hang\"");
    same_loop.send(b"GET /-/work/cpu?ms=0 HTTP/1.1\r\nHost: localhost\r\n\r\n");
    // The other loop of the same process serves on...
    let response = other_loop.get("/hello.txt");
    assert_eq!(response.status, 200);
    // ...while the stuck one holds every connection it owns.
    assert!(same_loop.silent_for(Duration::from_millis(500)));
    // The status shows the stuck loop's request (the other loop, which
    // answers, is busy with the status request itself).
    let status: Value = serde_json::from_str(&server.get("/-/status").text()).unwrap();
    let worker = &status["workers"][0];
    assert_eq!(worker["loops"].as_array().unwrap().len(), 2);
    assert_eq!(worker["threads_busy"], 2, "{worker:#}");
    assert!(
        worker["oldest_request_ms"].as_u64().unwrap() >= 500,
        "{worker:#}"
    );
}

#[test]
fn the_loops_of_a_worker_share_its_memory() {
    let server = Server::start("thread-loops", &["--workers", "1", "--threads", "2"]);
    server.wait_for_workers(1);
    let (mut a, _, mut b) = two_on_one_loop_one_on_the_other(&server);
    let total = |client: &mut Client, ops: u64| {
        let response = client.get(&format!("/-/work/shared?ops={ops}"));
        json_field(&response, "total").as_u64().unwrap()
    };
    let after_a = total(&mut a, 5);
    // One cache for both loops: B's count includes A's work.
    assert_eq!(total(&mut b, 7), after_a + 7);
}

#[test]
fn reuseport_gives_each_loop_an_even_share() {
    let server = Server::start(
        "thread-loops",
        &["--workers", "1", "--threads", "4", "--accept", "reuseport"],
    );
    server.wait_for_workers(1);
    let mut clients: Vec<Client> = (0..200).map(|_| server.connect()).collect();
    for client in &mut clients {
        assert_eq!(client.get("/hello.txt").status, 200);
    }
    let status: Value = serde_json::from_str(&server.get("/-/status").text()).unwrap();
    let worker = &status["workers"][0];
    let accepted: Vec<u64> = worker["loops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["accepted"].as_u64().unwrap())
        .collect();
    assert_eq!(accepted.len(), 4);
    assert!(accepted.iter().sum::<u64>() >= 200, "{accepted:?}");
    let fairness = worker["fairness"].as_f64().unwrap();
    assert!(fairness >= 0.9, "Jain's index {fairness} over {accepted:?}");
    let requests: u64 = worker["loops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(requests, worker["requests"].as_u64().unwrap());
}
