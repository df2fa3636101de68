#!/usr/bin/env python3
"""Runs the phases of scripts/lab.sh and records what they measured.

  lab_run.py OUTDIR

OUTDIR/raw/meta.json (written by lab.sh) names the profile, the binary, the
phases, the CPUs to pin the server and the load to, and what the binary
supports (thread-loops, --accept). This script starts one forkpool at a
time (so PSS is not shared across servers), loads it from 127.0.0.1 with
wrk, oha or crash_trial.py, reads /-/status around each run, stops it, and
appends to OUTDIR/raw/:
  runs.jsonl      one line per measured run (sweep, concurrency, latency)
  crash.jsonl     one line per crash trial (its record is in raw/crash/)
  switch.json     examples/switch_cost's --json output
  skipped.jsonl   what was not run, and why
  problems.jsonl  what failed
Progress goes to stderr: phase, configuration, K, the estimated time left.
Every subprocess has a timeout; SIGTERM/SIGINT stop the server in use.

What it doesn't do: decide what the numbers mean (lab_report.py does).
Exit status 0, or 1 when something was recorded in problems.jsonl.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from common import HERE, jain, parse_oha, parse_wrk
from compare_report import deltas
from status_sampler import fetch, ready

ROOT = os.path.dirname(os.path.dirname(HERE))

WORKLOADS = {
    "static-1k": "/1k.txt",
    "shared": "/-/work/shared?ops=10000",
    "tabs": "tabs.lua",  # scripts/tabs.lua: the browser-tab mix (wrk only)
}

# Each profile: the sweep (ks, rounds, seconds per run, warm-up, workloads,
# connections), the concurrency sweep, the open loop, switch_cost's preset
# and the crash trials. prefork runs in the full profile only.
PROFILES = {
    "full": dict(
        configs=["process", "thread", "thread-loops", "prefork"],
        ks=[1, 2, 4, 8, 16, 32, 64], rounds=3, duration=5, warmup=2, conns=64,
        workloads=["static-1k", "shared", "tabs"],
        conc_k=8, conc_conns=[16, 64, 256, 1024], conc_rounds=3, conc_duration=5,
        lat_k=8, lat_fracs=[0.5, 0.8, 0.95], lat_rounds=2, lat_duration=10, lat_conns=64,
        switch=[], crash_k=4, crash_faults=["abort", "segv", "hang", "leak", "panic"],
        crash_repeats=3, crash_shared=["abort"]),
    "quick": dict(
        configs=["process", "thread", "thread-loops"],
        ks=[2, 8, 32], rounds=3, duration=3, warmup=1, conns=64,
        workloads=["static-1k", "shared"],
        conc_k=8, conc_conns=[16, 64, 256, 1024], conc_rounds=2, conc_duration=3,
        lat_k=8, lat_fracs=[0.5, 0.8, 0.95], lat_rounds=1, lat_duration=5, lat_conns=64,
        switch=["--quick"], crash_k=4, crash_faults=["abort", "segv", "hang", "leak", "panic"],
        crash_repeats=1, crash_shared=["abort"]),
    "smoke": dict(
        configs=["process", "thread", "thread-loops"],
        ks=[2, 4], rounds=2, duration=1, warmup=0, conns=64,
        workloads=["static-1k", "shared"],
        conc_k=2, conc_conns=[16, 64], conc_rounds=1, conc_duration=1,
        lat_k=2, lat_fracs=[0.5], lat_rounds=1, lat_duration=2, lat_conns=16,
        switch=["--smoke"], crash_k=2, crash_faults=["abort"], crash_repeats=1, crash_shared=[]),
}

CRASH_MODES = ["process", "thread", "thread-loops"]
CRASH_PATH = "/-/work/cpu?ms=1"
CRASH_CONNECTIONS, CRASH_RATE = 16, 500
START_S = 1.5  # estimated: start a server and wait until it is ready


def shape(config, k):
    """(mode, workers, threads, config file) of a configuration at K."""
    return {
        "process": ("process", k, 1, "base"),
        "thread": ("thread", 1, k, "base"),
        "thread-loops": ("thread-loops", 1, k, "base"),
        "prefork": ("process", k, 1, "prefork"),
    }[config]


def fmt_secs(s):
    s = max(0, int(s))
    return f"{s // 60}m{s % 60:02d}s"


class Stop(Exception):
    """SIGTERM or SIGINT: stop the server in use, record nothing more."""


class Server:
    """One forkpool master and its workers, started on port 0."""

    def __init__(self, lab, tag, mode, workers, threads, config_file, accept=None):
        self.lab, self.tag = lab, tag
        self.mode, self.workers, self.threads = mode, workers, threads
        self.config_file, self.accept = config_file, accept
        self.proc, self.port, self.pids = None, None, set()
        self.log = os.path.join(lab.raw, "servers", tag + ".log")

    def start(self, timeout=20.0):
        args = self.lab.pin_server + [
            self.lab.bin, self.lab.site, "--config", self.config_file,
            "--listen", "127.0.0.1:0", "--mode", self.mode,
            "--workers", str(self.workers), "--threads", str(self.threads)]
        if self.accept and self.lab.meta.get("accept") == 1:
            args += ["--accept", self.accept]
        out_path = self.log[:-4] + ".out"
        # No backtraces: symbolising one (slow in a debug build) stalls the
        # worker's loop past the watchdog, and a caught panic would look fatal.
        env = dict(os.environ, RUST_BACKTRACE="0")
        with open(out_path, "w") as out, open(self.log, "w") as err:
            self.proc = subprocess.Popen(args, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         env=env)
        self.lab.servers.append(self)
        deadline = time.monotonic() + timeout
        prefix = "listening on http://127.0.0.1:"
        while self.port is None:
            with open(out_path) as f:
                line = f.readline().strip()
            if line.startswith(prefix) and line[len(prefix):].isdigit():
                self.port = int(line[len(prefix):])
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.tag}: the server did not start: {self.tail()}")
            time.sleep(0.05)
        why = ready(self.port, self.workers, 0, max(1.0, deadline - time.monotonic()))
        if why:
            raise RuntimeError(f"{self.tag}: {why}; log: {self.tail()}")
        self.status()
        return self

    def tail(self, n=5):
        try:
            with open(self.log, errors="replace") as f:
                return " | ".join(line.strip() for line in f.readlines()[-n:])
        except OSError:
            return "(no log)"

    def status(self):
        doc = fetch(self.port, 5.0)
        self.pids.update(w["pid"] for w in doc.get("workers") or [] if w.get("pid"))
        return doc

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """Fast stop (SIGQUIT), SIGKILL after 3 s; then no worker may outlive
        its master by more than 2 s (killed and reported if one does)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        deadline = time.monotonic() + 2
        for pid in sorted(self.pids):
            while is_forkpool(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if is_forkpool(pid):
                os.kill(pid, signal.SIGKILL)
                self.lab.problem("server", f"{self.tag}: worker {pid} outlived its master by 2 s (killed)")
        if self in self.lab.servers:
            self.lab.servers.remove(self)
        self.proc = None


def is_forkpool(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"forkpool" in f.read()
    except OSError:
        return False


def units(doc):
    """Per serving unit of a /-/status document: the loops of a worker where
    the scoreboard lists them (rows with an `accepted` count), else the
    workers. {(pid, row): (accepted, requests)}, and which of the two."""
    out, kind = {}, "worker"
    for w in doc.get("workers") or []:
        rows = next((v for v in w.values() if isinstance(v, list) and v
                     and isinstance(v[0], dict) and "accepted" in v[0]), None)
        if rows and len(rows) > 1:
            kind = "loop"
            for i, r in enumerate(rows):
                out[(w.get("pid"), i)] = (r.get("accepted"), r.get("requests"))
        else:
            out[(w.get("pid"), None)] = (w.get("accepted"), w.get("requests"))
    return out, kind


def fairness(before, after):
    """Jain's index over the serving units' share of the run: from the
    connections each accepted where /-/status counts them, else from the
    requests each served. (index or None, what it was computed from)."""
    b, _ = units(before)
    a, kind = units(after)
    if len(a) < 2:
        return None, None, f"one {kind}"
    acc = [x[0] for x in a.values()]
    req = [(x[1] or 0) - ((b.get(u) or (0, 0))[1] or 0) for u, x in a.items()]
    by_requests = jain(req)
    if all(v is not None for v in acc):
        got = [v - ((b.get(u) or (0, 0))[0] or 0) for u, v in zip(a, acc)]
        return jain(got), by_requests, f"accepted per {kind}"
    return by_requests, by_requests, f"requests per {kind}"


def metrics(k, before, after):
    """What a run did to the server, from /-/status before and after it."""
    d = deltas(before, after)
    served = d["requests"] or 0
    tot = after.get("totals") or {}
    pss, uss = tot.get("pss_kib"), tot.get("uss_kib")
    fair, fair_req, source = fairness(before, after)
    per = (lambda v: None if v is None or not served else v / served)
    return {
        "served": served,
        "ctx_voluntary": d["vol"], "ctx_involuntary": d["nonvol"],
        "ctx_per_req": per(None if d["vol"] is None or d["nonvol"] is None else d["vol"] + d["nonvol"]),
        "ctx_vol_per_req": per(d["vol"]), "ctx_invol_per_req": per(d["nonvol"]),
        "cpu_us_per_req": per(None if d["cpu_ms"] is None else d["cpu_ms"] * 1000.0),
        "pss_kib": pss, "pss_per_unit_kib": None if pss is None else pss / k,
        "uss_kib": uss, "uss_per_unit_kib": None if uss is None else uss / k,
        "rss_kib": tot.get("rss_kib"),
        "fairness": fair, "fairness_requests": fair_req, "fairness_source": source,
        "server_fairness": tot.get("fairness"),
        "workers_stable": d["complete"],
        "deaths": len([x for x in after.get("deaths") or []
                       if x.get("at_ms", 0) >= (before.get("now_ms") or 0)]),
    }


class Lab:
    def __init__(self, out):
        self.out, self.raw = out, os.path.join(out, "raw")
        with open(os.path.join(self.raw, "meta.json")) as f:
            self.meta = json.load(f)
        self.profile = self.meta.get("profile") or "full"
        self.p = PROFILES[self.profile]
        self.bin = self.meta["binary"]
        sc, lc = self.meta.get("server_cpus"), self.meta.get("load_cpus")
        self.pin_server = ["taskset", "-c", str(sc)] if sc not in (None, "") else []
        self.pin_load = ["taskset", "-c", str(lc)] if lc not in (None, "") else []
        self.phases = str(self.meta.get("phases") or "").split(",")
        self.configs = []
        for c in self.p["configs"]:
            if c == "thread-loops" and self.meta.get("thread_loops") != 1:
                self.skip("all", "thread-loops", "this forkpool binary has no --mode thread-loops")
                continue
            self.configs.append(c)
        self.servers = []
        self.problems = 0
        os.makedirs(os.path.join(self.raw, "servers"), exist_ok=True)
        os.makedirs(os.path.join(self.raw, "load"), exist_ok=True)
        self.site = tempfile.mkdtemp(prefix="forkpool-lab-")
        self.tasks = []   # (phase, label, estimate_s, fn)

    # --- records ----------------------------------------------------------
    def append(self, name, doc):
        with open(os.path.join(self.raw, name), "a") as f:
            f.write(json.dumps(doc, separators=(",", ":")) + "\n")

    def skip(self, phase, what, why):
        print(f"lab: skipped {what} ({phase}): {why}", file=sys.stderr, flush=True)
        self.append("skipped.jsonl", {"phase": phase, "what": what, "why": why})

    def problem(self, phase, text):
        self.problems += 1
        print(f"lab: problem ({phase}): {text}", file=sys.stderr, flush=True)
        self.append("problems.jsonl", {"phase": phase, "problem": text})

    # --- set-up -------------------------------------------------------------
    def prepare(self):
        with open(os.path.join(self.site, "1k.txt"), "w") as f:
            f.write(("forkpool lab " * 80)[:1024])
        subprocess.run([os.path.join(ROOT, "scripts", "tabs-site.sh"), self.site],
                       check=True, stdout=subprocess.DEVNULL, timeout=60)
        self.config_files = {}
        for name, body in (
                ("base", "max_connections = 4096\n"),
                ("prefork", "max_connections = 1\n")):
            self.config_files[name] = self.write_config(name, body)

    def write_config(self, name, body, faults=False):
        path = os.path.join(self.raw, f"forkpool-{name}.toml")
        with open(path, "w") as f:
            f.write("# lab.sh: an access-log line per request would cost a write each.\n"
                    "access_log = false\n" + body)
            if faults:
                f.write("\n[faults]\nenabled = true\n")
        return path

    def server(self, tag, config, k, accept=None, config_file=None):
        mode, workers, threads = shape(config, k)[:3]
        return Server(self, tag, mode, workers, threads,
                      config_file or self.config_files[shape(config, k)[3]], accept).start()

    # --- load tools -----------------------------------------------------------
    def wrk(self, port, workload, conns, secs, tag):
        url = f"http://127.0.0.1:{port}"
        cmd = self.pin_load + ["wrk", f"-t{min(2, conns)}", f"-c{conns}", f"-d{secs}s",
                               "--latency", "--timeout", "2s"]
        if WORKLOADS[workload].endswith(".lua"):
            cmd += ["-s", os.path.join(ROOT, "scripts", WORKLOADS[workload]), url]
        else:
            cmd.append(url + WORKLOADS[workload])
        return self.tool(cmd, secs, tag, parse_wrk)

    def oha(self, port, path, conns, secs, rate, tag):
        cmd = self.pin_load + ["oha", "--no-tui", "-z", f"{secs}s", "-c", str(conns),
                               "--output-format", "json"]
        if rate:
            cmd += ["-q", f"{rate:.0f}", "--latency-correction"]
        return self.tool(cmd + [f"http://127.0.0.1:{port}{path}"], secs, tag, parse_oha)

    def tool(self, cmd, secs, tag, parse):
        path = os.path.join(self.raw, "load", tag + ".out")
        with open(path, "w") as out:
            done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=secs + 30)
        with open(path, errors="replace") as f:
            text = f.read()
        if done.returncode != 0:
            raise RuntimeError(f"{cmd[len(self.pin_load)]} exited {done.returncode}: {text[-300:]}")
        return parse(text)

    # --- the phases -----------------------------------------------------------
    def plan(self):
        p = self.p
        if "sweep" in self.phases:
            per = START_S + p["warmup"] + len(p["workloads"]) * (p["duration"] + 0.8)
            for k in p["ks"]:
                for r in range(1, p["rounds"] + 1):
                    for c in self.configs:
                        self.tasks.append(("sweep", f"{c} K={k} round {r}/{p['rounds']}", per,
                                           lambda c=c, k=k, r=r: self.sweep_one(c, k, r)))
        if "concurrency" in self.phases:
            per = START_S + len(p["conc_conns"]) * (p["conc_duration"] + 0.8)
            for r in range(1, p["conc_rounds"] + 1):
                for c in self.configs:
                    self.tasks.append(("concurrency", f"{c} K={p['conc_k']} round {r}/{p['conc_rounds']}",
                                       per, lambda c=c, r=r: self.concurrency_one(c, r)))
        if "latency" in self.phases:
            if not shutil.which("oha"):
                self.skip("latency", "the open-loop latency phase",
                          "oha is not installed (cargo install oha --locked); wrk is closed-loop "
                          "and can't correct for coordinated omission")
            else:
                per = START_S + (1 + len(p["lat_fracs"])) * (p["lat_duration"] + 0.8)
                for r in range(1, p["lat_rounds"] + 1):
                    for c in self.configs:
                        self.tasks.append(("latency", f"{c} K={p['lat_k']} round {r}/{p['lat_rounds']}",
                                           per, lambda c=c, r=r: self.latency_one(c, r)))
        if "switch" in self.phases:
            est = {"--smoke": 45, "--quick": 90}.get((p["switch"] or [""])[0], 240)
            self.tasks.append(("switch", "examples/switch_cost", est, self.switch_cost))
        if "crash" in self.phases:
            accept_ok = self.meta.get("accept") == 1
            variants = [(m, "reuseport" if accept_ok else "shared", p["crash_faults"])
                        for m in CRASH_MODES if m in self.configs]
            if accept_ok:
                variants += [("process", "shared", p["crash_shared"])]
            elif p["crash_shared"]:
                self.skip("crash", "the --accept shared comparison",
                          "this forkpool has no --accept flag: every trial already uses its one "
                          "shared socket")
            for rep in range(1, p["crash_repeats"] + 1):
                for fault in p["crash_faults"]:
                    for mode, accept, faults in variants:
                        if fault in faults:
                            self.tasks.append((
                                "crash", f"{fault} on {mode} ({accept}) repeat {rep}/{p['crash_repeats']}",
                                14.0 if fault == "hang" else 11.0,
                                lambda m=mode, a=accept, f=fault, r=rep: self.crash_one(m, a, f, r)))

    def run(self):
        self.prepare()
        self.plan()
        total_est = sum(t[2] for t in self.tasks)
        print(f"lab: {len(self.tasks)} steps, about {fmt_secs(total_est)} "
              f"(configurations: {', '.join(self.configs)})", file=sys.stderr, flush=True)
        start = time.monotonic()
        done_est = 0.0
        for i, (phase, label, est, fn) in enumerate(self.tasks):
            spent = time.monotonic() - start
            pace = spent / done_est if done_est > 0 else 1.0
            left = (total_est - done_est) * pace
            phase_left = sum(t[2] for t in self.tasks[i:] if t[0] == phase) * pace
            print(f"lab: [{i + 1}/{len(self.tasks)}] {phase}: {label}  "
                  f"(~{fmt_secs(phase_left)} left in {phase}, ~{fmt_secs(left)} in all)",
                  file=sys.stderr, flush=True)
            try:
                fn()
            except Stop:
                raise
            except Exception as exc:  # noqa: BLE001 - recorded; the next step still runs
                self.problem(phase, f"{label}: {type(exc).__name__}: {exc}")
            finally:
                for s in list(self.servers):
                    s.stop()
            done_est += est
        print(f"lab: measured in {fmt_secs(time.monotonic() - start)}", file=sys.stderr, flush=True)

    def measure(self, srv, phase, tag, run, fn):
        """One measured run: /-/status before, fn() (the load), /-/status
        after; the record goes to runs.jsonl."""
        before = srv.status()
        load = fn()
        after = srv.status()
        rec = dict(run, phase=phase, load=load, metrics=metrics(run["k"], before, after))
        self.append("runs.jsonl", rec)
        if not srv.alive():
            raise RuntimeError(f"{tag}: the server died: {srv.tail()}")
        return rec

    def sweep_one(self, config, k, rnd):
        p = self.p
        srv = self.server(f"sweep.{config}.k{k}.r{rnd}", config, k)
        if p["warmup"]:
            self.wrk(srv.port, p["workloads"][0], p["conns"], p["warmup"],
                     f"sweep.{config}.k{k}.r{rnd}.warmup")
        for wl in p["workloads"]:
            tag = f"sweep.{config}.k{k}.r{rnd}.{wl}"
            self.measure(srv, "sweep", tag,
                         {"mode": config, "k": k, "round": rnd, "workload": wl,
                          "connections": p["conns"], "seconds": p["duration"]},
                         lambda wl=wl, tag=tag: self.wrk(srv.port, wl, p["conns"], p["duration"], tag))

    def concurrency_one(self, config, rnd):
        p, k = self.p, self.p["conc_k"]
        srv = self.server(f"conc.{config}.k{k}.r{rnd}", config, k)
        for conns in p["conc_conns"]:
            tag = f"conc.{config}.k{k}.r{rnd}.c{conns}"
            self.measure(srv, "concurrency", tag,
                         {"mode": config, "k": k, "round": rnd, "workload": "static-1k",
                          "connections": conns, "seconds": p["conc_duration"]},
                         lambda c=conns, tag=tag: self.wrk(srv.port, "static-1k", c,
                                                           p["conc_duration"], tag))

    def latency_one(self, config, rnd):
        p, k = self.p, self.p["lat_k"]
        path, conns, secs = WORKLOADS["static-1k"], p["lat_conns"], p["lat_duration"]
        srv = self.server(f"lat.{config}.k{k}.r{rnd}", config, k)
        base = {"mode": config, "k": k, "round": rnd, "workload": "static-1k",
                "connections": conns, "seconds": secs}
        tag = f"lat.{config}.k{k}.r{rnd}.max"
        top = self.measure(srv, "latency", tag, dict(base, kind="max", rate=None, fraction=None),
                           lambda: self.oha(srv.port, path, conns, secs, None, tag))
        most = top["load"]["rps"]
        if not most:
            raise RuntimeError(f"{tag}: oha measured no maximum")
        for frac in p["lat_fracs"]:
            tag = f"lat.{config}.k{k}.r{rnd}.q{int(frac * 100)}"
            self.measure(srv, "latency", tag,
                         dict(base, kind="rate", rate=round(most * frac), fraction=frac, max_rps=most),
                         lambda f=frac, tag=tag: self.oha(srv.port, path, conns, secs,
                                                          round(most * f), tag))

    def switch_cost(self):
        src = os.path.join(ROOT, "examples", "switch_cost.rs")
        if not os.path.exists(src):
            self.skip("switch", "the switch-cost microbenchmark",
                      "examples/switch_cost.rs is not in this checkout")
            return
        # The smoke profile builds it as the debug binary is built (CI's time);
        # its numbers then mean nothing, which the report says.
        release = self.profile != "smoke"
        build = ["cargo", "build", "--quiet", "--example", "switch_cost"] + (["--release"] if release else [])
        log = os.path.join(self.raw, "switch_cost.build.log")
        with open(log, "w") as f:
            done = subprocess.run(build, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=1200)
        if done.returncode != 0:
            raise RuntimeError(f"cargo build --example switch_cost failed (see {log})")
        target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
        exe = os.path.join(target, "release" if release else "debug", "examples", "switch_cost")
        cpu = self.meta.get("server_cpus")
        cpu = str(cpu).split(",")[0].split("-")[0] if cpu not in (None, "") else str(os.cpu_count() - 1)
        cmd = [exe, "--json", "--cpu", cpu] + self.p["switch"]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=900)
        with open(os.path.join(self.raw, "switch_cost.stderr"), "w") as f:
            f.write(done.stderr)
        if done.returncode != 0:
            raise RuntimeError(f"switch_cost exited {done.returncode}: {done.stderr[-300:]}")
        doc = json.loads(done.stdout)
        doc["command"] = " ".join(["cargo", "run"] + (["--release"] if release else [])
                                  + ["--example", "switch_cost", "--"] + cmd[1:])
        doc["profile"] = "release" if release else "debug"
        with open(os.path.join(self.raw, "switch.json"), "w") as f:
            json.dump(doc, f, indent=1)

    def crash_one(self, mode, accept, fault, rep):
        k = self.p["crash_k"]
        body = '[supervisor]\ntimeout = "2s"\ngraceful_timeout = "3s"\n'
        if fault == "leak":
            body += 'max_rss = "64MiB"\n'
        cfg = self.write_config(f"crash-{fault}", body, faults=True)
        tag = f"crash.{fault}.{mode}.{accept}.r{rep}"
        srv = self.server(tag, mode, k, accept=accept, config_file=cfg)
        os.makedirs(os.path.join(self.raw, "crash"), exist_ok=True)
        trial = os.path.join(self.raw, "crash", tag[len("crash."):] + ".json")
        cmd = self.pin_load + [sys.executable, os.path.join(HERE, "crash_trial.py"),
                               "--port", str(srv.port), "--fault", fault,
                               "--workers", str(shape(mode, k)[1]), "--out", trial,
                               "--connections", str(CRASH_CONNECTIONS), "--rate", str(CRASH_RATE),
                               "--path", CRASH_PATH]
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=120)
        srv.stop()
        self.append("crash.jsonl", {"mode": mode, "accept": accept, "k": k, "fault": fault,
                                    "repeat": rep, "trial": os.path.relpath(trial, self.out),
                                    "log": os.path.relpath(srv.log, self.out),
                                    "exit": done.returncode, "stderr": done.stderr[-500:]})
        if done.returncode != 0:
            raise RuntimeError(f"crash trial {tag} failed: {done.stderr.strip()[-300:]}")

    def close(self):
        for s in list(self.servers):
            s.stop()
        shutil.rmtree(self.site, ignore_errors=True)


def main(argv):
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2

    def on_signal(_sig, _frame):
        raise Stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    lab = Lab(argv[0])
    try:
        lab.run()
    except Stop:
        print("lab: stopped", file=sys.stderr)
        return 130
    finally:
        lab.close()
    return 1 if lab.problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
