//! The server reporting on itself, on real processes, in both modes:
//! `/-/status` matches the processes that exist, `/-/metrics` is valid
//! Prometheus text with the same numbers, watching doesn't count as
//! traffic, and a death shows up with its cause.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

fn status(server: &Server) -> Value {
    let response = server.get("/-/status");
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    serde_json::from_str(&response.text()).expect("status is JSON")
}

fn pids(status: &Value) -> Vec<i64> {
    let mut pids: Vec<i64> = status["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["pid"].as_i64().unwrap())
        .collect();
    pids.sort();
    pids
}

every_mode!(status_describes_the_running_server, |mode| {
    let server = Server::start(mode, &["--threads", "3"]);
    let mut workers: Vec<i64> = server
        .wait_for_workers(2)
        .into_iter()
        .map(i64::from)
        .collect();
    workers.sort();
    // A process exists a moment before it is ready: wait for that.
    let mut status = Value::Null;
    let all_ready = wait_until(DEADLINE, || {
        status = self::status(&server);
        status["workers"]
            .as_array()
            .is_some_and(|w| w.iter().all(|w| w["state"] == "ready"))
    });
    assert!(all_ready, "{status:#}");
    assert_eq!(status["mode"], mode);
    assert_eq!(status["config"]["workers"], 2);
    assert_eq!(status["config"]["listen"], server.addr.to_string());
    assert_eq!(status["master"]["pid"], server.pid());
    assert!(status["master"]["os"]["pss_kib"].as_u64().unwrap() > 0);
    assert_eq!(pids(&status), workers);
    let threads = if mode == "process" { 1 } else { 3 };
    for (index, worker) in status["workers"].as_array().unwrap().iter().enumerate() {
        assert_eq!(worker["index"], index);
        assert_eq!(worker["state"], "ready");
        assert_eq!(worker["threads_total"], threads);
        let os = &worker["os"];
        // The pool threads plus the loop thread, or the loop threads plus
        // the main thread, as the kernel counts them.
        let tasks = if mode == "process" { 1 } else { 4 };
        assert_eq!(os["threads"], tasks, "{os}");
        // Thread-loops shows each loop (and how evenly they accept).
        let loops = if mode == "thread-loops" { 3 } else { 0 };
        assert_eq!(worker["loops"].as_array().unwrap().len(), loops);
        assert_eq!(worker.get("fairness").is_some(), loops > 0, "{worker:#}");
        assert!(os["rss_kib"].as_u64().unwrap() >= os["pss_kib"].as_u64().unwrap());
        assert!(os["uss_kib"].as_u64().unwrap() > 0);
    }
    assert_eq!(status["totals"]["workers"], 2);
    assert!(status["totals"]["fairness"].as_f64().unwrap() > 0.0);
    assert_eq!(status["config"]["accept"], "shared");
});

every_mode!(watching_is_not_counted_as_traffic, |mode| {
    let server = Server::start(mode, &[]);
    server.wait_for_workers(2);
    let mut client = server.connect();
    for _ in 0..5 {
        assert_eq!(client.get("/hello.txt").status, 200);
    }
    for _ in 0..3 {
        let totals = &status(&server)["totals"];
        assert_eq!(totals["requests"], 5, "{totals}");
        assert_eq!(totals["bytes"], 5 * "hello, world\n".len() as u64);
        assert_eq!(server.get("/-/metrics").status, 200);
        assert_eq!(server.get("/-/").status, 200);
    }
});

every_mode!(metrics_are_prometheus_text, |mode| {
    let server = Server::start(mode, &[]);
    let workers = server.wait_for_workers(2);
    for _ in 0..4 {
        assert_eq!(server.get("/hello.txt").status, 200);
    }
    let response = server.get("/-/metrics");
    assert_eq!(response.status, 200);
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4"))
    );
    let text = response.text();
    let mut requests = 0;
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').expect("name and value");
        let value: f64 = value.parse().expect("a number");
        let name = &series[..series.find('{').unwrap_or(series.len())];
        assert!(text.contains(&format!("# TYPE {name} ")), "{name}: no TYPE");
        assert!(text.contains(&format!("# HELP {name} ")), "{name}: no HELP");
        if text.contains(&format!("# TYPE {name} counter")) {
            assert!(name.ends_with("_total"), "counter {name}");
        }
        if name == "forkpool_worker_requests_total" {
            assert!(series.contains(&format!("mode=\"{mode}\"")), "{series}");
            requests += value as u64;
        }
    }
    assert_eq!(requests, 4, "{text}");
    for pid in workers {
        assert!(
            text.contains(&format!("pid=\"{pid}\"")),
            "{pid} missing:\n{text}"
        );
    }
});

