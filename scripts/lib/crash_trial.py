#!/usr/bin/env python3
"""One trial of scripts/crash-compare.sh: steady load on a running forkpool,
one injected fault, and what it cost.

  crash_trial.py --port P --fault abort|segv|hang|leak|panic --workers N --out TRIAL.json
                 [--tool client|wrk|oha] [--connections 16] [--rate 500]
                 [--path /-/work/cpu?ms=1]
                 [--leak-mb 96] [--min-age-ms 5500] [--baseline 2] [--tail 1.5]
                 [--min-after 2] [--max-after 12] [--request-timeout 10]

The server must already be serving with faults enabled. The trial:
 1. starts the scoreboard sampler (status_sampler.py sample: GET /-/status
    every 100 ms, fresh connection, 0.3 s deadline: a hung event loop may
    accept it and never answer) and the load;
 2. waits until every worker is ready and at least --min-age-ms old (a worker
    that dies younger than 5 s has its respawn delayed by the crash-loop
    guard, which is not what is measured here) and --baseline s of load ran;
 3. sends POST /-/fault/FAULT (GET if the server answers 405: see Fault)
    on its own connection, opened before the load (it is not counted with
    the load: the request that carries the fault is expected to fail);
 4. watches until a replacement worker has served, no pre-fault worker is
    left draining and --tail s passed (at least --min-after, at most
    --max-after s after the fault); then stops the load. A panic is caught
    and kills nothing: its trial ends --min-after s after its answer.

The load (--tool client, the default) is this script's own: --connections
threads, each holding ONE keep-alive connection to 127.0.0.1 and looping GET
--path, --rate requests a second in all (0 = as fast as answered),
recording every request's start, end, outcome and the pid that served it
(the workload endpoints name it). A failure (reset, EOF before a
complete response, timeout, non-2xx) closes that connection, is recorded
with the connection's id, and the thread reconnects. A response carrying
"Connection: close" is a graceful close, not a failure. So the blast radius
is exact: connections lost out of connections open at the fault. A prober
opens a fresh connection every 100 ms: whichever worker accepts it answers,
so a replacement is seen serving even while every keep-alive connection
stays on the old workers. With --tool wrk or oha the tool runs for the
whole trial instead and only its aggregate errors are known (no blast
radius); the timeline comes from the scoreboard either way.

TRIAL.json holds the raw events (failures, probe results, status samples)
and the derived numbers; crash_report.py aggregates trials.
"""

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

from common import HERE, Conn, HttpError, http_get

STALL_MS = 1000  # a request slower than this is "stalled"


def now_ms():
    return time.time() * 1000.0


# --- the load client ------------------------------------------------------------

