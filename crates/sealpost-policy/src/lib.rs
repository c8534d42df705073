//! What policy rules look at (issue 17): content **detectors** that find IBANs (ISO 13616
//! mod-97), payment card numbers (Luhn plus issuer prefix and length), German tax
//! identification numbers (ISO 7064 check digit), custom patterns and keyword lists; and the
//! bounded **extraction** of text from a mail's bodies and text-bearing attachments (text/*,
//! HTML, PDF, DOCX, XLSX, ODT/ODS). Both are synchronous and CPU-bound: the pipeline runs them
//! off the async executor.
//!
//! Nothing here decides what happens to a mail; the rule list does, in `sealpost-core`.

pub mod detect;
pub mod extract;

pub use detect::{Detector, DetectorError};
pub use extract::{ExtractLimits, Extracted, PartText, extract};
