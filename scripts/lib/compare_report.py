#!/usr/bin/env python3
"""Turns the raw output of scripts/compare.sh into report.md, results.json
and chart.svg/chart.png (gnuplot, scripts/lib/compare.gp).

  compare_report.py OUTDIR [--strict]
  compare_report.py --write-meta FILE key=value...   (used by compare.sh)

OUTDIR/raw holds what compare.sh recorded: meta.json, servers.tsv, runs.tsv
and per run PREFIX.out (wrk or oha output), PREFIX.before.json and
PREFIX.after.json (/-/status around the run), PREFIX.samples.jsonl
(/-/status every 0.5 s during it).

Per run: req/s, p50/p99 and errors come from the load tool; requests served,
context switches and CPU time are differences of the scoreboard's per-worker
counters between the two snapshots (per pid, so a worker replaced mid-run
does not make them negative); PSS is the largest total seen. Per workload and
mode the report gives the median over rounds (errors: the sum).

Exit status: 1 if a run could not be parsed, served zero requests, or an
output is missing; with --strict (compare.sh --smoke) also if any request
failed. 0 otherwise.
"""

import json
import os
import sys

from common import (fmt, gnuplot, md_table, median, parse_oha, parse_wrk, ratio,
                    write_json)

NOISE = 0.10  # ratios within 1 +- NOISE are "no clear difference"
METRICS = [  # key, chart title, log scale (compare.gp has the same six, in this order)
    ("rps", "throughput (req/s, median)", True),
    ("p50_ms", "p50 latency (ms)", True),
    ("p99_ms", "p99 latency (ms)", True),
    ("ctx_per_req", "context switches per request", True),
    ("cpu_us_per_req", "CPU per request (us)", True),
    ("pss_mib", "total PSS of the workers (MiB)", False),
]


def write_meta(path, pairs):
    """compare.sh's key=value pairs as typed JSON; workload:NAME=TARGET
    pairs are collected into "workloads" (in order)."""
    meta = {"workloads": {}}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if key.startswith("workload:"):
            meta["workloads"][key[len("workload:"):]] = value
            continue
        if value.isdigit():
            value = int(value)
        meta[key] = value if value != "" else None
    write_json(path, meta)


def read_tsv(path):
    with open(path) as f:
        lines = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    return lines


def load_json(path):
    with open(path) as f:
        return json.load(f)


def worker_map(doc):
    """pid -> worker entry of a /-/status document."""
    return {w["pid"]: w for w in doc.get("workers") or [] if w.get("pid")}


def os_sum(worker, *keys):
    osf = worker.get("os") or {}
    values = [osf.get(k) for k in keys]
    return None if any(v is None for v in values) else sum(values)


def deltas(before, after):
    """Scoreboard differences between two /-/status documents, per pid:
    requests served, context switches (vol, nonvol) and CPU ms."""
    b, a = worker_map(before), worker_map(after)
    out = {"requests": 0, "vol": 0, "nonvol": 0, "cpu_ms": 0, "complete": True}
    for pid, w in a.items():
        old = b.get(pid)
        if old is None:  # a worker that started during the run: all of it counts
            out["complete"] = False
            old = {"requests": 0, "os": {}}
        out["requests"] += max(0, (w.get("requests") or 0) - (old.get("requests") or 0))
        for key, fields in (("vol", ("voluntary_ctxt_switches",)),
                            ("nonvol", ("nonvoluntary_ctxt_switches",)),
                            ("cpu_ms", ("cpu_user_ms", "cpu_sys_ms"))):
            now, then = os_sum(w, *fields), os_sum(old, *fields) if old.get("os") else 0
            if now is None or then is None:
                out[key] = None
            elif out[key] is not None:
                out[key] += max(0, now - then)
    if set(b) - set(a):
        out["complete"] = False  # a worker vanished: its last counts are lost
    return out


def peak_pss(paths_docs):
    best = None
    for doc in paths_docs:
        pss = (doc.get("totals") or {}).get("pss_kib")
        if pss is not None and (best is None or pss > best):
            best = pss
    return None if best is None else best / 1024.0


