#!/usr/bin/env python3
"""Turns what scripts/lab.sh recorded (lab_run.py's raw/ files) into
report.md, results.json and the PNG charts.

  lab_report.py OUTDIR [--strict]

Per configuration and K (and workload, connections, offered rate) the
numbers are the median over rounds with the min-max spread. A claim is
called (holds / the reverse) only where the two configurations' ranges
don't overlap and their medians differ by 5 % or more; anything else is
"no clear difference", and a single round gives no spread, which the
verdict says.

results.json is read by an independent check; its lists keep these keys:
  sweep        {workload, mode, k, rps, pss_kib, ctx_per_req, cpu_us_per_req, ...}
  concurrency  {mode, k, connections, rps, p99_ms, ...}
  latency      {mode, k, rate, p50_ms, p99_ms, p999_ms, max_ms, ...}
  switch_cost  {kind, mechanism, working_set_kib, ns, ns_min, ns_max, ...}
  crash        {mode, accept, k, fault, connections, lost, failed_requests, recovery_ms, ...}
  claims       {claim, configurations, verdict, evidence, ...}
Each numeric field X has X_min and X_max beside it where it is a median.

Exit status 1 if a phase recorded a problem, a run served nothing or an
output is missing; with --strict (--smoke) also if a request failed.
"""

import json
import os
import sys
from collections import defaultdict

from charts import plot
from common import fmt, md_table, median, spread, write_json
from crash_report import analyse, cell

SWEEP_METRICS = ["rps", "p50_ms", "p99_ms", "cpu_us_per_req", "ctx_per_req", "ctx_vol_per_req",
                 "ctx_invol_per_req", "pss_kib", "pss_per_unit_kib", "uss_kib", "uss_per_unit_kib",
                 "rss_kib", "fairness", "fairness_requests", "server_fairness", "served"]
CONFIG_ORDER = ["process", "thread-loops", "thread", "prefork"]
CONFIG_DESC = {
    "process": "`--mode process --workers K` (K event loops, K address spaces)",
    "thread-loops": "`--mode thread-loops --workers 1 --threads K` (K event loops, one address space)",
    "thread": "`--mode thread --workers 1 --threads K` (one loop handing requests to K pool threads)",
    "prefork": "`--mode process --workers K` with `max_connections = 1` (Apache prefork)",
}
FAULT_ORDER = ["abort", "segv", "hang", "leak", "panic"]
SMALL = 0.05  # medians closer than this are "no clear difference" even when the ranges are apart


def load_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def value(run, key):
    if key in run.get("load", {}):
        return run["load"][key]
    return run.get("metrics", {}).get(key)


def flat(entry, key, values):
    """entry[key] = median, entry[key_min], entry[key_max]."""
    s = spread(values)
    entry[key] = s and s["median"]
    entry[key + "_min"] = s and s["min"]
    entry[key + "_max"] = s and s["max"]


def ordered(modes):
    return sorted(modes, key=lambda m: CONFIG_ORDER.index(m) if m in CONFIG_ORDER else 99)


def rng(values, digits=1, unit="", scale=1.0):
    """'median [min–max]' of per-round values."""
    s = spread(values)
    if not s:
        return "–"
    if s["n"] == 1:
        return fmt(s["median"] * scale, digits, unit)
    return (f"{fmt(s['median'] * scale, digits, unit)} "
            f"[{fmt(s['min'] * scale, digits)}–{fmt(s['max'] * scale, digits)}]")


def versus(a, b):
    """'>' or '<' when a's and b's per-round ranges don't overlap, '~' when
    they do, None without values on either side."""
    a = [v for v in a or [] if v is not None]
    b = [v for v in b or [] if v is not None]
    if not a or not b:
        return None
    if min(a) > max(b):
        return ">"
    if max(a) < min(b):
        return "<"
    return "~"


def ks_text(ks):
    return "K = " + ", ".join(str(k) for k in ks)


def per_k(ks, a_vals, b_vals, want, a_name, b_name, what):
    """A verdict over K for "a is `want` than b": where the ranges say so,
    where they overlap, where they say the reverse. Returns (text, rows,
    status), rows being [(k, a values, b values, relation, ratio)]."""
    rows, holds, same, reverse = [], [], [], []
    for k in ks:
        a, b = a_vals.get(k), b_vals.get(k)
        rel = versus(a, b)
        if rel is None:
            continue
        r = None
        if median(a) is not None and median(b):
            r = median(a) / median(b)
        if rel != "~" and r is not None and abs(r - 1) < SMALL:
            rel = "small"  # apart, but too little to matter
        rows.append((k, a, b, rel, r))
        (holds if rel == want else same if rel in ("~", "small") else reverse).append((k, r))
    if not rows:
        return f"not measured ({what})", rows, "not measured"
    parts = []
    if holds:
        k_hi, r_hi = holds[-1]
        parts.append(f"holds at {ks_text([k for k, _ in holds])} ({a_name} ÷ {b_name} = "
                     f"{r_hi:.2f}× at K = {k_hi})")
    if same:
        parts.append(f"no clear difference at {ks_text([k for k, _ in same])} (ranges overlap, "
                     f"or differ by under {SMALL:.0%}: "
                     + ", ".join(f"{r:.2f}×" for _, r in same if r is not None) + ")")
    if reverse:
        parts.append(f"the reverse at {ks_text([k for k, _ in reverse])} ("
                     + ", ".join(f"{r:.2f}×" for _, r in reverse if r is not None) + ")")
    status = "holds" if holds and not same and not reverse else (
        "partly" if holds else ("reverse" if reverse and not same else "no clear difference"))
    return "; ".join(parts), rows, status


def k_evidence(rows, a_name, b_name, digits, unit):
    """Both sides' numbers at each K, from per_k's rows."""
    return "; ".join(f"K={k}: {a_name} {rng(a, digits, unit)}, {b_name} {rng(b, digits, unit)}"
                     for k, a, b, _, _ in rows)


def rounds_note(values_lists):
    n = min((len(v) for v in values_lists if v), default=0)
    return " One round only: no spread, so this is indicative." if n == 1 else ""


# --- the phases' tables ------------------------------------------------------

