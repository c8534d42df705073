//! What policy rules look at (issue 17): content **detectors** that find IBANs (ISO 13616
//! mod-97), payment card numbers (Luhn plus issuer prefix and length), German tax
//! identification numbers (ISO 7064 check digit), custom patterns and keyword lists; and the
//! bounded **extraction** of text from a mail's bodies and text-bearing attachments (text/*,
//! HTML, PDF, DOCX, XLSX, ODT/ODS). Both are synchronous and CPU-bound: the pipeline runs them
//! off the async executor.
//!
//! The ordered **rule list** (`rules`) turns these into a decision per recipient; the
//! pipeline in `sealpost-core` carries it out.

pub mod detect;
pub mod extract;
pub mod rules;

pub use detect::{Detector, DetectorError};
pub use extract::{ExtractLimits, Extracted, PartText, extract};
pub use rules::{
    Action, Condition, Decision, DetectorSpec, Mail, Recipient, Rule, RuleError, RuleList, Unknown,
};
