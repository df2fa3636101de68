#!/usr/bin/env python3
"""Turns the trials of scripts/crash-compare.sh into report.md, results.json
and timeline.svg/timeline.png (gnuplot, scripts/lib/crash.gp).

  crash_report.py OUTDIR [--strict]
  crash_report.py --pids TRIAL.json     (every worker pid a trial saw; used
                                         by crash-compare.sh to check that
                                         none outlived its master)

OUTDIR/raw/trials/FAULT.MODE.rN.json are crash_trial.py's records;
FAULT.MODE.rN.server.log the server's stderr. Times are relative to the
moment the fault request was sent (t = 0), taken from the scoreboard's own
timestamps (deaths' at_ms, workers' started_ms, the sample's now_ms) where it
has them. Per fault and mode the report gives the median over repeats.

Exit status 1 if a trial is missing or failed, or (all runs) if the load
saw no request; with --strict (the --smoke profile) also if no death or
replacement was seen after a fault, or an output is missing.
"""

import json
import os
import re
import sys
from collections import Counter

from common import fmt, gnuplot, md_table, median, parse_oha, parse_wrk, write_json

FAULT_ORDER = ["abort", "segv", "hang", "leak"]
MODE_ORDER = ["process", "thread"]
RECOVERED = 0.8  # throughput "back" at this share of the pre-fault baseline


def load(path):
    with open(path) as f:
        return json.load(f)


def all_pids(trial):
    pids = set(trial.get("pre_pids") or [])
    for s in trial.get("samples") or []:
        if s.get("ok"):
            pids.update(w["pid"] for w in s["doc"]["workers"] if w.get("pid"))
            pids.update(d["pid"] for d in s["doc"].get("deaths") or [] if d.get("pid"))
    return sorted(pids)


# --- one trial -----------------------------------------------------------------

def timeline(samples, t0):
    """[(t_s relative to t0, req/s)] from consecutive scoreboard samples:
    per-pid request counters differenced (a new pid counts from 0, a vanished
    one's last requests are lost), over the samples' own clock (now_ms)."""
    docs = sorted((s["doc"] for s in samples if s.get("ok")), key=lambda d: d["now_ms"])
    points = []
    for prev, cur in zip(docs, docs[1:]):
        dt = (cur["now_ms"] - prev["now_ms"]) / 1000.0
        if dt <= 0:
            continue
        before = {w["pid"]: w["requests"] or 0 for w in prev["workers"]}
        served = 0
        for w in cur["workers"]:
            served += max(0, (w["requests"] or 0) - before.get(w["pid"], 0))
        mid = (prev["now_ms"] + cur["now_ms"]) / 2.0
        points.append(((mid - t0) / 1000.0, served / dt, dt))
    return points