class Data:
    def __init__(self, out):
        self.out, self.raw = out, os.path.join(out, "raw")
        with open(os.path.join(self.raw, "meta.json")) as f:
            self.meta = json.load(f)
        self.runs = load_jsonl(os.path.join(self.raw, "runs.jsonl"))
        self.skipped = load_jsonl(os.path.join(self.raw, "skipped.jsonl"))
        self.problems = [f"{p['phase']}: {p['problem']}"
                         for p in load_jsonl(os.path.join(self.raw, "problems.jsonl"))]
        self.warnings = []
        self.charts = {}

    def group(self, phase, keys):
        groups = defaultdict(list)
        for r in self.runs:
            if r["phase"] == phase:
                groups[tuple(r.get(k) for k in keys)].append(r)
        return groups

    # sweep ------------------------------------------------------------------
    def sweep(self):
        self.sweep_vals = {}
        rows = []
        for (wl, mode, k), runs in sorted(self.group("sweep", ["workload", "mode", "k"]).items(),
                                          key=lambda kv: (kv[0][0], CONFIG_ORDER.index(kv[0][1])
                                                          if kv[0][1] in CONFIG_ORDER else 9, kv[0][2])):
            vals = {m: [value(r, m) for r in runs] for m in SWEEP_METRICS}
            vals["round"] = [r["round"] for r in runs]
            self.sweep_vals[(wl, mode, k)] = vals
            entry = {"workload": wl, "mode": mode, "k": k, "rounds": len(runs),
                     "connections": runs[0].get("connections")}
            for m in SWEEP_METRICS:
                flat(entry, m, vals[m])
            entry["errors"] = sum(value(r, "errors") or 0 for r in runs)
            entry["fairness_source"] = runs[-1]["metrics"].get("fairness_source")
            rows.append(entry)
            for r in runs:
                where = f"sweep {wl} {mode} K={k} round {r['round']}"
                if not value(r, "requests") or not value(r, "served"):
                    self.problems.append(f"{where}: served no request")
                if value(r, "errors") and mode != "prefork":
                    self.strict_problem(f"{where}: {value(r, 'errors')} failed requests")
                if r["metrics"].get("deaths"):
                    self.warnings.append(f"{where}: a worker died during the run")
        self.sweep_rows = rows
        return rows

    def strict_problem(self, text):
        (self.problems if self.strict else self.warnings).append(text)

    def sv(self, wl, mode, metric):
        """{k: per-round values} of a sweep metric."""
        return {k: v[metric] for (w, m, k), v in self.sweep_vals.items() if w == wl and m == mode}

    def modes(self, phase="sweep"):
        return ordered({r["mode"] for r in self.runs if r["phase"] == phase})

    def ks(self):
        return sorted({r["k"] for r in self.runs if r["phase"] == "sweep"})

    # concurrency --------------------------------------------------------------
    def concurrency(self):
        rows = []
        self.conc_vals = {}
        for (mode, k, c), runs in self.group("concurrency", ["mode", "k", "connections"]).items():
            entry = {"mode": mode, "k": k, "connections": c, "rounds": len(runs)}
            for m in ("rps", "p50_ms", "p99_ms", "cpu_us_per_req", "ctx_per_req"):
                vals = [value(r, m) for r in runs]
                self.conc_vals[(mode, c, m)] = vals
                flat(entry, m, vals)
            entry["errors"] = sum(value(r, "errors") or 0 for r in runs)
            rows.append(entry)
            if not all(value(r, "requests") for r in runs):
                self.problems.append(f"concurrency {mode} {c} connections: served no request")
        rows.sort(key=lambda e: (CONFIG_ORDER.index(e["mode"]) if e["mode"] in CONFIG_ORDER else 9,
                                 e["connections"]))
        self.conc_rows = rows
        return rows

    # latency --------------------------------------------------------------------
    def latency(self):
        rows = []
        self.lat_vals = {}
        for (mode, k, kind, frac), runs in self.group("latency", ["mode", "k", "kind", "fraction"]).items():
            if kind != "rate":
                continue
            entry = {"mode": mode, "k": k, "fraction": frac, "rounds": len(runs),
                     "connections": runs[0].get("connections")}
            flat(entry, "rate", [r["rate"] for r in runs])
            flat(entry, "max_rps", [r.get("max_rps") for r in runs])
            flat(entry, "achieved_rps", [value(r, "rps") for r in runs])
            for m in ("p50_ms", "p99_ms", "p999_ms", "max_ms"):
                vals = [value(r, m) for r in runs]
                self.lat_vals[(mode, frac, m)] = vals
                flat(entry, m, vals)
            entry["errors"] = sum(value(r, "errors") or 0 for r in runs)
            rows.append(entry)
            for r in runs:
                got = value(r, "rps") or 0
                if r["rate"] and got < 0.9 * r["rate"]:
                    self.warnings.append(
                        f"latency {mode} at {int(frac * 100)} %: offered {r['rate']} req/s, "
                        f"{got:.0f} completed (the server, or oha on its core, fell behind)")
        rows.sort(key=lambda e: (CONFIG_ORDER.index(e["mode"]) if e["mode"] in CONFIG_ORDER else 9,
                                 e["fraction"]))
        self.lat_rows = rows
        return rows

    # switch cost ------------------------------------------------------------------
    def switch(self):
        path = os.path.join(self.raw, "switch.json")
        self.switch_doc = None
        if not os.path.exists(path):
            return []
        with open(path) as f:
            self.switch_doc = json.load(f)
        return self.switch_doc.get("results") or []

    # crash ---------------------------------------------------------------------------
    def crash(self):
        index = load_jsonl(os.path.join(self.raw, "crash.jsonl"))
        trials = defaultdict(list)
        for t in index:
            path = os.path.join(self.out, t["trial"])
            if not os.path.exists(path):
                self.problems.append(f"crash {t['fault']} on {t['mode']}: no trial record")
                continue
            with open(path) as f:
                trial = json.load(f)
            log_path = os.path.join(self.out, t["log"])
            log = open(log_path, errors="replace").read() if os.path.exists(log_path) else ""
            res = analyse(trial, log)
            res["method"] = (trial.get("fault_request") or {}).get("method")
            trials[(t["mode"], t["accept"], t["fault"], t["k"])].append(res)
            where = f"crash {t['fault']} on {t['mode']} ({t['accept']}) repeat {t['repeat']}"
            self.problems += [f"{where}: {p}" for p in res["problems"]]
            if res.get("injected") and not res.get("requests_ok"):
                self.problems.append(f"{where}: the load completed no request")
            if t["fault"] in ("abort", "segv") and res.get("serve_ms") is None:
                self.strict_problem(f"{where}: no replacement worker was seen serving")
        rows = []
        self.crash_trials = trials
        for (mode, accept, fault, k), results in trials.items():
            one_process = mode in ("thread", "thread-loops")
            conns = [r.get("conns_open") for r in results]
            lost = [r.get("conns_lost") for r in results]
            shares = [None if not c or l is None else l / c for c, l in zip(conns, lost)]
            entry = {"mode": mode, "accept": accept, "k": k, "fault": fault, "repeats": len(results),
                     "workers": 1 if one_process else k}
            flat(entry, "connections", conns)
            flat(entry, "lost", lost)
            flat(entry, "lost_share", shares)
            entry["expected_lost_share"] = 1.0 if one_process else 1.0 / k
            flat(entry, "failed_requests", [r.get("failed") for r in results])
            flat(entry, "recovery_ms", [r.get("serve_ms") for r in results])
            flat(entry, "detect_ms", [r.get("detect_ms") for r in results])
            flat(entry, "stalled", [r.get("stalled") for r in results])
            flat(entry, "service_lost_s", [r.get("service_lost_s") for r in results])
            entry["connections_per_worker"] = [r.get("connections_per_worker") for r in results]
            # Per repeat "hit:other:other", the worker hit first in bold.
            entry["spread"] = cell(results)["spread"]
            entry["deaths"] = sorted({str(d.get("reason")) for r in results for d in r.get("deaths") or []})
            entry["fault_request"] = sorted({f"{r.get('method')} → {r.get('fault_request')}"
                                             for r in results})
            rows.append(entry)
        rows.sort(key=lambda e: (FAULT_ORDER.index(e["fault"]) if e["fault"] in FAULT_ORDER else 9,
                                 e["accept"] != "reuseport",
                                 CONFIG_ORDER.index(e["mode"]) if e["mode"] in CONFIG_ORDER else 9))
        self.crash_rows = rows
        return rows