def parse_run(raw, meta, row):
    """One run's numbers, or raises ValueError saying what is wrong."""
    rnd, wl, mode, prefix, start_ms, end_ms = row
    with open(os.path.join(raw, prefix + ".out")) as f:
        text = f.read()
    load = parse_wrk(text) if meta["tool"] == "wrk" else parse_oha(text)
    before = load_json(os.path.join(raw, prefix + ".before.json"))
    after = load_json(os.path.join(raw, prefix + ".after.json"))
    samples = []
    sample_path = os.path.join(raw, prefix + ".samples.jsonl")
    if os.path.exists(sample_path):
        with open(sample_path) as f:
            samples = [json.loads(line) for line in f if line.strip()]
    docs = [before, after] + [s["doc"] for s in samples if s.get("ok")]
    d = deltas(before, after)
    served = d["requests"]
    ctx = None if d["vol"] is None or d["nonvol"] is None else d["vol"] + d["nonvol"]
    deaths = [x for x in after.get("deaths") or []
              if int(start_ms) - 1000 <= (x.get("at_ms") or 0) <= int(end_ms) + 1000]
    run = {
        "round": int(rnd), "workload": wl, "mode": mode,
        **load,
        "served": served,
        "ctx_switches": ctx, "ctx_voluntary": d["vol"], "ctx_nonvoluntary": d["nonvol"],
        "cpu_ms": d["cpu_ms"],
        "ctx_per_req": ratio(ctx, served),
        "cpu_us_per_req": None if d["cpu_ms"] is None or not served else d["cpu_ms"] * 1000.0 / served,
        "pss_mib": peak_pss(docs),
        "status_samples": len(samples), "status_samples_failed": sum(1 for s in samples if not s.get("ok")),
        "workers_stable": d["complete"],
        "deaths": deaths,
    }
    return run


def cell_summary(runs):
    med = {key: median([r[key] for r in runs]) for key in
           ("rps", "p50_ms", "p99_ms", "ctx_per_req", "cpu_us_per_req", "pss_mib", "served")}
    med["errors"] = sum(r["errors"] for r in runs)
    med["rps_rounds"] = [r["rps"] for r in runs]
    med["rounds"] = len(runs)
    return med


# --- the claims -----------------------------------------------------------------

def verdict(value, more_means_agree=True):
    if value is None:
        return "not measured"
    if 1 - NOISE <= value <= 1 + NOISE:
        return "no clear difference (within ±10 %)"
    agrees = value > 1 + NOISE if more_means_agree else value < 1 - NOISE
    return "**agrees**" if agrees else "**disagrees**"


def per_workload_ratio(cells, metric, a="process", b="thread"):
    """{workload: a/b} for the metric, where both are known."""
    out = {}
    for wl, modes in cells.items():
        if a in modes and b in modes:
            r = ratio(modes[a].get(metric), modes[b].get(metric))
            if r is not None:
                out[wl] = r
    return out


def ratio_claim(cells, claim, metric, unit, digits, explain):
    per = per_workload_ratio(cells, metric)
    med = median(list(per.values()))
    agree = sum(1 for r in per.values() if r > 1 + NOISE)
    against = sum(1 for r in per.values() if r < 1 - NOISE)
    detail = ", ".join(f"{wl} {r:.2f}×" for wl, r in per.items())
    proc = median([m["process"].get(metric) for m in cells.values() if "process" in m])
    thr = median([m["thread"].get(metric) for m in cells.values() if "thread" in m])
    return {
        "claim": claim,
        "metric": f"{metric}: median over workloads; ratio process ÷ thread per workload",
        "process": fmt(proc, digits, unit), "thread": fmt(thr, digits, unit),
        "ratio": med,
        "measured": (f"median ratio {med:.2f}× over {len(per)} workloads; higher for processes in "
                     f"{agree}, lower in {against} ({detail})") if per else "not measured",
        "verdict": verdict(med),
        "explain": explain,
    }


