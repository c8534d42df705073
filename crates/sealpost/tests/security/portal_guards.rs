//! Request guards, redirects, session lifetime, admin listener and TOTP (issue 12 findings 6, 12, 13, 16, 18; issue 13).

#[allow(unused_imports)]
use super::*;
