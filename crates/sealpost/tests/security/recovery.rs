//! Recovery and factor changes: mailbox code, notices, re-authentication, standard questions, reset links (issue 12 findings 3, 4, 10, 19).

#[allow(unused_imports)]
use super::*;