# --- charts ------------------------------------------------------------------------

def line_series(data, wl, metric, modes, scale=1.0):
    out = []
    for mode in modes:
        pts = []
        for k, vals in sorted(data.sv(wl, mode, metric).items()):
            s = spread(vals)
            if s:
                pts.append((k, s["median"] * scale, s["min"] * scale, s["max"] * scale))
        out.append((mode, pts))
    return out


def panel(title, ylabel, series, xlabel="K (workers or threads)", logx=2, logy=False, **extra):
    return dict(title=title, ylabel=ylabel, xlabel=xlabel, logx=logx, logy=logy, series=series,
                kind="lines", **extra)


def draw(data, name, title, panels, cols=2):
    try:
        data.charts[name] = plot(data.out, name, title, panels, cols)
    except (RuntimeError, OSError) as exc:
        data.problems.append(f"chart {name}: {exc}")


def extra_cpu(data, mode, base="static-1k", wl="shared"):
    """{k: [per-round CPU µs/request on `wl` minus on `base`]}, paired by
    round (both ran on the same server)."""
    out = {}
    for (w, m, k), vals in data.sweep_vals.items():
        if w != wl or m != mode or (base, m, k) not in data.sweep_vals:
            continue
        b = data.sweep_vals[(base, m, k)]
        by_round = dict(zip(b["round"], b["cpu_us_per_req"]))
        out[k] = [c - by_round[r] for r, c in zip(vals["round"], vals["cpu_us_per_req"])
                  if c is not None and by_round.get(r) is not None]
    return out


# --- the claims ------------------------------------------------------------------------

def pair_mode(data):
    """The threaded side of the controlled pair: thread-loops where the
    binary has it, else the thread pool (with its hand-off as a confound)."""
    modes = data.modes()
    return "thread-loops" if "thread-loops" in modes else "thread"


def k_table(data, wl, metric, modes, digits=1, unit="", scale=1.0):
    rows = []
    for k in data.ks():
        row = [str(k)]
        for mode in modes:
            row.append(rng(data.sv(wl, mode, metric).get(k), digits, unit, scale))
        rows.append(row)
    return md_table(["K"] + modes, rows)


def claim_memory(data):
    modes = data.modes()
    other = pair_mode(data)
    wl = "static-1k"
    text, rows, status = per_k(data.ks(), data.sv(wl, "process", "pss_kib"),
                               data.sv(wl, other, "pss_kib"), ">", "process", other,
                               "needs the sweep")
    draw(data, "claim-memory", "Processes use more memory? Total PSS of the workers after the load",
         [panel("total PSS of the workers (MiB)", "MiB", line_series(data, wl, "pss_kib", modes, 1 / 1024)),
          panel("PSS per worker or thread (KiB)", "KiB", line_series(data, wl, "pss_per_unit_kib", modes),
                logy=True),
          panel("total USS of the workers (MiB)", "MiB", line_series(data, wl, "uss_kib", modes, 1 / 1024)),
          panel("RSS summed over the workers (MiB)", "MiB",
                line_series(data, wl, "rss_kib", modes, 1 / 1024))])
    noise = rounds_note([v for _, v in data.sv(wl, "process", "pss_kib").items()])
    confound = "" if other == "thread-loops" else (
        " (thread-loops is not in this binary: the thread pool stands in, with its hand-off)")
    return {
        "claim": "processes use more memory",
        "configurations": f"process vs {other}{confound}; every configuration in the chart",
        "metric": "total PSS of the workers (smaps_rollup, from /-/status) after the static-1k "
                  "load, median [min–max] over rounds; the master is not counted",
        "verdict": text + noise,
        "status": status,
        "evidence": k_evidence(rows, "process", other, 0, " KiB"),
        "table": k_table(data, wl, "pss_kib", modes, 1, "", 1 / 1024),
        "table_unit": "total PSS, MiB",
        "chart": data.charts.get("claim-memory"),
        "explain": "PSS divides each shared page among the processes that map it, so forked "
                   "workers pay only for the pages they dirtied (heap, stacks, the scoreboard's "
                   "share); threads share one heap and page tables but each has a stack and, "
                   "with glibc, possibly its own malloc arena.",
    }