class Recorder:
    """Everything the load threads saw. Appends from many threads: list.append
    is atomic in CPython, counters are under a lock."""

    def __init__(self, bucket_ms=100):
        self.lock = threading.Lock()
        self.bucket_ms = bucket_ms
        self.ok_buckets = {}      # bucket -> responses completed
        self.fail_buckets = {}    # bucket -> failures
        self.failures = []        # {conn, t_ms, kind, started_ms, sent_on_reused}
        self.stalls = []          # {conn, started_ms, t_ms, ok}
        self.first_by_pid = {}    # pid -> first ok response time (ms)
        self.conn_events = []     # (conn, "open"|"closed"|"lost", t_ms)
        self.ok_total = 0

    def ok(self, conn, started, ended, pid):
        b = int(ended // self.bucket_ms)
        with self.lock:
            self.ok_total += 1
            self.ok_buckets[b] = self.ok_buckets.get(b, 0) + 1
            if pid is not None and pid not in self.first_by_pid:
                self.first_by_pid[pid] = ended
        if ended - started > STALL_MS:
            self.stalls.append({"conn": conn, "started_ms": started, "t_ms": ended, "ok": True})

    def fail(self, conn, started, ended, kind, reused):
        b = int(ended // self.bucket_ms)
        with self.lock:
            self.fail_buckets[b] = self.fail_buckets.get(b, 0) + 1
        self.failures.append({"conn": conn, "t_ms": ended, "started_ms": started,
                              "kind": kind, "reused": reused})
        if ended - started > STALL_MS:
            self.stalls.append({"conn": conn, "started_ms": started, "t_ms": ended, "ok": False})


PID_RE = re.compile(rb'"pid":(\d+)')


def classify(exc):
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(exc, EOFError):
        return "eof"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, BrokenPipeError):
        return "broken-pipe"
    if isinstance(exc, HttpError):
        return "timeout" if "timed out" in str(exc) else "bad-response"
    return type(exc).__name__


class LoadClient:
    """`connections` threads, one keep-alive connection each; with `rate`
    > 0 every connection sends at most rate/connections requests a second
    (a steady load that leaves the server headroom), else as fast as the
    server answers."""

    def __init__(self, port, path, connections, timeout, rec, rate=0.0):
        self.port, self.path, self.n, self.timeout, self.rec = port, path, connections, timeout, rec
        self.interval = connections / rate if rate > 0 else 0.0
        self.req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        self.stop = threading.Event()
        self.conns = {}           # thread index -> current Conn (for shutdown at the end)
        self.conn_ids = {}        # thread index -> current connection id
        self.threads = []

    def start(self):
        for i in range(self.n):
            t = threading.Thread(target=self.run, args=(i,), daemon=True, name=f"load-{i}")
            t.start()
            self.threads.append(t)

    def open_at(self, t_ms):
        """Connection ids that were open (connected, with a response) at t_ms."""
        opened, closed = {}, {}
        for conn, what, t in self.rec.conn_events:
            if what == "ok1":
                opened[conn] = t
            elif what in ("closed", "lost"):
                closed[conn] = t
        return {c for c, t in opened.items() if t <= t_ms and closed.get(c, float("inf")) > t_ms}

    def pace(self, next_at):
        """Waits for this connection's next turn; returns the one after."""
        if not self.interval:
            return next_at
        now = time.monotonic()
        if next_at > now:
            self.stop.wait(next_at - now)
            return next_at + self.interval
        # Late (a slow answer): go now, and don't burst to catch up.
        return now + self.interval

    def run(self, i):
        generation = 0
        rec = self.rec
        next_at = time.monotonic() + self.interval * i / self.n  # staggered starts
        while not self.stop.is_set():
            generation += 1
            conn_id = f"{i}.{generation}"
            started = now_ms()
            try:
                conn = Conn(self.port, self.timeout)
            except OSError as exc:
                if self.stop.is_set():
                    return
                rec.fail(conn_id, started, now_ms(), "connect-" + classify(exc), False)
                time.sleep(0.01)
                continue
            self.conns[i], self.conn_ids[i] = conn, conn_id
            first = True
            while not self.stop.is_set():
                next_at = self.pace(next_at)
                if self.stop.is_set():
                    break
                started = now_ms()
                try:
                    status, close, body = conn.request(self.req, time.monotonic() + self.timeout)
                except (OSError, EOFError, HttpError) as exc:
                    ended = now_ms()
                    if self.stop.is_set():
                        break  # we shut it down ourselves: cut, not failed
                    rec.fail(conn_id, started, ended, classify(exc), conn.used > 0)
                    rec.conn_events.append((conn_id, "lost", ended))
                    break
                ended = now_ms()
                if status >= 400:
                    rec.fail(conn_id, started, ended, f"http-{status}", conn.used > 1)
                else:
                    m = PID_RE.search(body)
                    rec.ok(conn_id, started, ended, int(m.group(1)) if m else None)
                    if first:
                        rec.conn_events.append((conn_id, "ok1", ended))
                        first = False
                if close:
                    rec.conn_events.append((conn_id, "closed", ended))
                    break
            conn.close()

    def shutdown(self):
        self.stop.set()
        for conn in list(self.conns.values()):
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self.threads:
            t.join(timeout=2)


class Prober:
    """A fresh connection every `interval` s: which worker answers a new client."""

    def __init__(self, port, path, interval=0.1, timeout=1.0):
        self.port, self.path, self.interval, self.timeout = port, path, interval, timeout
        self.results = []   # {t_ms, started_ms, ok, pid, error}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True, name="prober")

    def run(self):
        while not self.stop.is_set():
            started = now_ms()
            try:
                status, _, body = http_get("127.0.0.1", self.port, self.path, self.timeout)
                m = PID_RE.search(body)
                self.results.append({"t_ms": now_ms(), "started_ms": started, "ok": status < 400,
                                     "pid": int(m.group(1)) if m else None, "status": status})
            except Exception as exc:  # noqa: BLE001 - a failed probe is data
                self.results.append({"t_ms": now_ms(), "started_ms": started, "ok": False,
                                     "pid": None, "error": classify(exc)})
            self.stop.wait(max(0.0, self.interval - (now_ms() - started) / 1000.0))


# --- the fault -----------------------------------------------------------------

class Fault:
    """The connection that carries the fault: opened BEFORE the load and kept
    alive with /-/status requests (not counted by the server), because a
    saturated thread-mode worker does not accept new connections.

    Faults are POST only from forkpool's CSRF change on; an older server
    answers 405 to POST there (GET and HEAD only under /-/). So the fault goes
    as POST, and only on a prompt 405 again as GET on the same connection,
    with t0 moved to that moment; `method` says which one carried it."""

    def __init__(self, port, url, timeout):
        self.port, self.url, self.timeout = port, url, timeout
        host = f"Host: 127.0.0.1:{port}\r\n"
        self.post = f"POST {url} HTTP/1.1\r\n{host}Content-Length: 0\r\n\r\n".encode()
        self.get = f"GET {url} HTTP/1.1\r\n{host}\r\n".encode()
        self.ping = f"GET /-/status HTTP/1.1\r\n{host}\r\n".encode()
        self.conn = Conn(port, 2.0)
        self.result = None
        self.t0 = None
        self.method = None
        self.decided = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True, name="fault")

    def keep_alive(self):
        """One cheap request on the connection; reopens it if it failed."""
        try:
            _, close, _ = self.conn.request(self.ping, time.monotonic() + 1.0)
            if close:
                raise EOFError("closed")
        except (OSError, EOFError, HttpError):
            self.conn.close()
            self.conn = Conn(self.port, 2.0)

    def fire(self):
        """Sends the fault; returns once its method is known (t0 is final)."""
        self.t0 = now_ms()
        self.thread.start()
        self.decided.wait(2.0)

    def run(self):
        deadline = time.monotonic() + self.timeout
        try:
            self.method = "POST"
            self.conn.sock.sendall(self.post)
            try:
                status, close, body = self.conn.response(time.monotonic() + 0.5)
            except (socket.timeout, TimeoutError):
                self.decided.set()  # no prompt 405: the POST was taken (a hang)
                status, close, body = self.conn.response(deadline)
            if status == 405:
                if close:
                    self.conn.close()
                    self.conn = Conn(self.port, 2.0)
                self.method, self.t0 = "GET", now_ms()
                self.decided.set()
                status, _, body = self.conn.request(self.get, deadline)
            self.result = {"outcome": f"answered {status}", "t_ms": now_ms(), "method": self.method,
                           "body": body[:200].decode("utf-8", "replace")}
        except Exception as exc:  # noqa: BLE001 - the expected outcome of most faults
            self.result = {"outcome": classify(exc), "t_ms": now_ms(), "method": self.method}
        finally:
            self.decided.set()

    def close(self):
        self.conn.close()


