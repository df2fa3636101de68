//! Bounded work per connection turn, on the real server in every mode: a
//! connection that pipelines slow requests gets one per turn, each answer
//! as soon as it is ready, and the watchdog sees the worker turning
//! between them.

mod common;

use serde_json::Value;

use common::*;

/// `/-/status`, asked as the dashboard would (a loopback Host).
fn status(server: &Server) -> Value {
    let response = send_raw(
        server.addr,
        b"GET /-/status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(response.status, 200, "{}", response.text());
    serde_json::from_slice(&response.body).expect("status JSON")
}

/// The status entry of the worker with `pid`.
fn worker(status: &Value, pid: i32) -> Value {
    status["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .find(|w| w["pid"] == pid)
        .unwrap_or_else(|| panic!("no worker {pid} in {status}"))
        .clone()
}

/// How many slow requests the client pipelines, and how slow each is.
const PIPELINED: u64 = 16;
const CPU_MS: u64 = 200;

every_mode!(
    pipelined_slow_requests_kill_no_worker_and_each_answer_leaves_when_done,
    |mode| {
        // Sixteen requests of 200 ms of CPU each, pipelined in one write,
        // with a 2 s watchdog. Served in one turn (as before this test),
        // they hold the loop (or one loop thread) for 3.2 s of CPU without
        // a heartbeat, and nothing is sent until the last is done. CPU time
        // never exceeds wall time, so that old failure is certain; served
        // one per turn, each needs only a tenth of a core to finish within
        // the watchdog's 2 s (the machine may be loaded: this is why many
        // short requests rather than four long ones).
        let config = write_config("[supervisor]\ntimeout = \"2s\"\n");
        let server = Server::start(mode, &["--config", &config]);
        let before = server.wait_for_workers(2);
        let mut client = server.connect();
        let batch: String = (1..=PIPELINED)
            .map(|n| {
                let ms = CPU_MS + n;
                format!("GET /-/work/cpu?ms={ms} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            })
            .collect();
        client.send(batch.as_bytes());

        let first = client.read_response(false).expect("the first answer");
        assert_eq!(first.status, 200, "{}", first.text());
        assert_eq!(json_field(&first, "ms"), CPU_MS + 1);
        // Its answer left as soon as it was done: when it arrives, the
        // worker has not answered the last one yet (the old code counted
        // them all, then wrote them all at once).
        let pid = pid_of(&first);
        let answered = worker(&status(&server), pid)["requests"].as_u64().unwrap();
        assert!(
            answered < PIPELINED,
            "the first answer came only after all were done ({answered} answered)"
        );

        for n in 2..=PIPELINED {
            let next = client.read_response(false).expect("the next answer");
            assert_eq!(next.status, 200, "{}", next.text());
            assert_eq!(json_field(&next, "ms"), CPU_MS + n, "answers in order");
            assert_eq!(pid_of(&next), pid, "same connection, same worker");
        }
        // No worker died or was replaced on the way.
        assert_eq!(server.workers(), before, "log:\n{}", server.log());
        let status = status(&server);
        assert_eq!(status["deaths_total"], 0, "{status}");
        assert_eq!(worker(&status, pid)["requests"], PIPELINED);
        // The connection is still fine.
        let response = client.get("/hello.txt");
        assert_eq!(response.status, 200);
    }
);
