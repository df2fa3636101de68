//! The dashboard (`/-/`) in a real browser, against the real server.
//!
//! Headless Chromium (tests/common/browser.rs) opens the page once and
//! keeps it open; the test reads what the page's own polling drew (the
//! data- attributes of the worker cards, death rows and fault buttons)
//! through the DevTools protocol on a pipe. So a respawn must show up in
//! the *live* page, as it would for a person watching it, not merely after
//! a reload.
//!
//! Checked: one ready card per worker with the kernel's pids; after a
//! SIGKILL, the card of that index shows the replacement and the death is
//! listed; a stopped server shows as disconnected; with faults enabled the
//! buttons are there and clicking one (a same-origin POST) kills a worker
//! the page then shows replaced; a page of another origin in the same
//! browser can fire no fault, by `<img>` (a GET: 405) or by a no-cors
//! POST (its Origin: 403). Not checked: layout and the figures
//! (tests/observe.rs covers /-/status itself).
//!
//! Without Chromium the tests print "skipped" to stderr and pass, except
//! when `CI` is set: then they fail, so a CI image can't skip them silently.

mod common;

use std::time::{Duration, Instant};

use common::browser::{Browser, PAGE_DEADLINE, find_chromium};
use common::*;
use serde::Deserialize;

/// The faults the page offers when `config.faults` is true.
const FAULTS: [&str; 8] = [
    "panic",
    "abort",
    "segv",
    "exit",
    "stack-overflow",
    "hang",
    "leak?mb=64",
    "poison",
];

/// What a test reads off the live page.
#[derive(Debug, Deserialize)]
struct Page {
    /// `data-state` of the connection note: `ok`, `down` (or `init`).
    connection: String,
    /// `(index, pid, state)` of each worker card, in page order.
    cards: Vec<(u32, i32, String)>,
    /// `(index, pid)` of each row of the deaths table.
    deaths: Vec<(u32, i32)>,
    /// `data-fault` of each fault button.
    faults: Vec<String>,
    /// What the fault buttons' requests got back.
    fault_log: String,
}

/// Collects a [`Page`] in the browser (a partial page gives nulls, which
/// don't deserialize, so the read is retried).
const READ_PAGE: &str = r#"(() => {
  const all = (selector) => [...document.querySelectorAll(selector)];
  const conn = document.getElementById("conn");
  return {
    connection: conn ? conn.dataset.state : "",
    cards: all(".worker").map((c) => [Number(c.dataset.index), Number(c.dataset.pid), c.dataset.state]),
    deaths: all("tr.death").map((r) => [Number(r.dataset.index), Number(r.dataset.pid)]),
    faults: all("button[data-fault]").map((b) => b.dataset.fault),
    fault_log: (document.getElementById("fault-log") || {}).textContent || "",
  };
})()"#;

impl Page {
    /// `(index, pid)` of the cards, if the page is live and every card
    /// shows a ready worker.
    fn ready_cards(&self) -> Option<Vec<(u32, i32)>> {
        let live = self.connection == "ok";
        let ready = self.cards.iter().all(|(_, _, state)| state == "ready");
        (live && ready).then(|| self.cards.iter().map(|(i, p, _)| (*i, *p)).collect())
    }

    /// True if the page is live with ready cards 0..n for exactly `pids`.
    fn shows_workers(&self, pids: &[i32]) -> bool {
        self.ready_cards().is_some_and(|cards| {
            let mut shown: Vec<i32> = cards.iter().map(|card| card.1).collect();
            shown.sort();
            cards
                .iter()
                .enumerate()
                .all(|(n, card)| card.0 as usize == n)
                && shown == pids
        })
    }

    fn pid_at(&self, index: u32) -> i32 {
        let card = self.cards.iter().find(|card| card.0 == index);
        card.unwrap_or_else(|| panic!("no card {index}: {self:?}"))
            .1
    }
}

/// The dashboard's own reading of the page, on top of the shared browser.
trait ReadDashboard {
    /// Reads the page (which polls the server once a second) until
    /// `shows` holds; returns it. Panics after [`PAGE_DEADLINE`] with the
    /// last reading.
    fn wait_for(&mut self, what: &str, shows: impl Fn(&Page) -> bool) -> Page;
}

