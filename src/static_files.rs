//! Static files under `root`, served safely: see [`StaticFiles`].
//!
//! TODO(helper): implement per the spec given to the helper.

use std::io;
use std::path::Path;

use crate::http::{Request, Response};

/// Serves GET and HEAD for files and directories below one root.
pub struct StaticFiles {}

impl StaticFiles {
    /// Opens the root directory once; every lookup is resolved beneath it.
    pub fn open(root: &Path) -> io::Result<StaticFiles> {
        let _ = root;
        todo!()
    }

    /// Answers a GET or HEAD request (the router handles other methods).
    pub fn serve(&self, req: &Request) -> Response {
        let _ = req;
        todo!()
    }
}