def claim_switch(data, switch_rows):
    modes = data.modes()
    other = pair_mode(data)
    wl = "static-1k"
    parts, status_parts, evidence = [], [], []
    mechs = sorted({r["mechanism"] for r in switch_rows})
    sizes = sorted({r["working_set_kib"] for r in switch_rows})
    panels = []
    for mech in mechs:
        holds, same, rev, unresolved = [], [], [], []
        series = []
        for kind in ("process", "thread"):
            pts = []
            for j, ws in enumerate(sizes):
                r = next((x for x in switch_rows if x["mechanism"] == mech and x["kind"] == kind
                          and x["working_set_kib"] == ws), None)
                if r:
                    pts.append((j, r["ns"], r.get("ns_min"), r.get("ns_max")))
            series.append((kind, pts))
        for ws in sizes:
            p = next((x for x in switch_rows if x["mechanism"] == mech and x["kind"] == "process"
                      and x["working_set_kib"] == ws), None)
            t = next((x for x in switch_rows if x["mechanism"] == mech and x["kind"] == "thread"
                      and x["working_set_kib"] == ws), None)
            if not p or not t:
                continue
            rel = versus([p.get("ns_min"), p.get("ns_max")], [t.get("ns_min"), t.get("ns_max")])
            r = p["ns"] / t["ns"] if t["ns"] else None
            label = f"{ws} KiB"
            # Net = raw - touch: where a round's net went to zero or below,
            # touching the working set cost more than the switch and its
            # noise swamps it; no ratio means anything there.
            if min(x for x in (p.get("ns_min"), t.get("ns_min"), p["ns"], t["ns"])
                   if x is not None) <= 0:
                unresolved.append(label)
                evidence.append(f"{mech} {label}: not resolvable (net ≤ 0 in some round: "
                                f"the working set's own cost swamps the switch)")
                continue
            evidence.append(f"{mech} {label}: process {fmt(p['ns'], 0)} ns [{fmt(p.get('ns_min'), 0)}–"
                            f"{fmt(p.get('ns_max'), 0)}], thread {fmt(t['ns'], 0)} ns "
                            f"[{fmt(t.get('ns_min'), 0)}–{fmt(t.get('ns_max'), 0)}]")
            (holds if rel == ">" else same if rel == "~" else rev).append(
                f"{label}" + (f" {r:.2f}×" if r else ""))
        bits = []
        if holds:
            bits.append("holds at " + ", ".join(holds))
        if same:
            bits.append("no clear difference at " + ", ".join(same))
        if rev:
            bits.append("the reverse at " + ", ".join(rev))
        if unresolved:
            bits.append("not resolvable at " + ", ".join(unresolved))
        parts.append(f"{mech}: " + "; ".join(bits))
        status_parts += ["h"] * len(holds) + ["s"] * len(same) + ["r"] * len(rev)
        panels.append(dict(title=f"ns per switch over a {mech} (median, min–max over rounds)",
                           ylabel="ns", xlabel="working set touched per switch, each side",
                           kind="bars", categories=[f"{s} KiB" for s in sizes], series=series,
                           logy=False))
    if switch_rows:
        prof = (data.switch_doc or {}).get("profile")
        micro = "; ".join(parts) + (" (debug build: not meaningful)" if prof == "debug" else "")
    else:
        micro = "not measured (" + ("; ".join(
            s["why"] for s in data.skipped if s["phase"] == "switch") or "phase not run") + ")"
    text, rows, server_status = per_k(data.ks(), data.sv(wl, "process", "cpu_us_per_req"),
                          data.sv(wl, other, "cpu_us_per_req"), ">", "process", other,
                          "needs the sweep")
    panels.append(panel("in the server: CPU µs per static-1k request", "µs",
                        line_series(data, wl, "cpu_us_per_req", modes), logy=True))
    panels.append(panel("in the server: context switches per request (voluntary + involuntary)",
                        "switches", line_series(data, wl, "ctx_per_req", modes), logy=True))
    draw(data, "claim-switch", "Process switches cost more than thread switches?", panels)
    if not status_parts:
        status = "not measured"
    elif set(status_parts) == {"h"} and server_status in ("holds", "not measured"):
        status = "holds"
    else:
        status = "partly" if "h" in status_parts else "no clear difference"
    return {
        "claim": "process switches cost more than thread switches",
        "configurations": "examples/switch_cost: two processes vs two threads of one process, "
                          "both pinned to one CPU, passing a token (pipe, futex, eventfd), each "
                          f"touching a working set per switch; in the server, process vs {other} "
                          "(CPU per request at each K)",
        "metric": "ns per switch (median over rounds, min–max); CPU µs per request",
        "verdict": f"microbenchmark: {micro}. In the server (CPU µs per request, process vs "
                   f"{other}): {text}.",
        "status": status,
        "evidence": "; ".join(evidence) or "no microbenchmark numbers",
        "table": k_table(data, wl, "cpu_us_per_req", modes, 1),
        "table_unit": "CPU µs per static-1k request",
        "chart": data.charts.get("claim-switch"),
        "explain": "A switch between processes changes the address space (page tables; with "
                   "PCID the TLB need not be flushed whole); between threads it doesn't. The "
                   "working set shows how much of the cost is the caches the other side evicts, "
                   "which both kinds pay. In the server the switch is only part of a request.",
    }


def claim_sync(data):
    modes = data.modes()
    other = pair_mode(data)
    extra = {m: extra_cpu(data, m) for m in modes}
    text, rows, status = per_k(data.ks(), extra.get(other, {}), extra.get("process", {}), ">",
                               other, "process", "needs the shared and static-1k workloads")
    series = []
    for m in modes:
        pts = [(k, spread(v)["median"], spread(v)["min"], spread(v)["max"])
               for k, v in sorted(extra[m].items()) if spread(v)]
        series.append((m, pts))
    draw(data, "claim-sync", "Threads need synchronisation, which slows them? (/-/work/shared?ops=10000)",
         [panel("CPU µs per request: shared minus static-1k (the lock and the cache)", "µs", series),
          panel("req/s on shared", "req/s", line_series(data, "shared", "rps", modes)),
          panel("involuntary context switches per shared request", "switches",
                line_series(data, "shared", "ctx_invol_per_req", modes)),
          panel("voluntary context switches per shared request", "switches",
                line_series(data, "shared", "ctx_vol_per_req", modes))])
    noise = rounds_note(list(extra.get("process", {}).values()))
    table_rows = []
    for k in data.ks():
        table_rows.append([str(k)] + [rng(extra[m].get(k), 1) for m in modes])
    return {
        "claim": "threads need synchronisation, which slows them",
        "configurations": f"{other} (K threads sharing one cache under a lock) vs process (K "
                          "copies, one thread each: never contended)"
                          + ("; thread (pool) for reference" if other != "thread" else ""),
        "metric": "CPU µs per request on shared?ops=10000 minus on static-1k, paired by round on "
                  "the same server (what the shared work costs, hand-off excluded)",
        "verdict": text + noise,
        "status": status,
        "evidence": k_evidence(rows, other, "process", 1, " µs"),
        "table": md_table(["K"] + modes, table_rows),
        "table_unit": "extra CPU µs per request on shared",
        "chart": data.charts.get("claim-sync"),
        "explain": "Each of the 10,000 operations takes the worker's lock, in every mode; only "
                   "threads of one worker can contend for it. With the server pinned to one core, "
                   "two threads never run at once: contention needs a thread preempted while it "
                   "holds the lock (involuntary switches show how often that can happen).",
    }


