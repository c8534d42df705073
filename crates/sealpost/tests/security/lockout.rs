//! Lockout race, per-source throttling, audit of authentication and content access, files on disk (issue 12 findings 5, 14, 15, 20).

#[allow(unused_imports)]
use super::*;