# --- the trial ---------------------------------------------------------------

class SampleTail:
    """The newest successful /-/status sample in the sampler's JSONL file,
    read incrementally."""

    def __init__(self, path):
        self.path, self.offset, self.doc = path, 0, None

    def latest(self):
        if os.path.exists(self.path):
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                for line in f:
                    if not line.endswith(b"\n"):
                        break  # being written: read it next time
                    self.offset += len(line)
                    try:
                        sample = json.loads(line)
                    except ValueError:
                        continue
                    if sample.get("ok"):
                        self.doc = sample["doc"]
        return self.doc


def read_samples(path):
    out = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass  # the last line may be cut by the stop
    return out


def slim(doc):
    """The parts of a /-/status document the report uses."""
    keep_w = ("index", "pid", "generation", "state", "started_ms", "uptime_ms", "requests",
              "connections_active", "connections_idle", "threads_busy", "threads_total",
              "oldest_request_ms", "heartbeat_age_ms")
    return {
        "now_ms": doc.get("now_ms"), "t_ms": doc.get("t_ms"), "served_by": doc.get("served_by"),
        "mode": doc.get("mode"),
        "workers": [dict({k: w.get(k) for k in keep_w},
                         rss_kib=(w.get("os") or {}).get("rss_kib")) for w in doc.get("workers") or []],
        "totals": {k: (doc.get("totals") or {}).get(k) for k in ("requests", "rss_kib", "pss_kib")},
        "deaths": doc.get("deaths") or [],
    }


