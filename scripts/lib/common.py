"""Helpers shared by scripts/compare.sh, scripts/crash-compare.sh and
scripts/lab.sh.

What is here: HTTP/1.1 GETs with a hard overall deadline, on a fresh
connection (http_get) or a kept-alive one (Conn, StatusClient: the
scoreboard, /-/status, which a hung worker may accept and never answer),
parsers for wrk's and oha's output, medians, spreads (median, min, max),
Jain's fairness index, ratios, Markdown tables and running gnuplot. Python
standard library only.

What is not here: starting or stopping servers (the bash scripts and
lab_run.py do that) and
anything that decides what a result means (the *_report.py files do).
"""

import json
import math
import os
import re
import select
import shutil
import socket
import statistics
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))


# --- HTTP --------------------------------------------------------------------

class HttpError(Exception):
    """A request that did not produce a complete response in time."""


def http_get(host, port, path, timeout=0.5):
    """GET path on a fresh connection; returns (status, headers, body bytes).

    `timeout` bounds the WHOLE exchange (connect, send, every read), not each
    socket call, so a server that trickles bytes can't stretch it. Raises
    HttpError (or OSError) on anything short of a complete response.
    """
    deadline = time.monotonic() + timeout
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                     "Connection: close\r\n\r\n".encode())
        data = b""
        head_end = -1
        length = None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise HttpError(f"GET {path}: no complete response within {timeout}s")
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except socket.timeout as exc:
                raise HttpError(f"GET {path}: timed out after {timeout}s") from exc
            if not chunk:
                break
            data += chunk
            if head_end < 0:
                head_end = data.find(b"\r\n\r\n")
                if head_end >= 0:
                    m = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", data[:head_end])
                    length = int(m.group(1)) if m else None
            if head_end >= 0 and length is not None and len(data) - head_end - 4 >= length:
                break
    if head_end < 0:
        raise HttpError(f"GET {path}: connection closed before a response head")
    lines = data[:head_end].decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    if not m:
        raise HttpError(f"GET {path}: bad status line {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = data[head_end + 4:]
    if length is not None:
        if len(body) < length:
            raise HttpError(f"GET {path}: body cut short ({len(body)} of {length} bytes)")
        body = body[:length]
    return int(m.group(1)), headers, body


class Conn:
    """One keep-alive connection to 127.0.0.1: send a request, read one
    response (Content-Length framing only, which is all forkpool sends)."""

    def __init__(self, port, timeout, host="127.0.0.1"):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.used = 0

    def request(self, req, deadline):
        """Sends `req` (bytes); returns (status, close?, body) by `deadline`
        (time.monotonic()). Raises OSError, EOFError or HttpError."""
        self.sock.sendall(req)
        return self.response(deadline)

    def response(self, deadline):
        """Reads one response by `deadline`. A timeout leaves what arrived
        in the buffer, so a later call can finish reading the same response."""
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            self._more(deadline)
        head = self.buf[:end].decode("latin-1")
        self.buf = self.buf[end + 4:]
        m = re.match(r"HTTP/1\.[01] (\d{3})", head)
        if not m:
            raise HttpError(f"bad status line {head[:40]!r}")
        length = re.search(r"(?im)^content-length:\s*(\d+)\s*$", head)
        if not length:
            raise HttpError("response without Content-Length")
        n = int(length.group(1))
        while len(self.buf) < n:
            self._more(deadline)
        body, self.buf = self.buf[:n], self.buf[n:]
        close = re.search(r"(?im)^connection:\s*close\s*$", head) is not None
        self.used += 1
        return int(m.group(1)), close, body

    def _more(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("request deadline")
        self.sock.settimeout(left)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed by the server")
        self.buf += chunk

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class StatusClient:
    """GET /-/status on ONE keep-alive connection, each call with a hard
    deadline.

    Why keep-alive: in thread mode a saturated worker stops accepting new
    connections until its pool's overflow queue is empty (src/worker/
    event_loop.rs, Accepting::Full), so a fresh connection per sample can
    wait in the backlog for as long as the load lasts, while a connection it
    already holds is served in turn. So a late answer does not cost the
    connection: the next call first reads (and drops) the answer still owed,
    then asks again. Only after `max_misses` calls in a row without an
    answer, or an error, or "Connection: close", is the connection replaced
    by a fresh one: a hung event loop (process mode + hang) never answers
    the connections it holds, and a new one will likely land on another
    worker."""

    def __init__(self, port, timeout=0.5, host="127.0.0.1", max_misses=3):
        self.port, self.timeout, self.host, self.max_misses = port, timeout, host, max_misses
        self.conn = None
        self.owed = False   # a request was sent whose answer was not read yet
        self.misses = 0
        self.req = f"GET /-/status HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
        self.reconnects = 0

    def get(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            if self.conn is not None and self.owed and self.misses >= self.max_misses:
                self.close()
            if self.conn is None:
                self.conn = Conn(self.port, timeout or self.timeout, self.host)
                self.reconnects += 1
            if self.owed:
                self.conn.response(deadline)  # the late answer to an earlier call
                self.owed = False
            self.conn.sock.sendall(self.req)
            self.owed = True
            status, close, body = self.conn.response(deadline)
            self.owed = False
            self.misses = 0
        except (socket.timeout, TimeoutError) as exc:
            self.misses += 1
            raise HttpError(f"/-/status: timed out ({self.misses} in a row)") from exc
        except (OSError, EOFError, HttpError) as exc:
            self.close()
            raise HttpError(f"/-/status: {type(exc).__name__}: {exc}") from exc
        if close:
            self.close()
        if status != 200:
            raise HttpError(f"/-/status answered {status}: {body[:200]!r}")
        doc = json.loads(body)
        doc["t_ms"] = time.time() * 1000.0
        return doc

    def idle(self, seconds):
        """Waits `seconds` between calls, watching the idle connection: if
        the server closes it (its worker died or is draining), a fresh one
        is opened AT ONCE, so it queues in the listen backlog together with
        the load's reconnections and is accepted with them by the
        replacement, rather than after it (see the class comment)."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            if self.conn is None or self.owed:
                time.sleep(min(left, 0.05))
                continue
            try:
                readable, _, _ = select.select([self.conn.sock], [], [], left)
                if readable and not self.conn.sock.recv(65536, socket.MSG_PEEK):
                    raise EOFError("closed while idle")
            except (OSError, EOFError, ValueError):
                self.close()
                try:
                    self.conn = Conn(self.port, 0.5, self.host)
                    self.reconnects += 1
                except OSError:
                    pass
            else:
                if readable:  # unexpected bytes: leave them to the next call
                    time.sleep(min(left, 0.05))

    def close(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = None
        self.owed = False
        self.misses = 0


# --- load tool output --------------------------------------------------------

def _ms(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def parse_wrk(text):
    """wrk's summary (run with --latency; tabs.lua's done() adds its own
    block, which is ignored). Returns a dict or raises ValueError."""
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError("no 'N requests in T' line in wrk output")
    requests = int(m.group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    socket_errors = sum(int(n) for n in sock.groups()) if sock else 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    non2xx = int(non2xx.group(1)) if non2xx else 0
    return {
        "requests": requests,
        "rps": rps,
        "p50_ms": _ms(p50.group(1)) if p50 else None,
        "p99_ms": _ms(p99.group(1)) if p99 else None,
        "socket_errors": socket_errors,
        "non2xx": non2xx,
        "errors": socket_errors + non2xx,
    }


def parse_oha(text):
    """oha's --output-format json (or -j) document."""
    doc = json.loads(text)
    summary = doc["summary"]
    pct = doc.get("latencyPercentiles") or {}
    codes = doc.get("statusCodeDistribution") or {}
    errors = doc.get("errorDistribution") or {}
    answered = sum(int(v) for v in codes.values())
    non2xx = sum(int(v) for k, v in codes.items() if not str(k).startswith(("2", "3")))
    # Requests still in flight when the duration ends are "aborted due to
    # deadline": cut off by the tool, not failed by the server.
    failed = sum(int(v) for k, v in errors.items() if "deadline" not in k)
    rps = summary.get("requestsPerSec") or 0.0

    def sec_to_ms(value):
        return None if value is None else value * 1000.0

    return {
        "requests": answered,
        "rps": rps,
        "p50_ms": sec_to_ms(pct.get("p50")),
        "p99_ms": sec_to_ms(pct.get("p99")),
        "p999_ms": sec_to_ms(pct.get("p99.9")),
        "max_ms": sec_to_ms(summary.get("slowest")),
        "socket_errors": failed,
        "non2xx": non2xx,
        "errors": failed + non2xx,
    }


# --- numbers -----------------------------------------------------------------

def median(values):
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return statistics.median(values) if values else None


def spread(values):
    """{"median", "min", "max", "n"} of the values that are numbers (None
    when there are none): what a verdict needs to know about the noise."""
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def jain(values):
    """Jain's fairness index of a share per worker (or thread): 1 when all are
    equal, 1/n when one has everything. None without two shares or any load."""
    values = [v for v in values if v is not None]
    total, squares = sum(values), sum(v * v for v in values)
    if len(values) < 2 or squares == 0:
        return None
    return total * total / (len(values) * squares)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt(value, digits=1, unit=""):
    """A number for a Markdown table; '–' when missing."""
    if value is None:
        return "–"
    if isinstance(value, int) or (abs(value) >= 1000 and digits <= 1):
        return f"{value:,.0f}{unit}"
    return f"{value:,.{digits}f}{unit}"


def md_table(header, rows, align=None):
    """A GitHub Markdown table; `align` is a string of l/r per column."""
    align = align or "l" + "r" * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    return "\n".join(lines)


# --- charts ------------------------------------------------------------------

def gnuplot(script, variables, cwd):
    """Runs scripts/lib/<script> with `-e name='value'` for each variable;
    raises with gnuplot's stderr if it fails or is missing."""
    exe = shutil.which("gnuplot")
    if not exe:
        raise RuntimeError("gnuplot is not installed (apt-get install -y gnuplot-nox)")
    args = [exe]
    for name, value in variables.items():
        if isinstance(value, str):
            args += ["-e", f"{name}='{value}'"]
        else:
            args += ["-e", f"{name}={value}"]
    args.append(os.path.join(HERE, script))
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"gnuplot {script} failed:\n{done.stderr}")
    return done.stderr


def write_json(path, doc):
    with open(path, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=False)
        f.write("\n")
