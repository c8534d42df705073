//! Mail policy: credentials to internal senders only, neutral subject, internal-only replies, format characters in names (issue 12 findings 7, 8, 9, 17).

#[allow(unused_imports)]
use super::*;
