#!/usr/bin/env python3
"""Reads forkpool's scoreboard, GET /-/status, for the comparison scripts.

  status_sampler.py snapshot PORT OUT [--timeout S]
      one status document to OUT (JSON); retried for --timeout seconds
  status_sampler.py sample PORT OUT [--interval S] [--request-timeout S] [--max-seconds S]
      one line of JSON per tick to OUT until SIGTERM/SIGINT or --max-seconds:
      {"t_ms": .., "ok": true, "doc": {...}} or {"t_ms": .., "ok": false, "error": ".."}
  status_sampler.py wait-ready PORT --workers N [--min-age-ms MS] [--timeout S]
      waits until N workers are "ready" (and each is at least MS old); exit 1
      with the reason if that doesn't happen within --timeout

Requests go on one keep-alive connection, replaced by a fresh one after any
failure (common.StatusClient says why), each with a hard overall deadline: a
worker whose event loop hangs may have accepted the connection and never
answer it (process mode + the hang fault), and one stuck sample must not
stall the timeline. Ticks are fixed (start + k x interval); a late sample skips the
ticks it overran instead of bunching up. Loopback only.
"""

import argparse
import json
import signal
import sys
import time

from common import HttpError, StatusClient, write_json

stop = False


def on_signal(_sig, _frame):
    global stop
    stop = True


def fetch(port, timeout=5.0):
    """One /-/status document, retried for `timeout` seconds; raises
    HttpError with the last failure if none came."""
    deadline = time.monotonic() + timeout
    error = None
    client = StatusClient(port)
    try:
        while time.monotonic() < deadline:
            try:
                return client.get(timeout=min(2.0, timeout))
            except Exception as exc:  # noqa: BLE001 - any failure is retried, then reported
                error = exc
                time.sleep(0.05)
    finally:
        client.close()
    raise HttpError(f"no /-/status from port {port}: {error}")


def snapshot(args):
    try:
        write_json(args.out, fetch(args.port, args.timeout))
        return 0
    except HttpError as exc:
        print(f"status_sampler: {exc}", file=sys.stderr)
        return 1


def sample(args):
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    start = time.monotonic()
    end = start + args.max_seconds
    tick = 0
    client = StatusClient(args.port)
    with open(args.out, "w", buffering=1) as out:
        while not stop and time.monotonic() < end:
            t_ms = time.time() * 1000.0
            try:
                doc = client.get(timeout=args.request_timeout)
                line = {"t_ms": t_ms, "ok": True, "doc": doc}
            except Exception as exc:  # noqa: BLE001 - a failed sample is data
                line = {"t_ms": t_ms, "ok": False, "error": f"{type(exc).__name__}: {exc}"}
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
            tick = max(tick + 1, int((time.monotonic() - start) / args.interval) + 1)
            delay = start + tick * args.interval - time.monotonic()
            while delay > 0 and not stop:
                client.idle(min(delay, 0.05))
                delay = start + tick * args.interval - time.monotonic()
    return 0


def ready(port, workers, min_age_ms=0, timeout=10.0):
    """Waits until `workers` workers are "ready" (each at least `min_age_ms`
    old); returns None, or why not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    why = "no answer yet"
    client = StatusClient(port)
    try:
        while time.monotonic() < deadline:
            try:
                doc = client.get(timeout=1.0)
                live = [w for w in doc.get("workers") or [] if w.get("state") == "ready"]
                young = [w for w in live if (w.get("uptime_ms") or 0) < min_age_ms]
                if len(live) >= workers and not young:
                    return None
                why = (f"{len(live)} of {workers} workers ready"
                       + (f", {len(young)} younger than {min_age_ms} ms" if young else ""))
            except Exception as exc:  # noqa: BLE001 - retried until the deadline
                why = f"{type(exc).__name__}: {exc}"
            time.sleep(0.1)
    finally:
        client.close()
    return f"port {port} not ready within {timeout}s: {why}"


def wait_ready(args):
    why = ready(args.port, args.workers, args.min_age_ms, args.timeout)
    if why:
        print(f"status_sampler: {why}", file=sys.stderr)
        return 1
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("snapshot")
    p.add_argument("port", type=int)
    p.add_argument("out")
    p.add_argument("--timeout", type=float, default=5.0)
    p = sub.add_parser("sample")
    p.add_argument("port", type=int)
    p.add_argument("out")
    p.add_argument("--interval", type=float, default=0.1)
    p.add_argument("--request-timeout", type=float, default=0.3)
    p.add_argument("--max-seconds", type=float, default=600.0)
    p = sub.add_parser("wait-ready")
    p.add_argument("port", type=int)
    p.add_argument("--workers", type=int, required=True)
    p.add_argument("--min-age-ms", type=int, default=0)
    p.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    return {"snapshot": snapshot, "sample": sample, "wait-ready": wait_ready}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