def claims(cells):
    rows = [
        ratio_claim(
            cells, "Processes cost more memory than threads", "pss_mib", " MiB", 1,
            "PSS splits shared pages between the processes that map them, so forked workers "
            "pay only for what they dirtied; the thread pool's stacks and per-thread arenas "
            "count on the other side."),
        ratio_claim(
            cells, "Processes cost more context switches", "ctx_per_req", "", 2,
            "In thread mode every request moves from the event loop to a pool thread and back "
            "(a wake-up each way), which a one-thread event loop never does."),
        ratio_claim(
            cells, "Threads are cheaper to switch, so a threaded server spends less CPU per request",
            "cpu_us_per_req", " µs", 1,
            "Switching threads of one process keeps the address space (no TLB flush), but the "
            "hand-off costs system calls and wake-ups of its own."),
    ]
    # Shared state. forkpool takes the worker's lock for each operation in
    # both modes (uncontended in process mode), so what thread mode can add
    # is contention. Thread mode also pays a hand-off per request (loop ->
    # pool -> loop); that extra CPU is measured on lock-free workloads and
    # subtracted: lock cost = (thread - process) on shared - the same on them.
    shared = cells.get("shared", {})
    s_proc = shared.get("process", {}).get("cpu_us_per_req")
    s_thr = shared.get("thread", {}).get("cpu_us_per_req")
    bases = [w for w in ("static-1k", "mem") if w in cells]
    handoff = median([cells[w].get("thread", {}).get("cpu_us_per_req", 0) -
                      cells[w].get("process", {}).get("cpu_us_per_req", 0)
                      for w in bases
                      if cells[w].get("thread", {}).get("cpu_us_per_req") is not None
                      and cells[w].get("process", {}).get("cpu_us_per_req") is not None])
    if s_proc and s_thr is not None and handoff is not None:
        lock_us = (s_thr - s_proc) - handoff
        lock = 1 + lock_us / s_proc
        tput = ratio(shared.get("process", {}).get("rps"), shared.get("thread", {}).get("rps"))
        measured = (f"thread mode spends {s_thr - s_proc:+.1f} µs/request more on shared, "
                    f"{handoff:+.1f} µs on lock-free {'/'.join(bases)} (the hand-off): "
                    f"{lock_us:+.1f} µs = {100 * (lock - 1):+.0f} % of the request's CPU left for "
                    f"the lock; req/s process ÷ thread on shared {fmt(tput, 2)}×")
        lock_verdict = ("**agrees**" if lock > 1 + NOISE
                        else "**disagrees**: no measurable cost (±10 %)")
    else:
        lock, measured = None, "not measured (needs shared, and static-1k or mem)"
        lock_verdict = "not measured"
    rows.append({
        "claim": "Threads need locks: shared state costs synchronisation",
        "metric": "extra CPU/request in thread mode on `shared`, minus the extra on lock-free "
                  "workloads, as a share of the request's CPU",
        "process": fmt(s_proc, 1, " µs"),
        "thread": fmt(s_thr, 1, " µs"),
        "ratio": lock,
        "measured": measured,
        "verdict": lock_verdict,
        "explain": "Each of the N operations takes the worker's lock, in both modes: in process "
                   "mode one thread owns its copy (never contended); in thread mode the pool "
                   "threads share one. An uncontended lock is a few nanoseconds; contention needs "
                   "two threads running at once, and with the server pinned to one core that "
                   "happens only when a thread is preempted holding the lock (try --no-pin).",
    })
    io = cells.get("io", {})
    io_ratio = ratio(io.get("process", {}).get("rps"), io.get("thread", {}).get("rps"))
    rows.append({
        "claim": "(forkpool) An event loop overlaps waits; a thread per request can't wait on "
                 "more requests than it has threads",
        "metric": "req/s process ÷ thread on `io`",
        "process": fmt(io.get("process", {}).get("rps"), 0),
        "thread": fmt(io.get("thread", {}).get("rps"), 0),
        "ratio": io_ratio,
        "measured": "not measured (needs the io workload)" if io_ratio is None
        else f"{io_ratio:.2f}× the throughput in process mode",
        "verdict": verdict(io_ratio),
        "explain": "`io` is a timer on the event loop and a blocking sleep on a pool thread: with "
                   "K threads thread mode serves at most K waits at once.",
    })
    return rows


# --- the outputs -------------------------------------------------------------------