def start_tool(args, seconds):
    """wrk or oha for `seconds`, to a file; returns (Popen, path)."""
    url = f"http://127.0.0.1:{args.port}{args.path}"
    path = args.out + f".{args.tool}"
    if args.tool == "wrk":
        cmd = ["wrk", "-t2", f"-c{args.connections}", f"-d{seconds}s", "--latency",
               "--timeout", f"{int(args.request_timeout)}s", url]
    else:
        cmd = ["oha", "--no-tui", "-c", str(args.connections), "-z", f"{seconds}s",
               "--output-format", "json", "-t", f"{int(args.request_timeout)}s", url]
        if args.rate > 0:
            cmd[1:1] = ["-q", str(args.rate)]
    f = open(path, "w")
    return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT), path


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--fault", required=True, choices=["abort", "segv", "hang", "leak", "panic"])
    p.add_argument("--workers", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--tool", default="client", choices=["client", "wrk", "oha"])
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--rate", type=float, default=500.0)
    p.add_argument("--path", default="/-/work/cpu?ms=1")
    p.add_argument("--leak-mb", type=int, default=96)
    p.add_argument("--min-age-ms", type=int, default=5500)
    p.add_argument("--baseline", type=float, default=2.0)
    p.add_argument("--tail", type=float, default=1.5)
    p.add_argument("--min-after", type=float, default=2.0)
    p.add_argument("--max-after", type=float, default=12.0)
    p.add_argument("--request-timeout", type=float, default=10.0)
    args = p.parse_args()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    samples_path = args.out + ".samples.jsonl"
    sampler = subprocess.Popen([sys.executable, os.path.join(HERE, "status_sampler.py"), "sample",
                                str(args.port), samples_path, "--interval", "0.1",
                                "--request-timeout", "0.3", "--max-seconds", "120"])
    rec = Recorder()
    client = prober = tool = fault = None
    problems = []
    load_start = t0 = end = None
    pre, pre_pids = {}, set()
    try:
        # The sampler's status connection is opened BEFORE the load (a
        # saturated thread-mode worker stops accepting new connections);
        # this trial reads its samples rather than asking the server itself.
        samples = SampleTail(samples_path)
        ready_by = time.monotonic() + 5
        while samples.latest() is None:
            if time.monotonic() > ready_by or sampler.poll() is not None:
                raise RuntimeError("the status sampler got no answer within 5 s")
            time.sleep(0.02)
        first = samples.latest()
        youngest = min((w.get("uptime_ms") or 0) for w in first["workers"]) if first["workers"] else 0
        wait_s = max(args.baseline, (args.min_age_ms - youngest) / 1000.0)
        url = f"/-/fault/{args.fault}" + (f"?mb={args.leak_mb}" if args.fault == "leak" else "")
        fault = Fault(args.port, url, timeout=args.max_after + 2)
        load_start = now_ms()
        if args.tool == "client":
            client = LoadClient(args.port, args.path, args.connections, args.request_timeout, rec,
                                args.rate)
            client.start()
        else:
            tool, tool_path = start_tool(args, int(wait_s + args.max_after + 3))
        prober = Prober(args.port, args.path)
        prober.thread.start()

        # 2. steady state, old enough workers
        deadline = time.monotonic() + wait_s + 15
        until = time.monotonic() + wait_s
        while True:
            fault.keep_alive()  # a request now and then: keepalive_timeout is 5 s
            time.sleep(0.25)
            if time.monotonic() < until:
                continue
            pre = samples.latest()
            ready = [w for w in pre["workers"] if w["state"] == "ready"]
            if len(ready) >= args.workers and all(w["uptime_ms"] >= args.min_age_ms for w in ready):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers not ready and {args.min_age_ms} ms old: {pre['workers']}")
        pre_pids = {w["pid"] for w in pre["workers"]}

        # 3. the fault
        fault.keep_alive()
        fault.fire()
        t0 = fault.t0

        # 4. until a replacement served, no old worker is left draining, + tail
        recovered_at = None
        while True:
            time.sleep(0.1)
            t = now_ms()
            if t - t0 > args.max_after * 1000:
                break
            if args.fault == "panic":  # caught: nothing dies, nothing to wait for
                if fault.result and t - t0 >= args.min_after * 1000:
                    break
                continue
            st = samples.latest()
            if st["t_ms"] < t0:
                continue  # no sample since the fault yet
            new_served = any(w["pid"] not in pre_pids and w["requests"] > 0 for w in st["workers"])
            new_served = new_served or any(pid not in pre_pids for pid in rec.first_by_pid) \
                or any(r["ok"] and r["pid"] not in pre_pids for r in prober.results)
            old_draining = any(w["pid"] in pre_pids and w["state"] != "ready" for w in st["workers"])
            full = sum(1 for w in st["workers"] if w["state"] == "ready") >= args.workers
            if new_served and not old_draining and full:
                recovered_at = recovered_at or t
            else:
                recovered_at = None
            if recovered_at and t - recovered_at >= args.tail * 1000 and t - t0 >= args.min_after * 1000:
                break
        end = now_ms()
    except Exception as exc:  # noqa: BLE001 - reported in the trial file, exit 1
        problems.append(f"{type(exc).__name__}: {exc}")
        end = now_ms()
    finally:
        if client:
            client.shutdown()
        if fault:
            fault.close()
        if prober:
            prober.stop.set()
            prober.thread.join(timeout=2)
        if tool:
            tool.send_signal(signal.SIGINT)  # both print their summary on SIGINT
            try:
                tool.wait(timeout=5)
            except subprocess.TimeoutExpired:
                tool.kill()
        sampler.terminate()
        try:
            sampler.wait(timeout=5)
        except subprocess.TimeoutExpired:
            sampler.kill()

    trial = {
        "fault": args.fault, "tool": args.tool, "connections": args.connections, "path": args.path,
        "workers": args.workers, "leak_mb": args.leak_mb if args.fault == "leak" else None,
        "load_start_ms": load_start,
        "t0_ms": t0, "end_ms": end, "pre_fault_status": slim(pre) if pre else None,
        "pre_pids": sorted(pre_pids),
        "fault_request": fault.result if fault else None,
        "samples": [dict(s, doc=slim(s["doc"])) if s.get("ok") else s
                    for s in read_samples(samples_path)],
        "problems": problems,
    }
    if client:
        trial["client"] = {
            "failures": rec.failures, "stalls": rec.stalls, "ok_total": rec.ok_total,
            "ok_buckets": rec.ok_buckets, "fail_buckets": rec.fail_buckets,
            "bucket_ms": rec.bucket_ms,
            "first_by_pid": {str(k): v for k, v in rec.first_by_pid.items()},
            "open_at_fault": sorted(client.open_at(t0)) if t0 else [],
            "conn_events": rec.conn_events,
        }
    if prober:
        trial["probes"] = prober.results
    if tool:
        with open(tool_path) as f:
            trial["tool_output"] = f.read()
    with open(args.out, "w") as f:
        json.dump(trial, f)
    if os.path.exists(samples_path):
        os.remove(samples_path)
    if problems:
        for problem in problems:
            print(f"crash_trial: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