def crash_get(data, mode, fault, accept=None):
    return next((e for e in data.crash_rows if e["mode"] == mode and e["fault"] == fault
                 and (accept is None or e["accept"] == accept)), None)


def lost_text(e):
    if not e or e.get("connections") is None:
        return "–"
    spread_txt = ""
    if e["repeats"] > 1:
        spread_txt = f" [{fmt(e['lost_min'])}–{fmt(e['lost_max'])}]"
    return f"{fmt(e['lost'])}{spread_txt} of {fmt(e['connections'])}"


def died(e):
    """What the deaths column of a caught fault says, if any worker died."""
    if not e or not e.get("deaths"):
        return ""
    return (f"; yet a worker died ({'; '.join(e['deaths'])}): a slow panic report (e.g. a debug "
            "build's backtrace) can outlast the watchdog's timeout")


def crash_chart(data):
    rows = data.crash_rows
    faults = [f for f in FAULT_ORDER if any(e["fault"] == f for e in rows)]
    variants = []
    for e in rows:
        v = (e["mode"], e["accept"])
        if v not in variants:
            variants.append(v)
    k = rows[0]["k"] if rows else 4
    series = []
    for mode, accept in variants:
        pts = []
        for j, f in enumerate(faults):
            e = crash_get(data, mode, f, accept)
            if e and e.get("lost_share") is not None:
                pts.append((j, e["lost_share"], e["lost_share_min"], e["lost_share_max"]))
        series.append((f"{mode} ({accept})", pts))
    panels = [dict(title=f"keep-alive connections lost ÷ open at the fault (K = {k})",
                   ylabel="share lost", xlabel="fault", kind="bars", categories=faults,
                   series=series, hline=(1.0 / k, f"1/K = {1.0 / k:.2f}"))]
    tl = []
    for mode, accept in variants:
        res = (data.crash_trials.get((mode, accept, "abort", k)) or [None])[0]
        pts = [(t, r, None, None) for t, r, _ in (res or {}).get("timeline") or []]
        tl.append((f"{mode} ({accept})", pts))
    panels.append(dict(title="throughput around an abort (scoreboard, t = 0 at the fault)",
                       ylabel="req/s", xlabel="seconds from the fault", kind="lines", logx=0,
                       series=tl))
    draw(data, "claim-crash", "Processes isolate crashes? A thread's crash takes its whole process?",
         panels)
    # The whole timeline, one panel per fault.
    tpanels = []
    for f in faults:
        tl = []
        for mode, accept in variants:
            res = (data.crash_trials.get((mode, accept, f, k)) or [None])[0]
            tl.append((f"{mode} ({accept})",
                       [(t, r, None, None) for t, r, _ in (res or {}).get("timeline") or []]))
        tpanels.append(dict(title=f, ylabel="req/s", xlabel="seconds from the fault", kind="lines",
                            logx=0, series=tl))
    if tpanels:
        draw(data, "crash-timeline", "Throughput around each fault (first repeat)", tpanels)


