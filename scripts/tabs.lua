-- tabs.lua: a wrk script that loads forkpool the way browser tabs do: a page,
-- its assets, and a few API calls to the workload endpoints, in a fixed mix.
--
--   scripts/tabs-site.sh /tmp/site              # once: the page and its assets
--   forkpool /tmp/site &                        # serves http://127.0.0.1:8080
--   wrk -t2 -c32 -d30s -s scripts/tabs.lua http://127.0.0.1:8080
--
-- One "tab" is the sequence built from the `tab` table below: every entry is
-- requested `weight` times per tab. The sequence is built in passes: pass 1
-- takes every entry once, in table order (page, assets, API calls); pass 2
-- every entry whose weight is >= 2 (here: the data.json poll), and so on.
-- With the weights as shipped a tab is 10 requests: 1 page, 5 assets, 4 API
-- calls.
--
-- wrk calls request() per thread, not per connection, so each thread walks
-- the sequence with one cursor shared by its connections: the mix is exact
-- (every thread sends whole tabs, in order), but one connection does not
-- replay one tab by itself. Threads start at staggered offsets so they do not
-- all ask for the same URL at once. Nothing is random: two runs, against
-- either --mode, send the same requests in the same order.
--
-- At the end, done() prints one summary: requests and req/s, the mix actually
-- sent, socket errors by kind, responses with status >= 400 (wrk's
-- "Non-2xx or 3xx"), and p50/p90/p99/max latency. The run is clean when every
-- error count is 0.
--
-- Edit the table to change the mix: keep one entry per line in this form,
-- scripts/tabs-oha.sh reads the same lines to split its connections. A line
-- commented out with `--` is skipped by both. The paths under /tab/ are the
-- files scripts/tabs-site.sh writes; the API parameters stay modest so a tab
-- costs about 2 ms of CPU and 10 ms of waiting.

local tab = {
  { kind = "page",  path = "/index.html",            weight = 1 },
  { kind = "asset", path = "/tab/app.js",            weight = 1 },
  { kind = "asset", path = "/tab/style.css",         weight = 1 },
  { kind = "asset", path = "/tab/logo.png",          weight = 1 },
  { kind = "asset", path = "/tab/data.json",         weight = 2 },
  { kind = "api",   path = "/-/work/cpu?ms=2",       weight = 1 },
  { kind = "api",   path = "/-/work/io?ms=10",       weight = 1 },
  { kind = "api",   path = "/-/work/mem?kb=256",     weight = 1 },
  { kind = "api",   path = "/-/work/shared?ops=100", weight = 1 },
}

local kinds = { "page", "asset", "api" }

-- The tab as a flat list of entries, built in passes (see the header).
local function sequence()
  local seq, pass, more = {}, 1, true
  while more do
    more = false
    for _, entry in ipairs(tab) do
      if entry.weight >= pass then
        seq[#seq + 1] = entry
        more = more or entry.weight > pass
      end
    end
    pass = pass + 1
  end
  return seq
end

-- Setup phase (wrk's main Lua state): number the threads so they can
-- stagger, and keep them to collect their counters in done().
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  threads[#threads + 1] = thread
end

-- Running phase (one Lua state per wrk thread).
local requests, names, cursor = {}, {}, 0
sent = {}

function init(args)
  for i, entry in ipairs(sequence()) do
    requests[i] = wrk.format("GET", entry.path)
    names[i] = entry.kind
  end
  for _, kind in ipairs(kinds) do sent[kind] = 0 end
  -- Stagger by a prime stride; `id` was set by setup().
  cursor = ((id or 0) * 3) % #requests
end

function request()
  cursor = cursor % #requests + 1
  local kind = names[cursor]
  sent[kind] = sent[kind] + 1
  return requests[cursor]
end

-- Done phase (main Lua state again).
function done(summary, latency, _)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  local total = { page = 0, asset = 0, api = 0 }
  local all = 0
  for _, thread in ipairs(threads) do
    local counts = thread:get("sent") or {}
    for _, kind in ipairs(kinds) do
      total[kind] = total[kind] + (counts[kind] or 0)
      all = all + (counts[kind] or 0)
    end
  end
  local per_tab = { page = 0, asset = 0, api = 0 }
  for _, entry in ipairs(sequence()) do
    per_tab[entry.kind] = per_tab[entry.kind] + 1
  end
  local function ms(us) return us / 1000 end
  local function share(kind)
    return all > 0 and 100 * total[kind] / all or 0
  end

  io.write("\n-- tabs.lua summary --\n")
  io.write(string.format("requests   %d in %.2fs, %.1f req/s, %.1f MiB read\n",
    summary.requests, seconds, summary.requests / seconds,
    summary.bytes / 1048576))
  io.write(string.format("mix sent   page %.1f%%, asset %.1f%%, api %.1f%%"
    .. "  (a tab: %d page, %d assets, %d api)\n",
    share("page"), share("asset"), share("api"),
    per_tab.page, per_tab.asset, per_tab.api))
  io.write(string.format("errors     connect %d, read %d, write %d, timeout %d\n",
    e.connect, e.read, e.write, e.timeout))
  io.write(string.format("non-2xx    %d (status >= 400)\n", e.status))
  io.write(string.format("latency    p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
    ms(latency:percentile(50)), ms(latency:percentile(90)),
    ms(latency:percentile(99)), ms(latency.max)))
  local bad = e.connect + e.read + e.write + e.timeout + e.status
  io.write(bad == 0 and "result     clean\n"
    or string.format("result     %d failed requests\n", bad))
end
