//! Forged uploads, web listener limits, breached passwords, branded framework errors (issue 12 findings 2, 11 and the password list).

#[allow(unused_imports)]
use super::*;
