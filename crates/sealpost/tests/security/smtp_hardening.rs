//! SMTP: smuggling, pipelining, addresses (issue 12 finding 1 and the address rules).

#[allow(unused_imports)]
use super::*;