def claim_isolation(data):
    rows = data.crash_rows
    if not rows:
        why = "; ".join(s["why"] for s in data.skipped if s["phase"] == "crash") or "crash phase not run"
        none = {"verdict": f"not measured ({why})", "status": "not measured", "evidence": "",
                "chart": None, "configurations": "", "table": "", "metric": ""}
        return (dict(none, claim="processes isolate crashes"),
                dict(none, claim="a thread's crash takes its whole process"))
    crash_chart(data)
    k = rows[0]["k"]
    main_accept = "reuseport" if any(e["accept"] == "reuseport" for e in rows) else "shared"
    threaded = [m for m in ("thread-loops", "thread") if any(e["mode"] == m for e in rows)]
    verdicts, evidence, status = [], [], []
    for f in ("abort", "segv"):
        p = crash_get(data, "process", f, main_accept)
        if not p:
            continue
        t_shares = [crash_get(data, m, f, main_accept) for m in threaded]
        rel = [versus([p["lost_share_min"], p["lost_share_max"]],
                      [t["lost_share_min"], t["lost_share_max"]]) for t in t_shares if t]
        near = p["lost_share"] is not None and p["lost_share"] <= 1.5 / k + 1e-9
        ok = all(r == "<" for r in rel) and rel
        status.append("h" if ok and near else ("p" if ok else "n"))
        evidence.append(f"{f}: process lost {lost_text(p)} (1/K expects "
                        f"{fmt((p.get('connections') or 0) / k, 0)}"
                        + ("; fewer, because the worker hit held few of the load's connections, "
                           "so this trial shows little" if (p["lost_share"] or 0) < 0.5 / k else "")
                        + "), " + ", ".join(f"{m} {lost_text(crash_get(data, m, f, main_accept))}"
                                            for m in threaded))
    p_shared = crash_get(data, "process", "abort", "shared") if main_accept == "reuseport" else None
    where_not = []
    if p_shared:
        where_not.append(f"with --accept shared the dead worker held more than its share: process "
                         f"lost {lost_text(p_shared)} on abort (1/K expects "
                         f"{fmt((p_shared.get('connections') or 0) / k, 0)})")
    elif main_accept == "shared":
        cpw = (crash_get(data, "process", "abort", "shared") or {}).get("spread") or []
        where_not.append("one shared listening socket (no --accept in this binary): whoever wakes "
                         "first accepts, so the workers' connections were uneven ("
                         + " / ".join(cpw) + ", the one hit in bold) and a crash costs what its "
                         "worker held")
    h = crash_get(data, "process", "hang", main_accept)
    if h:
        where_not.append(f"hang: the hung event loop stalls every connection it holds "
                         f"({fmt(h.get('stalled'))} stalled, {fmt(h.get('failed_requests'))} failed) "
                         f"until the watchdog, but only its own worker's")
    pn = crash_get(data, "process", "panic", main_accept)
    if pn:
        where_not.append(f"panic: caught (process lost {lost_text(pn)}), nothing to isolate"
                         + died(pn))
    if not status:
        v1, s1 = "not measured (needs abort or segv on process)", "not measured"
    else:
        s1 = "holds" if set(status) == {"h"} else ("partly" if "h" in status or "p" in status else "no")
        v1 = ("holds" if s1 == "holds" else "partly holds" if s1 == "partly" else "does not hold") + \
            f" at K = {k} with --accept {main_accept}: a crashed worker takes only its own " \
            "connections, threads lose them all"
        if where_not:
            v1 += ". Where it doesn't: " + "; ".join(where_not)
    reps = min(e["repeats"] for e in rows)
    noise = " One repeat: no spread." if reps == 1 else f" Spread over {reps} repeats in brackets."
    first = {
        "claim": "processes isolate crashes",
        "configurations": f"process (K = {k} workers) vs " + " and ".join(
            f"{m} (1 × {k})" for m in threaded) + f", --accept {main_accept}"
            + ("; process with --accept shared" if p_shared else ""),
        "metric": "keep-alive connections lost ÷ open at the fault, against 1/K",
        "verdict": v1 + "." + noise,
        "status": s1,
        "evidence": "; ".join(evidence),
        "chart": data.charts.get("claim-crash"),
        "explain": "An uncatchable fault (SIGABRT, SIGSEGV) ends the process it hits, with every "
                   "connection it holds. With reuseport the kernel spreads connections evenly "
                   "over the workers' sockets, so a process should lose about 1/K of them.",
    }
    ev2, st2, not2 = [], [], []
    for m in threaded:
        for f in ("abort", "segv"):
            e = crash_get(data, m, f, main_accept)
            if e and e.get("lost_share") is not None:
                ev2.append(f"{m} {f}: lost {lost_text(e)}, replacement serving after "
                           f"{fmt(e.get('recovery_ms'), 0, ' ms')}")
                st2.append(e["lost_share"] >= 0.9)
        pn = crash_get(data, m, "panic", main_accept)
        if pn:
            not2.append(f"panic on {m}: lost {lost_text(pn)} (Rust catches the panic; the thread "
                        "and its process live on)" + died(pn))
        hg = crash_get(data, m, "hang", main_accept)
        if hg:
            not2.append(f"hang on {m}: {fmt(hg.get('stalled'))} stalled, "
                        f"{fmt(hg.get('failed_requests'))} failed (one thread stops, not the process)")
    if not st2:
        v2, s2 = "not measured", "not measured"
    else:
        s2 = "holds" if all(st2) else ("partly" if any(st2) else "no")
        v2 = ("holds" if all(st2) else "partly holds" if any(st2) else "does not hold") + \
            " for uncatchable faults (abort, segv): the whole worker goes, with every thread's " \
            "connections"
        if not2:
            v2 += ". Where it doesn't: " + "; ".join(not2)
    second = {
        "claim": "a thread's crash takes its whole process",
        "configurations": " and ".join(f"{m} (1 × {k})" for m in threaded) + f", --accept {main_accept}",
        "metric": "connections lost ÷ open at the fault; time until a replacement serves",
        "verdict": v2 + "." + noise,
        "status": s2,
        "evidence": "; ".join(ev2),
        "chart": data.charts.get("claim-crash"),
        "explain": "A signal that kills a thread kills its process: threads share one address "
                   "space and one fate. A panic is not such a fault in Rust: it unwinds the one "
                   "request, and forkpool answers it with a 500.",
    }
    return first, second


# --- the other charts ------------------------------------------------------------------

def phase_charts(data):
    modes = data.modes()
    if data.sweep_rows:
        wl = "static-1k"
        draw(data, "sweep", f"K sweep, {wl}, closed loop (median, min–max over rounds)", [
            panel("req/s", "req/s", line_series(data, wl, "rps", modes), logy=True),
            panel("CPU µs per request", "µs", line_series(data, wl, "cpu_us_per_req", modes), logy=True),
            panel("voluntary context switches per request", "switches",
                  line_series(data, wl, "ctx_vol_per_req", modes)),
            panel("involuntary context switches per request", "switches",
                  line_series(data, wl, "ctx_invol_per_req", modes)),
            panel("fairness over workers or loops (Jain's index)", "index",
                  line_series(data, wl, "fairness", modes)),
            panel("p99 latency (closed loop, ms)", "ms", line_series(data, wl, "p99_ms", modes),
                  logy=True)])
    if data.conc_rows:
        cm = data.modes("concurrency")
        k = data.conc_rows[0]["k"]

        def cs(metric):
            return [(m, [(e["connections"], e[metric], e[metric + "_min"], e[metric + "_max"])
                         for e in data.conc_rows if e["mode"] == m and e[metric] is not None])
                    for m in cm]
        draw(data, "concurrency", f"Concurrency sweep at K = {k}, static-1k, closed loop", [
            panel("req/s against connections", "req/s", cs("rps"), xlabel="connections"),
            panel("p99 latency against connections (ms)", "ms", cs("p99_ms"), xlabel="connections",
                  logy=True)])
    if data.lat_rows:
        lm = data.modes("latency")
        k = data.lat_rows[0]["k"]

        def ls(metric):
            return [(m, [(e["fraction"] * 100, e[metric], e[metric + "_min"], e[metric + "_max"])
                         for e in data.lat_rows if e["mode"] == m and e[metric] is not None])
                    for m in lm]
        draw(data, "latency", f"Open loop at K = {k} (oha -q, --latency-correction), static-1k", [
            panel("p50 (ms)", "ms", ls("p50_ms"), xlabel="offered load, % of the measured maximum",
                  logx=0, logy=True),
            panel("p99 (ms)", "ms", ls("p99_ms"), xlabel="offered load, % of the measured maximum",
                  logx=0, logy=True),
            panel("p99.9 (ms)", "ms", ls("p999_ms"), xlabel="offered load, % of the measured maximum",
                  logx=0, logy=True),
            panel("max (ms)", "ms", ls("max_ms"), xlabel="offered load, % of the measured maximum",
                  logx=0, logy=True)])


# --- report.md ------------------------------------------------------------------------