def analyse(trial, log_text):
    """The derived numbers of one trial (None where not measured)."""
    t0 = trial.get("t0_ms")
    res = {"fault": trial["fault"], "problems": list(trial.get("problems") or []),
           "injected": t0 is not None}
    if t0 is None:
        res["problems"].append("the fault was never injected")
        return res
    pre = set(trial.get("pre_pids") or [])
    samples = [s for s in trial.get("samples") or [] if s.get("ok")]
    res["samples"] = len(trial.get("samples") or [])
    res["samples_failed"] = res["samples"] - len(samples)

    # Deaths and replacements, from the scoreboard.
    deaths = {}
    for s in samples:
        for d in s["doc"].get("deaths") or []:
            if (d.get("at_ms") or 0) >= t0 - 50:
                deaths[(d["pid"], d["at_ms"])] = d
    deaths = sorted(deaths.values(), key=lambda d: d["at_ms"])
    new_workers = {}
    first_draining = None
    for s in sorted(samples, key=lambda s: s["doc"]["now_ms"]):
        for w in s["doc"]["workers"]:
            if w["pid"] not in pre and w["pid"] not in new_workers:
                new_workers[w["pid"]] = w
            if w["pid"] in pre and w["state"] == "draining" and first_draining is None:
                first_draining = s["doc"]["now_ms"]
    starts = [w["started_ms"] for w in new_workers.values() if w.get("started_ms")]
    acted = [d["at_ms"] for d in deaths] + starts + ([first_draining] if first_draining else [])
    res["deaths"] = [{"pid": d["pid"], "reason": d.get("reason"), "at_s": (d["at_ms"] - t0) / 1000.0,
                      "uptime_ms": d.get("uptime_ms"), "requests": d.get("requests")} for d in deaths]
    res["replacements"] = sorted(new_workers)
    res["detect_ms"] = min(acted) - t0 if acted else None

    # Who was hit, and how many connections it held just before the fault
    # (all connections: the load's, the sampler's and the fault's own).
    pre_doc = trial.get("pre_fault_status") or {}
    held = {w["pid"]: (w.get("connections_active") or 0) + (w.get("connections_idle") or 0)
            for w in pre_doc.get("workers") or []}
    res["connections_per_worker"] = sorted(held.values(), reverse=True)
    victims = [d["pid"] for d in deaths if d["pid"] in pre]
    if not victims and first_draining is not None:
        victims = [w["pid"] for s in samples for w in s["doc"]["workers"]
                   if w["pid"] in pre and w["state"] == "draining"][:1]
    res["victim"] = victims[0] if victims else None
    res["victim_held"] = held.get(res["victim"]) if victims else None

    # First response from a new worker: load connections, probes, scoreboard.
    served = []
    client = trial.get("client")
    if client:
        served += [t for pid, t in client["first_by_pid"].items() if int(pid) not in pre]
    served += [p["t_ms"] for p in trial.get("probes") or [] if p.get("ok") and p.get("pid") not in pre]
    for s in samples:
        if any(w["pid"] not in pre and (w["requests"] or 0) > 0 for w in s["doc"]["workers"]):
            served.append(s["doc"]["now_ms"])
            break
    served = [t for t in served if t >= t0]
    res["serve_ms"] = min(served) - t0 if served else None

    # Throughput, from the scoreboard.
    points = timeline(trial.get("samples") or [], t0)
    if trial.get("end_ms"):  # after the end the load is being stopped
        points = [p for p in points if p[0] <= (trial["end_ms"] - t0) / 1000.0]
    res["timeline"] = [(round(t, 3), round(r, 1), round(dt, 3)) for t, r, dt in points]
    base = [r for t, r, _ in points if -2.0 <= t < -0.05]
    baseline = sum(base) / len(base) if base else None
    res["baseline_rps"] = baseline
    if baseline:
        after = [(t, r, dt) for t, r, dt in points if t >= 0]
        lost = sum(max(0.0, baseline - r) * dt for _, r, dt in after) / baseline
        res["service_lost_s"] = lost
        low = [t for t, r, _ in after if r < RECOVERED * baseline]
        # "back" = the end of the last sample interval below 80 % of baseline.
        res["back_ms"] = (max(low) * 1000.0 if low else 0.0)
        res["min_rps_share"] = min((r for _, r, _ in after), default=baseline) / baseline
    else:
        res["service_lost_s"] = res["back_ms"] = res["min_rps_share"] = None

    # The load's own view.
    if client:
        fails = [f for f in client["failures"] if f["t_ms"] >= t0]
        res["pre_fault_failures"] = sum(1 for f in client["failures"] if f["t_ms"] < t0)
        res["failed"] = len(fails)
        res["failure_kinds"] = dict(Counter(f["kind"] for f in fails))
        open_ids = set(client["open_at_fault"])
        res["conns_open"] = len(open_ids)
        lost = {f["conn"] for f in fails if f["conn"] in open_ids}
        res["conns_lost"] = len(lost)
        res["stalled"] = sum(1 for s in client["stalls"] if s["t_ms"] >= t0)
        res["requests_ok"] = client["ok_total"]
        b = client["bucket_ms"]
        ok = {int(k): v for k, v in client["ok_buckets"].items()}
        first = min(ok) if ok else 0
        res["client_timeline"] = [((k * b + b / 2 - t0) / 1000.0, v * 1000.0 / b)
                                  for k, v in sorted(ok.items()) if k > first]
    elif trial.get("tool_output"):
        try:
            parsed = parse_wrk(trial["tool_output"]) if trial["tool"] == "wrk" \
                else parse_oha(trial["tool_output"])
            res["failed"] = parsed["errors"]
            res["requests_ok"] = parsed["requests"]
        except (ValueError, KeyError) as exc:
            res["problems"].append(f"could not read the {trial['tool']} output: {exc}")
        res["conns_open"] = res["conns_lost"] = res["stalled"] = None
    probes = trial.get("probes") or []
    res["probes_failed"] = sum(1 for p in probes if not p["ok"] and p["t_ms"] >= t0)
    res["probes"] = sum(1 for p in probes if p["t_ms"] >= t0)
    res["probes_failed_before"] = sum(1 for p in probes if not p["ok"] and p["t_ms"] < t0)
    res["probes_before"] = sum(1 for p in probes if p["t_ms"] < t0)
    fr = trial.get("fault_request") or {}
    res["fault_request"] = fr.get("outcome", "still open at the end")
    res["log_deaths"] = re.findall(r"^.*(?:exited with code|killed by).*$", log_text, re.M)
    return res