every_mode!(a_death_is_recorded_with_its_cause, |mode| {
    let server = Server::start(mode, &[]);
    let before = server.wait_for_workers(2);
    let victim = before[0];
    assert_eq!(status(&server)["deaths_total"], 0);
    // SAFETY: kill(2) on a worker of our own server.
    unsafe { libc::kill(victim, libc::SIGKILL) };
    let mut last = Value::Null;
    let seen = wait_until(DEADLINE, || {
        last = status(&server);
        let deaths = last["deaths"].as_array().unwrap();
        !deaths.is_empty() && pids(&last).len() == 2 && !pids(&last).contains(&i64::from(victim))
    });
    assert!(seen, "{last:#}");
    let death = &last["deaths"][0];
    assert_eq!(death["pid"], victim);
    assert_eq!(death["signal"], "SIGKILL");
    assert_eq!(death["reason"], "killed by SIGKILL");
    assert_eq!(death["code"], Value::Null);
    assert_eq!(last["deaths_total"], 1);
    // The replacement took the dead worker's index.
    let dead_index = &death["index"];
    let replacement = last["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| &w["index"] == dead_index)
        .expect("a worker at the dead one's index");
    assert_ne!(replacement["pid"], victim);
    assert_eq!(replacement["generation"], 2);
});

every_mode!(a_busy_thread_shows_in_status, |mode| {
    // One worker spends 1.5 s in a request (its loop thread in process
    // mode, one pool thread in thread mode); the other reports on it.
    // Spreading connections over both workers can take a while on a busy
    // machine: don't let the first one time out as idle meanwhile.
    let config = write_config("keepalive_timeout = \"60s\"\n");
    let server = Server::start(mode, &["--threads", "2", "--config", &config]);
    server.wait_for_workers(2);
    let mut by_pid: std::collections::HashMap<i32, Client> = Default::default();
    let spread = wait_until(DEADLINE, || {
        let mut client = server.connect();
        let pid = pid_of(&client.get("/-/work/cpu?ms=0"));
        by_pid.entry(pid).or_insert(client);
        by_pid.len() == 2
    });
    assert!(spread, "no connection reached the second worker");
    let mut clients = by_pid.into_iter();
    let (busy_pid, mut slow) = clients.next().unwrap();
    let (_, mut reporter) = clients.next().unwrap();
    let mut report = || -> Value {
        let response = reporter.get("/-/status");
        assert_eq!(response.status, 200);
        let status: Value = serde_json::from_str(&response.text()).unwrap();
        status["workers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["pid"] == busy_pid)
            .cloned()
            .expect("the busy worker in the status")
    };
    slow.send(b"GET /-/work/cpu?ms=1500 HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let mut last = Value::Null;
    let busy = wait_until(DEADLINE, || {
        last = report();
        last["threads_busy"] == 1 && last["oldest_request_ms"].as_u64().unwrap() > 0
    });
    assert!(busy, "{last:#}");
    assert_eq!(last["connections_active"], 1, "{last:#}");
    let done = slow.read_response(false).expect("the slow response");
    assert_eq!(done.status, 200);
    let idle = wait_until(Duration::from_secs(5), || report()["threads_busy"] == 0);
    assert!(idle);
});

every_mode!(idle_keep_alive_connections_are_counted_apart, |mode| {
    let server = Server::start(mode, &["--workers", "1"]);
    server.wait_for_workers(1);
    let mut idle: Vec<Client> = (0..3).map(|_| server.connect()).collect();
    for client in &mut idle {
        assert_eq!(client.get("/hello.txt").status, 200);
    }
    let mut last = Value::Null;
    let counted = wait_until(DEADLINE, || {
        last = status(&server);
        let worker = &last["workers"][0];
        // The three parked ones, and the one asking.
        worker["connections_idle"] == 3 && worker["connections_active"] == 1
    });
    assert!(counted, "{last:#}");
    drop(idle);
    let gone = wait_until(DEADLINE, || {
        status(&server)["workers"][0]["connections_idle"] == 0
    });
    assert!(gone, "closed connections still counted idle");
});

every_mode!(watching_does_not_inflate_a_workers_memory, |mode| {
    // Reading the scoreboard must not fault in its never-used slots (a
    // shared mapping's pages count in every process that touches them):
    // that once added 4 MiB to each worker (a debug build idles at ~2.3 MiB).
    let server = Server::start(mode, &["--workers", "1"]);
    server.wait_for_workers(1);
    for _ in 0..3 {
        status(&server);
    }
    let worker = &status(&server)["workers"][0];
    let pss = worker["os"]["pss_kib"].as_u64().unwrap();
    assert!(
        pss < 4096,
        "a worker that only answered /-/status has {pss} KiB PSS"
    );
});
