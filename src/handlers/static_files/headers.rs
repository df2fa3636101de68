//! The headers a developer adds to static responses: CORS (`--cors`) and
//! their own (`--header`, `[headers]`).
//!
//! What it does: [`ExtraHeaders::apply`] adds `Access-Control-Allow-Origin:
//! *` when CORS is on, then the configured headers, each replacing one of
//! the same name the flow set (so `--header "Cache-Control: max-age=60"`
//! means what it says). [`ExtraHeaders::preflight`] answers a CORS
//! preflight: 204 with the allowed methods (GET, HEAD, OPTIONS, all a
//! static site has), the requested headers echoed back (or `*`) and a
//! `Max-Age`. The names and values are checked at start-up (`config`) and
//! leaked once per worker into `&'static str`, so adding them costs no
//! allocation per response; with neither set, `apply` is two branches.
//!
//! What it doesn't: anything under `/-/` (the router never asks it there:
//! the lab endpoints keep their own Origin rules), credentials (`*` can't
//! carry cookies), or per-path rules.

use crate::config::Config;
use crate::http::request::{is_tchar, trim_ows};
use crate::http::{Body, Request, Response};

/// How long a browser may cache a preflight's answer (Chromium caps it at
/// 2 hours; 10 minutes keeps a changed setting from lingering).
const PREFLIGHT_MAX_AGE: &str = "600";
/// Every method a static site answers.
pub(crate) const ALLOWED_METHODS: &str = "GET, HEAD, OPTIONS";

/// See the module docs.
#[derive(Debug, Default)]
pub(crate) struct ExtraHeaders {
    cors: bool,
    custom: Vec<(&'static str, &'static str)>,
}

impl ExtraHeaders {
    /// The headers `config` asks for. Leaks their text: call it once per
    /// worker (the router does), not per request.
    pub(crate) fn new(config: &Config) -> ExtraHeaders {
        let leak = |text: &str| -> &'static str { Box::leak(text.to_owned().into_boxed_str()) };
        ExtraHeaders {
            cors: config.cors,
            custom: config
                .headers
                .iter()
                .map(|(name, value)| (leak(name), leak(value)))
                .collect(),
        }
    }

    /// Adds CORS's and the configured headers to a static response.
    pub(crate) fn apply(&self, mut resp: Response) -> Response {
        if self.cors {
            resp = resp.header("Access-Control-Allow-Origin", "*");
        }
        for &(name, value) in &self.custom {
            // Vary lists what the response depends on: a configured one
            // adds to forkpool's (Accept-Encoding for a compressed file,
            // Accept for an SPA page), never drops it, or a cache would
            // hand one client another's variant.
            if name.eq_ignore_ascii_case("vary")
                && let Some((_, ours)) = resp
                    .headers
                    .iter_mut()
                    .find(|(old, _)| old.eq_ignore_ascii_case("vary"))
            {
                *ours = format!("{ours}, {value}").into();
                continue;
            }
            resp.headers
                .retain(|(old, _)| !old.eq_ignore_ascii_case(name));
            resp.headers.push((name, value.into()));
        }
        resp
    }

    /// The answer to a CORS preflight (an OPTIONS with
    /// `Access-Control-Request-Method`) when CORS is on; `None` otherwise,
    /// and the caller answers OPTIONS as it always does.
    pub(crate) fn preflight(&self, req: &Request) -> Option<Response> {
        if !self.cors || req.cors_request_method.is_empty() {
            return None;
        }
        let resp = Response::new(204, Body::Empty)
            .header("Access-Control-Allow-Methods", ALLOWED_METHODS)
            .header(
                "Access-Control-Allow-Headers",
                allowed_headers(&req.cors_request_headers),
            )
            .header("Access-Control-Max-Age", PREFLIGHT_MAX_AGE)
            .header("Vary", "Access-Control-Request-Headers");
        Some(self.apply(resp))
    }
}