# --- aggregation, claims, outputs -----------------------------------------------

def cell(results):
    """Median over repeats of the numeric fields; lists of the rest."""
    keys = ["failed", "conns_open", "conns_lost", "stalled", "detect_ms", "serve_ms", "back_ms",
            "service_lost_s", "baseline_rps", "min_rps_share", "probes_failed", "requests_ok"]
    out = {k: median([r.get(k) for r in results]) for k in keys}
    out["repeats"] = len(results)
    kinds = Counter()
    for r in results:
        kinds.update(r.get("failure_kinds") or {})
    out["failure_kinds"] = dict(kinds)
    out["fault_request"] = sorted({r["fault_request"] for r in results if r.get("fault_request")})
    out["death_reasons"] = sorted({str(d["reason"]) for r in results for d in r.get("deaths") or []})
    # Per repeat: the connections of the worker hit, then the others'.
    out["spread"] = []
    for r in results:
        counts = list(r.get("connections_per_worker") or [])
        if r.get("victim_held") is not None and r["victim_held"] in counts:
            counts.remove(r["victim_held"])
            out["spread"].append(":".join([f"**{r['victim_held']}**"] + [str(c) for c in counts]))
        elif counts:
            out["spread"].append(":".join(str(c) for c in counts))
    return out


def share(c):
    if c.get("conns_open") in (None, 0) or c.get("conns_lost") is None:
        return None
    return c["conns_lost"] / c["conns_open"]