def chart(out, modes, workloads, cells):
    """chart.dat, then chart.svg and chart.png through scripts/lib/compare.gp."""
    path = os.path.join(out, "chart.dat")
    with open(path, "w") as f:
        f.write("# workload " + " ".join(f"{m}:{mode}" for m, _, _ in METRICS for mode in modes) + "\n")
        for wl in workloads:
            values = []
            for key, _, _ in METRICS:
                for mode in modes:
                    v = cells.get(wl, {}).get(mode, {}).get(key)
                    values.append("NaN" if v is None or v <= 0 else f"{v:.6g}")
            f.write(f'"{wl}" ' + " ".join(values) + "\n")
    common = {
        "datafile": "chart.dat", "nmodes": len(modes), "modes": " ".join(modes),
    }
    gnuplot("compare.gp", {**common, "term": "svg", "outfile": "chart.svg"}, out)
    gnuplot("compare.gp", {**common, "term": "png", "outfile": "chart.png"}, out)


def report(out, meta, servers, workloads, modes, cells, runs, claim_rows, problems, warnings):
    lines = ["# forkpool: process vs thread at equal concurrency", ""]
    desc = {s[0]: f"`{s[0]}` = `--mode {s[1]} --workers {s[2]}" + (f" --threads {s[3]}`" if s[1] == "thread" else "`")
            for s in servers}
    lines += [
        f"- run: `{meta.get('command')}` ({meta.get('profile')}), {meta.get('started')}, "
        f"forkpool {meta.get('git')}",
        f"- K = {meta.get('k')}: " + "; ".join(desc[m] for m in modes),
        f"- load: {meta.get('tool')} ({meta.get('tool_version') or '?'}), {meta.get('connections')} "
        f"connections, {meta.get('duration_s')} s × {meta.get('rounds')} rounds interleaved "
        f"(each round runs every workload on every mode in turn), {meta.get('warmup_s')} s warm-up",
        f"- machine: {meta.get('nproc')} CPUs ({meta.get('cpu_model')}), Linux {meta.get('kernel')}; "
        f"server on CPU {meta.get('server_cpus') or 'any'}, load on CPU {meta.get('load_cpus') or 'any'}",
        "",
        "Values are medians over rounds (errors: the sum). Context switches (voluntary + "
        "involuntary, every thread of every worker), CPU (user + sys) and requests served are "
        "differences of `/-/status` counters across each run; PSS is the largest total seen "
        "(sampled every 0.5 s). The samples themselves are a few requests per second, not counted "
        "as requests. The master process is excluded.",
        "",
    ]
    if problems or warnings:
        lines += ["## Problems", ""] + [f"- ✗ {p}" for p in problems] + [f"- ⚠ {w}" for w in warnings] + [""]
    lines += ["## Claims against this run", ""]
    lines.append(md_table(
        ["claim", "metric", "process", "thread", "measured", "verdict"],
        [[c["claim"], c["metric"], c["process"], c["thread"], c["measured"], c["verdict"]]
         for c in claim_rows], "llrrll"))
    lines += ["", "Why the numbers can disagree with the claim:", ""]
    lines += [f"- *{c['claim']}*: {c['explain']}" for c in claim_rows]
    lines += ["", f"A ratio within ±{int(NOISE * 100)} % counts as no clear difference. On a shared "
              "2-core machine rounds vary by more than that: read the per-round req/s before "
              "trusting a verdict.", ""]
    lines += ["## Workloads", "", "![chart](chart.svg)", ""]
    for wl in workloads:
        lines += [f"### {wl}: `{meta['workloads'].get(wl, '')}`", ""]
        rows = []
        for mode in modes:
            c = cells.get(wl, {}).get(mode)
            if not c:
                rows.append([mode] + ["–"] * 8)
                continue
            rows.append([
                mode, fmt(c["rps"], 0), " ".join(fmt(r, 0) for r in c["rps_rounds"]),
                fmt(c["p50_ms"], 2), fmt(c["p99_ms"], 2), fmt(c["errors"]),
                fmt(c["ctx_per_req"], 2), fmt(c["cpu_us_per_req"], 1), fmt(c["pss_mib"], 1),
            ])
        lines.append(md_table(["mode", "req/s", "req/s by round", "p50 ms", "p99 ms", "errors",
                               "ctx switches/req", "CPU µs/req", "PSS MiB"], rows, "lrrrrrrrr"))
        lines.append("")
    lines += ["Raw outputs (load tool, /-/status snapshots, server logs) are in `raw/`; "
              "`results.json` has every run.", ""]
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(lines))