def cpu_count(cpus, nproc):
    """How many CPUs a taskset list ("1", "0-2,5") names; all without one."""
    if cpus in (None, ""):
        return nproc or "all"
    n = 0
    for part in str(cpus).split(","):
        lo, _, hi = part.partition("-")
        n += int(hi or lo) - int(lo) + 1
    return n


def img(name):
    return f"![{name}]({name}.png)" if name else ""


def report(data, claims, switch_rows):
    m = data.meta
    modes = data.modes()
    skipped = data.skipped
    lines = [
        "# forkpool lab: processes versus threads, claim by claim", "",
        f"- run: `{m.get('command')}` ({m.get('profile')} profile), {m.get('started')}, "
        f"forkpool {m.get('git')}, binary `{m.get('binary')}`",
        f"- machine: {m.get('nproc')} CPUs ({m.get('cpu_model')}), Linux {m.get('kernel')}",
        f"- **pinning**: the server (master and workers) on CPU {m.get('server_cpus') or 'any (not pinned)'}; "
        f"the load generator (wrk, oha, the crash client) and the `/-/status` reader on CPU "
        f"{m.get('load_cpus') or 'any (not pinned)'} (`taskset -c`). K workers or threads "
        f"share the server's {cpu_count(m.get('server_cpus'), m.get('nproc'))} core(s), so a "
        "parallel speed-up can't show beyond that.",
        f"- tools: {m.get('wrk_version') or 'wrk ?'}; {m.get('oha_version') or 'no oha'}; "
        f"{m.get('gnuplot_version') or 'gnuplot ?'}",
        "- method: one server at a time (so PSS shares no pages across servers), a fresh one per "
        "round and configuration, rounds interleaved (every configuration once per round); "
        "numbers are medians with the min–max over rounds in brackets. A difference is called only "
        "where the ranges don't overlap and the medians differ by 5 % or more.",
        "",
        "Configurations:", "",
    ]
    for c in CONFIG_ORDER:
        if c in modes or any(e["mode"] == c for e in data.crash_rows):
            lines.append(f"- `{c}`: {CONFIG_DESC[c]}")
    lines.append("")
    if skipped:
        lines += ["Not run:", ""] + [f"- {s['what']} ({s['phase']}): {s['why']}" for s in skipped] + [""]
    if data.problems or data.warnings:
        lines += ["## Problems", ""] + [f"- ✗ {p}" for p in data.problems] + \
            [f"- ⚠ {w}" for w in data.warnings] + [""]
    lines += ["## The claims", "",
              md_table(["claim (the seed's words)", "configurations", "verdict", "chart"],
                       [[c["claim"], c["configurations"], c["verdict"],
                         f"[{c['chart']}]({c['chart']})" if c.get("chart") else "–"] for c in claims],
                       "llll"), ""]
    for c in claims:
        lines += [f"### {c['claim'][0].upper()}{c['claim'][1:]}", "",
                  f"- configurations: {c['configurations']}",
                  f"- measured: {c.get('metric', '')}",
                  f"- **verdict: {c['verdict']}**", ""]
        if c.get("table"):
            lines += [f"{c.get('table_unit', '')}, median [min–max] over rounds:", "", c["table"], ""]
        if c.get("evidence"):
            lines += [f"Evidence: {c['evidence']}.", ""]
        if c.get("explain"):
            lines += [c["explain"], ""]
        if c.get("chart"):
            lines += [img(c["chart"][:-4]), ""]
    lines += sweep_section(data, modes)
    lines += conc_section(data)
    lines += latency_section(data)
    lines += switch_section(data, switch_rows)
    lines += crash_section(data)
    lines += ["Raw outputs (every tool's output, server logs, crash trials) are in `raw/`; "
              "`results.json` has every number above, and `charts/` the data and gnuplot script "
              "of each chart.", ""]
    with open(os.path.join(data.out, "report.md"), "w") as f:
        f.write("\n".join(lines))


def sweep_section(data, modes):
    if not data.sweep_rows:
        return []
    p = data.sweep_rows[0]
    lines = ["## 1. The K sweep", "",
             f"Closed loop (wrk, {p['connections']} connections), {p['rounds']} round(s) per "
             "configuration and K. CPU and context switches are `/-/status` differences across the "
             "run, over every thread of every worker; PSS, USS and RSS are read after the run. "
             "Fairness is Jain's index over the workers (or a worker's loops), from the "
             "connections each accepted where `/-/status` counts them, else from requests served "
             "(the source column says which); a thread pool has one accepting loop, so none.", "",
             img(data.charts.get("sweep", "")[:-4]) if data.charts.get("sweep") else "", ""]
    for wl in sorted({e["workload"] for e in data.sweep_rows}):
        rows = []
        for mode in modes:
            for k in data.ks():
                v = data.sweep_vals.get((wl, mode, k))
                if not v:
                    continue
                e = next(x for x in data.sweep_rows if x["workload"] == wl and x["mode"] == mode
                         and x["k"] == k)
                rows.append([mode, str(k), rng(v["rps"], 0), rng(v["cpu_us_per_req"], 1),
                             rng(v["ctx_vol_per_req"], 2), rng(v["ctx_invol_per_req"], 2),
                             rng(v["pss_kib"], 1, "", 1 / 1024), rng(v["pss_per_unit_kib"], 0),
                             rng(v["uss_kib"], 1, "", 1 / 1024), rng(v["fairness"], 3),
                             e.get("fairness_source") or "–", fmt(e["errors"])])
        lines += [f"### {wl}", "",
                  md_table(["config", "K", "req/s", "CPU µs/req", "vol. switches/req",
                            "invol. switches/req", "PSS MiB", "PSS/unit KiB", "USS MiB",
                            "fairness", "fairness from", "errors"], rows, "lrrrrrrrrrll"), ""]
    return lines


def conc_section(data):
    if not data.conc_rows:
        return []
    e0 = data.conc_rows[0]
    rows = [[e["mode"], str(e["connections"]),
             rng(data.conc_vals[(e["mode"], e["connections"], "rps")], 0),
             rng(data.conc_vals[(e["mode"], e["connections"], "p50_ms")], 2),
             rng(data.conc_vals[(e["mode"], e["connections"], "p99_ms")], 2), fmt(e["errors"])]
            for e in data.conc_rows]
    return ["## 2. Concurrency sweep", "",
            f"K = {e0['k']}, static-1k, closed loop (wrk), {e0['rounds']} round(s). Closed-loop "
            "latency under-reports the tail (coordinated omission): see the open loop below.", "",
            img("concurrency") if data.charts.get("concurrency") else "", "",
            md_table(["config", "connections", "req/s", "p50 ms", "p99 ms", "errors"], rows,
                     "lrrrrr"), ""]