def claims(cells, k):
    def get(fault, mode):
        return cells.get(fault, {}).get(mode, {})

    rows = []
    crash = [f for f in ("abort", "segv") if f in cells]
    p_share = median([share(get(f, "process")) for f in crash])
    t_share = median([share(get(f, "thread")) for f in crash])
    if p_share is None or t_share is None:
        v1 = "not measured"
    elif p_share < t_share - 0.1:
        v1 = "**agrees**"
    elif p_share > t_share + 0.1:
        v1 = "**disagrees**"
    else:
        v1 = "no clear difference"
    spreads = [sp for f in crash for sp in get(f, "process").get("spread", [])]
    rows.append([
        "Processes isolate: a crash takes down only its own process's connections",
        "connections lost ÷ open on abort/segv",
        fmt(p_share, 2), fmt(t_share, 2),
        f"a process loses the connections of the dead worker: 1/{k} = {1 / k:.2f} if the kernel "
        "spread them evenly, but forkpool's workers share one listening socket and whichever "
        "wakes first accepts, so the spread is uneven (per worker, the one hit in bold: "
        f"{', '.join(spreads) or 'n/a'}); one threaded worker loses them all",
        v1])
    v2 = "not measured" if t_share is None else ("**agrees**" if t_share >= 0.9 else "**disagrees**")
    rows.append([
        "A crashing thread kills the whole process, with every connection of every thread",
        "connections lost ÷ open, thread mode, abort/segv",
        "–", fmt(t_share, 2), "one uncatchable fault in any pool thread ends the worker", v2])
    p_lost = median([get(f, "process").get("service_lost_s") for f in crash])
    t_lost = median([get(f, "thread").get("service_lost_s") for f in crash])
    if p_lost is None or t_lost is None:
        v3 = "not measured"
    elif max(p_lost, t_lost) < 0.1:
        v3 = "no clear difference (both under 0.1 s)"
    else:
        v3 = "**agrees**" if p_lost < t_lost * 0.9 else (
            "**disagrees**" if p_lost > t_lost * 1.1 else "no clear difference")
    rows.append([
        "Isolation keeps the service up: the surviving processes keep serving while one restarts",
        "service lost on abort/segv (s of full throughput)",
        fmt(p_lost, 2, " s"), fmt(t_lost, 2, " s"),
        "throughput below the pre-fault baseline, integrated from the fault until the end", v3])
    hp, ht = get("hang", "process"), get("hang", "thread")
    if hp and ht:
        p_hit = (hp.get("stalled") or 0) + (hp.get("failed") or 0)
        t_hit = (ht.get("stalled") or 0) + (ht.get("failed") or 0)
        v4 = "**agrees**" if p_hit > t_hit else ("no clear difference" if p_hit == t_hit else "**disagrees**")
        detail = (f"process: {fmt(hp.get('stalled'))} stalled, {fmt(hp.get('failed'))} failed, "
                  f"service lost {fmt(hp.get('service_lost_s'), 2, ' s')}; thread: "
                  f"{fmt(ht.get('stalled'))} stalled, {fmt(ht.get('failed'))} failed, service lost "
                  f"{fmt(ht.get('service_lost_s'), 2, ' s')}")
    else:
        v4, detail, p_hit, t_hit = "not measured", "needs the hang fault", None, None
    rows.append([
        "A hung request stalls every connection of an event loop, but only one thread of a pool",
        "stalled (> 1 s) + failed load requests on hang", fmt(p_hit), fmt(t_hit), detail, v4])
    lp, lt = get("leak", "process"), get("leak", "thread")
    if lp and lt and lp.get("failed") is not None and lt.get("failed") is not None:
        v5 = "**agrees**" if lp["failed"] == 0 and lt["failed"] == 0 else "**disagrees**"
        detail = "a replacement starts first, then the old worker drains"
    else:
        v5, detail = "not measured", "needs the leak fault"
    rows.append([
        "Recycling a worker over its memory limit loses no request (either architecture)",
        "failed load requests on leak with max_rss", fmt(lp.get("failed") if lp else None),
        fmt(lt.get("failed") if lt else None), detail, v5])
    return rows


def write_timeline_data(out, trials):
    """tl-FAULT-MODE.dat (scoreboard req/s) and tl-FAULT-MODE.marks (the
    first response of a replacement), from each fault and mode's first repeat."""
    faults = []
    for (fault, mode, rep), res in sorted(trials.items()):
        if rep != 1 or not res.get("timeline"):
            continue
        if fault not in faults:
            faults.append(fault)
        with open(os.path.join(out, f"tl-{fault}-{mode}.dat"), "w") as f:
            f.write("# t_s req_s  (scoreboard, t = 0 at the fault; a blank line = a gap in\n"
                    "# the samples, drawn as one flat segment: the average over the gap)\n")
            for t, r, dt in res["timeline"]:
                if dt > 0.35:
                    f.write(f"\n{t - dt / 2:.3f} {r:.1f}\n{t + dt / 2:.3f} {r:.1f}\n\n")
                else:
                    f.write(f"{t:.3f} {r:.1f}\n")
        with open(os.path.join(out, f"tl-{fault}-{mode}.marks"), "w") as f:
            f.write("# t_s  first response from a replacement worker\n")
            if res.get("serve_ms") is not None:
                f.write(f"{res['serve_ms'] / 1000.0:.3f} 0\n")
            else:
                f.write("NaN NaN\n")
    faults.sort(key=lambda f: FAULT_ORDER.index(f) if f in FAULT_ORDER else 99)
    return faults