/// The requested headers, echoed when they are a plain list of names (so
/// nothing else reaches our response), else `*`. Echoing, unlike `*`,
/// also allows `Authorization`.
fn allowed_headers(requested: &str) -> String {
    let names = requested.split(',').map(trim_ows);
    let plain = !requested.trim().is_empty()
        && names
            .clone()
            .all(|name| !name.is_empty() && name.bytes().all(is_tchar));
    if plain {
        names.collect::<Vec<_>>().join(", ")
    } else {
        "*".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::static_files::test_support::{header, request};

    fn extra(cors: bool, headers: &[(&str, &str)]) -> ExtraHeaders {
        let mut config = crate::config::defaults();
        config.cors = cors;
        config.headers = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        ExtraHeaders::new(&config)
    }

    #[test]
    fn nothing_configured_changes_nothing() {
        let resp = extra(false, &[]).apply(Response::error(404));
        assert_eq!(resp.headers.len(), 1, "{:?}", resp.headers);
        let preflight = request("OPTIONS", "/x", "Access-Control-Request-Method: GET\r\n");
        assert!(extra(false, &[]).preflight(&preflight).is_none());
    }

    #[test]
    fn cors_and_custom_headers_are_added_and_replace() {
        let extra = extra(
            true,
            &[("X-Frame-Options", "DENY"), ("cache-control", "max-age=60")],
        );
        let resp = extra.apply(Response::error(404).header("Cache-Control", "no-cache"));
        assert_eq!(header(&resp, "Access-Control-Allow-Origin"), Some("*"));
        assert_eq!(header(&resp, "X-Frame-Options"), Some("DENY"));
        let caches: Vec<_> = resp
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cache-control"))
            .collect();
        assert_eq!(caches.len(), 1);
        assert_eq!(caches[0].1, "max-age=60");
    }

    #[test]
    fn a_configured_vary_adds_to_forkpools_own() {
        let extra = extra(false, &[("Vary", "Origin")]);
        let compressed = extra.apply(Response::error(404).header("Vary", "Accept-Encoding"));
        assert_eq!(header(&compressed, "Vary"), Some("Accept-Encoding, Origin"));
        let plain = extra.apply(Response::error(404));
        assert_eq!(header(&plain, "Vary"), Some("Origin"));
    }

    #[test]
    fn a_preflight_gets_methods_headers_and_max_age() {
        let cors = extra(true, &[("X-A", "1")]);
        let ask = |extra_head: &str| cors.preflight(&request("OPTIONS", "/x", extra_head));
        // A plain OPTIONS is not a preflight.
        assert!(ask("").is_none());
        let resp = ask("Access-Control-Request-Method: PUT\r\n").unwrap();
        assert_eq!(resp.status, 204);
        assert_eq!(
            header(&resp, "Access-Control-Allow-Methods"),
            Some("GET, HEAD, OPTIONS")
        );
        assert_eq!(header(&resp, "Access-Control-Allow-Headers"), Some("*"));
        assert_eq!(header(&resp, "Access-Control-Max-Age"), Some("600"));
        assert_eq!(header(&resp, "Access-Control-Allow-Origin"), Some("*"));
        assert_eq!(header(&resp, "X-A"), Some("1"));
        let resp = ask(
            "Access-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: authorization,x-b\r\n",
        )
        .unwrap();
        assert_eq!(
            header(&resp, "Access-Control-Allow-Headers"),
            Some("authorization, x-b")
        );
    }

    #[test]
    fn only_plain_header_lists_are_echoed() {
        assert_eq!(allowed_headers("x-a, X-B"), "x-a, X-B");
        assert_eq!(allowed_headers("content-type"), "content-type");
        for odd in ["", " ", "x-a,,x-b", "x a", "x-a, \"q\"", "x-a;y"] {
            assert_eq!(allowed_headers(odd), "*", "{odd:?}");
        }
    }
}