def latency_section(data):
    if not data.lat_rows:
        why = "; ".join(s["why"] for s in data.skipped if s["phase"] == "latency")
        return ["## 3. Open-loop latency", "", f"Not measured: {why or 'phase not run'}.", ""]
    e0 = data.lat_rows[0]
    rows = []
    for e in data.lat_rows:
        lv = data.lat_vals
        rows.append([e["mode"], fmt(e["max_rps"], 0), f"{int(e['fraction'] * 100)} %", fmt(e["rate"], 0),
                     fmt(e["achieved_rps"], 0), rng(lv[(e["mode"], e["fraction"], "p50_ms")], 2),
                     rng(lv[(e["mode"], e["fraction"], "p99_ms")], 2),
                     rng(lv[(e["mode"], e["fraction"], "p999_ms")], 2),
                     rng(lv[(e["mode"], e["fraction"], "max_ms")], 1), fmt(e["errors"])])
    return ["## 3. Open-loop latency", "",
            f"K = {e0['k']}, static-1k, {e0['connections']} connections. Each configuration's "
            "maximum is measured first on the same server (oha, closed loop: on one load core "
            "oha itself may be the limit); then oha offers a "
            "fixed rate (`-q RATE --latency-correction`: latency counted from when each request "
            "was due, so a stall is charged to every request it delayed).", "",
            img("latency") if data.charts.get("latency") else "", "",
            md_table(["config", "maximum req/s", "load", "offered req/s", "completed req/s",
                      "p50 ms", "p99 ms", "p99.9 ms", "max ms", "errors"], rows, "lrrrrrrrrr"), ""]


def switch_section(data, switch_rows):
    if not switch_rows:
        why = "; ".join(s["why"] for s in data.skipped if s["phase"] == "switch")
        return ["## 4. Switch cost", "", f"Not measured: {why or 'phase not run'}.", ""]
    doc = data.switch_doc or {}
    rows = [[r["mechanism"], f"{r['working_set_kib']} KiB", r["kind"],
             f"{fmt(r['ns'], 0)} [{fmt(r.get('ns_min'), 0)}–{fmt(r.get('ns_max'), 0)}]",
             fmt(r.get("ns_raw"), 0)]
            for r in sorted(switch_rows, key=lambda r: (r["mechanism"], r["working_set_kib"], r["kind"]))]
    return ["## 4. Switch cost (examples/switch_cost)", "",
            f"`{doc.get('command')}` ({doc.get('profile')} build), both sides pinned to CPU "
            f"{doc.get('cpu')}, {doc.get('rounds')} rounds. ns = per switch, net of touching the "
            "working set without switching; raw includes it.", "",
            md_table(["mechanism", "working set", "kind", "ns [min–max]", "raw ns"], rows, "llllr"), ""]


def crash_section(data):
    if not data.crash_rows:
        why = "; ".join(s["why"] for s in data.skipped if s["phase"] == "crash")
        return ["## 5. Crashes", "", f"Not measured: {why or 'phase not run'}.", ""]
    rows = []
    for e in data.crash_rows:
        rows.append([e["fault"], e["mode"], e["accept"], lost_text(e),
                     f"{e['expected_lost_share']:.2f}", fmt(e["failed_requests"]),
                     fmt(e["stalled"]), fmt(e["recovery_ms"], 0, " ms"),
                     fmt(e["service_lost_s"], 2, " s"),
                     " / ".join(e["spread"]) or "–",
                     "; ".join(e["deaths"]) or "none", "; ".join(e["fault_request"])])
    k = data.crash_rows[0]["k"]
    return ["## 5. Crashes on a balanced accept", "",
            f"K = {k}; load: {16} keep-alive connections looping `GET /-/work/cpu?ms=1` at 500 "
            "req/s in all (scripts/lib/crash_trial.py), a fresh server per trial, the fault sent "
            "(POST, or GET to a server that answers POST with 405) once every worker is 5.5 s old; "
            "`[supervisor] timeout = \"2s\"`, `max_rss = \"64MiB\"` for leak. *lost*: keep-alive "
            "connections that died with a failure, of those open at the fault; *expected*: the "
            "share a crash should cost (1/K for processes, all for one process); *recovery*: the "
            "first response from a replacement worker; *service lost*: the missing throughput, "
            "in seconds of full service.", "",
            img("crash-timeline") if data.charts.get("crash-timeline") else "", "",
            md_table(["fault", "config", "accept", "lost of open", "expected share", "failed requests",
                      "stalled", "recovery", "service lost", "connections per worker",
                      "deaths", "fault request"], rows, "lllrrrrrrlll"), ""]


def main(argv):
    strict = "--strict" in argv
    args = [a for a in argv if a != "--strict"]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    data = Data(args[0])
    data.strict = strict
    data.sweep()
    data.concurrency()
    data.latency()
    switch_rows = data.switch()
    data.crash()
    phase_charts(data)
    c1, c2 = claim_isolation(data)
    claims = [c1, c2, claim_switch(data, switch_rows), claim_memory(data), claim_sync(data)]
    report(data, claims, switch_rows)
    write_json(os.path.join(data.out, "results.json"), {
        "meta": data.meta,
        "sweep": data.sweep_rows,
        "concurrency": data.conc_rows,
        "latency": data.lat_rows,
        "switch_cost": switch_rows,
        "crash": data.crash_rows,
        "claims": [{k: v for k, v in c.items() if k != "table"} for c in claims],
        "skipped": data.skipped,
        "problems": data.problems,
        "warnings": data.warnings,
    })
    for name in ["report.md", "results.json"] + list(data.charts.values()):
        path = os.path.join(data.out, name)
        if not os.path.exists(path) or os.path.getsize(path) == 0:
            data.problems.append(f"{name} is missing or empty")
    print()
    for c in claims:
        print(f"{c['claim']}: {c['status']}\n    {c['verdict']}")
    for w in data.warnings:
        print(f"lab.sh: warning: {w}", file=sys.stderr)
    for p in data.problems:
        print(f"lab.sh: FAILED: {p}", file=sys.stderr)
    print(f"\nlab.sh: wrote {data.out}/report.md, results.json, "
          + ", ".join(sorted(data.charts.values())))
    return 1 if data.problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