def report(out, meta, cells, claim_rows, trials, problems, warnings):
    k = meta.get("k")
    lines = [
        "# forkpool: faults under load, process vs thread", "",
        f"- run: `{meta.get('command')}` ({meta.get('profile')}), {meta.get('started')}, "
        f"forkpool {meta.get('git')}",
        f"- K = {k}: `process` = `--mode process --workers {k}`; `thread` = `--mode thread "
        f"--workers 1 --threads {k}`; `[supervisor] timeout = \"{meta.get('timeout')}\"`, "
        f"`graceful_timeout = \"{meta.get('graceful_timeout')}\"`, `max_rss = \"{meta.get('max_rss')}\"`",
        f"- load: {meta.get('tool')}, {meta.get('connections')} keep-alive connections looping "
        f"`GET {meta.get('path')}`; a fresh-connection probe every 100 ms; `/-/status` every "
        f"100 ms; {meta.get('repeat')} repeat(s), a fresh server per trial, the fault sent once "
        "every worker was 5.5 s old",
        f"- machine: {meta.get('nproc')} CPUs ({meta.get('cpu_model')}), Linux {meta.get('kernel')}; "
        f"server on CPU {meta.get('server_cpus') or 'any'}, load on CPU {meta.get('load_cpus') or 'any'}",
        "",
        "t = 0 is when the fault request was sent. *detect*: the master acted (a death reaped, a "
        "replacement started or a worker set draining, by the scoreboard's timestamps). *serve*: "
        "the first response from a new worker. *back*: throughput last below "
        f"{int(RECOVERED * 100)} % of its pre-fault level (0 = it never dipped). *service lost*: the "
        "missing throughput after the fault, in seconds of full service. *lost / open*: keep-alive "
        "connections that died with a failure, of those open at the fault. *stalled*: load "
        "requests that took over 1 s. *connections per worker*: what each worker held just before "
        "the fault, the one hit first in bold (the load's, the sampler's and the fault's own "
        "connection; a worker that holds more loses more). The request that carried the fault is "
        "not counted as a "
        "failed request; its fate is in the last column. Medians over repeats.", "",
    ]
    if problems or warnings:
        lines += ["## Problems", ""] + [f"- ✗ {p}" for p in problems] + [f"- ⚠ {w}" for w in warnings] + [""]
    lines += ["## Claims against this run", "",
              md_table(["claim", "metric", "process", "thread", "measured", "verdict"], claim_rows, "llrrll"),
              "", "## Faults", "", "![timeline](timeline.svg)", ""]
    for fault in sorted(cells, key=lambda f: FAULT_ORDER.index(f)):
        lines += [f"### {fault}", ""]
        rows = []
        for mode in MODE_ORDER:
            c = cells[fault].get(mode)
            if not c:
                continue
            lost = "–" if c["conns_open"] is None else f"{fmt(c['conns_lost'])} / {fmt(c['conns_open'])}"
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(c["failure_kinds"].items())) or ""
            rows.append([
                mode, " / ".join(c["spread"]) or "–",
                fmt(c["failed"]) + (f" ({kinds})" if kinds else ""), lost, fmt(c["stalled"]),
                fmt(c["detect_ms"], 0, " ms"), fmt(c["serve_ms"], 0, " ms"), fmt(c["back_ms"], 0, " ms"),
                fmt(c["service_lost_s"], 2, " s"), fmt(c["baseline_rps"], 0),
                "; ".join(c["death_reasons"]) or "none", "; ".join(c["fault_request"]),
            ])
        lines.append(md_table(["mode", "connections per worker (hit one first)", "failed requests",
                               "lost / open", "stalled", "detect", "serve", "back",
                               "service lost", "req/s before", "deaths", "fault request"],
                              rows, "llrrrrrrrrll"))
        lines.append("")
    lines += ["Every trial's events (failures with timestamps, probes, scoreboard samples) are in "
              "`raw/trials/`, with the server's log; `results.json` has the derived numbers per "
              "trial.", ""]
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("\n".join(lines))