def main(argv):
    if argv and argv[0] == "--write-meta":
        write_meta(argv[1], argv[2:])
        return 0
    strict = "--strict" in argv
    args = [a for a in argv if a != "--strict"]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out = args[0]
    raw = os.path.join(out, "raw")
    meta = load_json(os.path.join(raw, "meta.json"))
    servers = read_tsv(os.path.join(raw, "servers.tsv"))
    modes = [s[0] for s in servers]
    workloads = list(meta["workloads"])
    rows = read_tsv(os.path.join(raw, "runs.tsv"))[1:]
    problems, warnings, runs = [], [], []
    for row in rows:
        try:
            run = parse_run(raw, meta, row)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            problems.append(f"round {row[0]} {row[1]} on {row[2]}: could not be read: {exc}")
            continue
        runs.append(run)
        where = f"round {run['round']} {run['workload']} on {run['mode']}"
        if not run["rps"] or (run["requests"] is not None and run["requests"] == 0):
            problems.append(f"{where}: the load tool completed zero requests")
        if not run["served"]:
            problems.append(f"{where}: the scoreboard counted zero requests served")
        for key in ("ctx_per_req", "cpu_us_per_req", "pss_mib"):
            if run[key] is None:
                problems.append(f"{where}: no {key} (missing /-/status fields)")
        if run["errors"]:
            (problems if strict else warnings).append(f"{where}: {run['errors']} failed requests")
        if run["deaths"]:
            warnings.append(f"{where}: worker deaths during the run: "
                            + "; ".join(f"pid {d.get('pid')} {d.get('reason')}" for d in run["deaths"]))
        elif not run["workers_stable"]:
            warnings.append(f"{where}: the set of workers changed during the run")
    if not runs:
        problems.append("no run could be read")
    cells = {}
    for wl in workloads:
        for mode in modes:
            mine = [r for r in runs if r["workload"] == wl and r["mode"] == mode]
            if mine:
                cells.setdefault(wl, {})[mode] = cell_summary(mine)
            else:
                problems.append(f"{wl} on {mode}: no run")
    claim_rows = claims(cells)
    chart_error = None
    try:
        chart(out, modes, workloads, cells)
    except (RuntimeError, OSError) as exc:
        chart_error = str(exc)
        problems.append(f"the chart failed: {exc}")
    report(out, meta, servers, workloads, modes, cells, runs, claim_rows, problems, warnings)
    write_json(os.path.join(out, "results.json"), {
        "meta": meta,
        "servers": [dict(zip(["name", "mode", "workers", "threads", "port", "master_pid"], s)) for s in servers],
        "cells": cells,
        "claims": claim_rows,
        "runs": runs,
        "problems": problems,
        "warnings": warnings,
    })
    for name in ("report.md", "results.json", "chart.svg", "chart.png"):
        path = os.path.join(out, name)
        if not os.path.exists(path) or os.path.getsize(path) == 0:
            if not (chart_error and name.startswith("chart")):
                problems.append(f"{name} is missing or empty")
    print()
    print_summary(workloads, modes, cells)
    for w in warnings:
        print(f"compare.sh: warning: {w}", file=sys.stderr)
    for p in problems:
        print(f"compare.sh: FAILED: {p}", file=sys.stderr)
    print(f"\ncompare.sh: wrote {out}/report.md, results.json, chart.svg, chart.png")
    return 1 if problems else 0


def print_summary(workloads, modes, cells):
    print(f"{'workload':<10} {'mode':<8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
          f"{'ctx/req':>8} {'CPU us/req':>10} {'PSS MiB':>8}")
    for wl in workloads:
        for mode in modes:
            c = cells.get(wl, {}).get(mode)
            if not c:
                continue
            print(f"{wl:<10} {mode:<8} {fmt(c['rps'], 0):>9} {fmt(c['p50_ms'], 2):>8} "
                  f"{fmt(c['p99_ms'], 2):>8} {c['errors']:>6} {fmt(c['ctx_per_req'], 2):>8} "
                  f"{fmt(c['cpu_us_per_req'], 1):>10} {fmt(c['pss_mib'], 1):>8}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