impl ReadDashboard for Browser {
    fn wait_for(&mut self, what: &str, shows: impl Fn(&Page) -> bool) -> Page {
        let deadline = Instant::now() + PAGE_DEADLINE;
        loop {
            let page = self
                .eval(READ_PAGE)
                .and_then(|value| serde_json::from_value::<Page>(value).map_err(|e| e.to_string()));
            let last = match page {
                Ok(page) if shows(&page) => return page,
                Ok(page) => format!("{page:?}"),
                Err(err) => err,
            };
            assert!(
                Instant::now() < deadline,
                "the dashboard never showed {what} within {PAGE_DEADLINE:?}; last: {last}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn dashboard_url(server: &Server) -> String {
    format!("http://{}/-/", server.addr)
}

every_mode!(cards_follow_the_workers_through_a_respawn, |mode| {
    let Some(chromium) = find_chromium() else {
        return;
    };
    let mut server = Server::start(mode, &[]);
    let workers = server.wait_for_workers(2);
    let mut browser = Browser::open(&chromium, &dashboard_url(&server));
    let page = browser.wait_for("a ready card per worker", |page| {
        page.shows_workers(&workers)
    });
    assert!(page.faults.is_empty(), "fault buttons without --faults");
    let (victim, survivor) = (page.pid_at(0), page.pid_at(1));

    // SAFETY: kill(2) on a worker of our own server.
    unsafe { libc::kill(victim, libc::SIGKILL) };
    let now = server.wait_for_replacement(victim, 2);
    assert!(
        now.contains(&survivor),
        "the other worker must be untouched"
    );
    let replacement = *now.iter().find(|&&pid| pid != survivor).unwrap();

    // The same page, without a reload: card 0 now shows the replacement.
    browser.wait_for("the replacement on card 0 and the death", |page| {
        page.ready_cards() == Some(vec![(0, replacement), (1, survivor)])
            && page.deaths.contains(&(0, victim))
    });

    // A server that is gone shows as disconnected; the last figures stay.
    server.signal(libc::SIGQUIT);
    server.wait_exit();
    let page = browser.wait_for("the disconnected note", |page| page.connection == "down");
    assert_eq!(page.cards.len(), 2, "{page:?}");
});

every_mode!(
    one_fault_click_kills_one_worker_and_its_card_follows,
    |mode| {
        let Some(chromium) = find_chromium() else {
            return;
        };
        let server = Server::start(mode, &["--faults"]);
        let workers = server.wait_for_workers(2);
        let mut browser = Browser::open(&chromium, &dashboard_url(&server));
        let page = browser.wait_for("the workers and the fault buttons", |page| {
            page.shows_workers(&workers) && !page.faults.is_empty()
        });
        assert_eq!(page.faults, FAULTS);

        // A fault that is answered leaves its keep-alive connection idle in
        // the browser. Were the next, fatal, fault sent on it, the browser
        // would resend it when the connection closes unanswered, to the other
        // worker: one click, two deaths.
        browser.click(r#"button[data-fault="panic"]"#);
        browser.wait_for("the panic's 500", |page| {
            page.fault_log.contains("panic: HTTP 500")
        });
        browser.click(r#"button[data-fault="abort"]"#);
        let mut now = Vec::new();
        let replaced = wait_until(DEADLINE, || {
            now = server.workers();
            now.len() == 2 && now != workers
        });
        assert!(replaced, "no worker died: {now:?}; log:\n{}", server.log());
        let dead = *workers.iter().find(|pid| !now.contains(pid)).unwrap();
        let survivor = *workers.iter().find(|&&pid| pid != dead).unwrap();
        assert!(now.contains(&survivor), "one click killed both workers");
        let replacement = *now.iter().find(|&&pid| pid != survivor).unwrap();
        let index = page.cards.iter().find(|card| card.1 == dead).unwrap().0;

        browser.wait_for("the replacement on the dead worker's card", |page| {
            page.shows_workers(&now)
                && page.pid_at(index) == replacement
                && page.deaths == [(index, dead)]
        });
        server.wait_for_log(&format!("(pid {dead}) killed by SIGABRT"));
        assert!(is_alive(survivor), "one click killed both workers");
    }
);

every_mode!(a_page_of_another_origin_cannot_fire_a_fault, |mode| {
    let Some(chromium) = find_chromium() else {
        return;
    };
    let server = Server::start(mode, &["--faults"]);
    let workers = server.wait_for_workers(2);
    let port = server.addr.port();
    // The attacker's page, in the developer's browser: another origin
    // (localhost is not 127.0.0.1), so another site too.
    let page = format!("http://localhost:{port}/hello.txt");
    let mut browser = Browser::open(&chromium, &page);
    browser.wait_until_loaded(&page);
    let fault = format!("http://127.0.0.1:{port}/-/fault/abort");
    let script = format!(
        r#"(async () => {{
  const img = await new Promise((done) => {{
    const image = new Image();
    image.onload = () => done("img loaded");
    image.onerror = () => done("img refused");
    image.src = {fault:?};
  }});
  const post = await fetch({fault:?}, {{ method: "POST", mode: "no-cors", cache: "no-store" }})
    .then(() => "post sent", (err) => "post failed: " + err);
  return img + ", " + post;
}})()"#
    );
    let outcome = browser.eval(&script).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome, "img refused, post sent", "log:\n{}", server.log());
    server.wait_for_log("GET /-/fault/abort 405");
    server.wait_for_log("refused POST /-/fault/abort from another origin");
    assert_eq!(server.workers(), workers, "log:\n{}", server.log());
});