def main(argv):
    if argv and argv[0] == "--pids":
        if os.path.exists(argv[1]):
            print(" ".join(str(p) for p in all_pids(load(argv[1]))))
        return 0
    strict = "--strict" in argv
    args = [a for a in argv if a != "--strict"]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    out = args[0]
    raw = os.path.join(out, "raw")
    meta = load(os.path.join(raw, "meta.json"))
    problems, warnings = [], []
    expected = [(f, m, r) for r in range(1, int(meta["repeat"]) + 1)
                for f in str(meta["faults"]).split(",") for m in MODE_ORDER]
    trials = {}
    for fault, mode, rep in expected:
        path = os.path.join(raw, "trials", f"{fault}.{mode}.r{rep}.json")
        where = f"{fault} on {mode} (repeat {rep})"
        if not os.path.exists(path):
            problems.append(f"{where}: no trial record")
            continue
        log_path = os.path.join(raw, "trials", f"{fault}.{mode}.r{rep}.server.log")
        log_text = open(log_path, errors="replace").read() if os.path.exists(log_path) else ""
        res = analyse(load(path), log_text)
        res["mode"], res["repeat"] = mode, rep
        trials[(fault, mode, rep)] = res
        problems += [f"{where}: {p}" for p in res["problems"]]
        if not res["injected"]:
            continue
        if not res.get("requests_ok"):
            problems.append(f"{where}: the load completed no request")
        if res.get("pre_fault_failures"):
            warnings.append(f"{where}: {res['pre_fault_failures']} requests failed BEFORE the fault")
        if res.get("detect_ms") is None:
            (problems if strict else warnings).append(
                f"{where}: no death, replacement or drain was seen after the fault")
        if res.get("serve_ms") is None:
            (problems if strict else warnings).append(f"{where}: no replacement worker was seen serving")
        if res.get("samples") and res.get("samples_failed", 0) > res["samples"] / 2:
            warnings.append(f"{where}: {res['samples_failed']} of {res['samples']} status samples failed")
    strays = os.path.join(raw, "strays.txt")
    if os.path.exists(strays):
        problems += [f"stray process: {line.strip()}" for line in open(strays) if line.strip()]
    cells = {}
    for (fault, mode, _), _res in trials.items():
        cells.setdefault(fault, {})
    for fault in cells:
        for mode in MODE_ORDER:
            mine = [r for (f, m, _), r in trials.items() if f == fault and m == mode]
            if mine:
                cells[fault][mode] = cell(mine)
    claim_rows = claims(cells, int(meta.get("k") or 2))
    faults = write_timeline_data(out, trials)
    chart_error = None
    if faults:
        try:
            common = {"faults": " ".join(faults), "modes": " ".join(MODE_ORDER)}
            gnuplot("crash.gp", {**common, "term": "svg", "outfile": "timeline.svg"}, out)
            gnuplot("crash.gp", {**common, "term": "png", "outfile": "timeline.png"}, out)
        except (RuntimeError, OSError) as exc:
            chart_error = str(exc)
            problems.append(f"the chart failed: {exc}")
    else:
        problems.append("no trial has a throughput timeline: no chart")
    report(out, meta, cells, claim_rows, trials, problems, warnings)
    write_json(os.path.join(out, "results.json"), {
        "meta": meta,
        "cells": cells,
        "claims": [dict(zip(["claim", "metric", "process", "thread", "measured", "verdict"], r))
                   for r in claim_rows],
        "trials": [dict(r, fault=f, mode=m, repeat=n) for (f, m, n), r in sorted(trials.items())],
        "problems": problems,
        "warnings": warnings,
    })
    for name in ("report.md", "results.json", "timeline.svg", "timeline.png"):
        path = os.path.join(out, name)
        if (not os.path.exists(path) or os.path.getsize(path) == 0) and not chart_error:
            problems.append(f"{name} is missing or empty")
    print()
    print(f"{'fault':<6} {'mode':<8} {'failed':>7} {'lost/open':>10} {'stalled':>8} {'detect':>8} "
          f"{'serve':>8} {'back':>8} {'lost s':>7}")
    for fault in sorted(cells, key=lambda f: FAULT_ORDER.index(f)):
        for mode in MODE_ORDER:
            c = cells[fault].get(mode)
            if not c:
                continue
            lost = "–" if c["conns_open"] is None else f"{fmt(c['conns_lost'])}/{fmt(c['conns_open'])}"
            print(f"{fault:<6} {mode:<8} {fmt(c['failed']):>7} {lost:>10} {fmt(c['stalled']):>8} "
                  f"{fmt(c['detect_ms'], 0, 'ms'):>8} {fmt(c['serve_ms'], 0, 'ms'):>8} "
                  f"{fmt(c['back_ms'], 0, 'ms'):>8} {fmt(c['service_lost_s'], 2):>7}")
    for w in warnings:
        print(f"crash-compare.sh: warning: {w}", file=sys.stderr)
    for p in problems:
        print(f"crash-compare.sh: FAILED: {p}", file=sys.stderr)
    print(f"\ncrash-compare.sh: wrote {out}/report.md, results.json, timeline.svg, timeline.png")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
