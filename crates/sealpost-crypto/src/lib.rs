//! Cryptography for Sealpost: the master key and wrapped per-recipient keys,
//! the sealed envelope that travels inside `secure.htm`, password and
//! secret-answer hashing, generated passwords, one-time tokens, and the signed
//! proof-of-delivery reports (`report`).
//!
//! The envelope format and key hierarchy are documented for auditors in
//! `docs/ENVELOPE.md`; keep that file in step with `envelope.rs` and `keys.rs`.

pub mod envelope;
pub mod factor_secret;
pub mod keys;
pub mod message_secret;
pub mod password;
pub mod report;
pub mod token;

mod compress;

pub use envelope::{
    ENVELOPE_VERSION, ENVELOPE_VERSION_2, EnvelopeError, EnvelopeHeader, PayloadDecoder,
    PreparedMessage, decode_payload, encode_payload, open, open_owned, open_owned_with_secret,
    open_with_secret, prepare, read_header, seal, seal_prepared, seal_prepared_v2, seal_v2,
};
pub use keys::{KeyError, KeyId, MasterKey, RecipientKey};
pub use message_secret::{MessageSecret, WRAPPED_SECRET_LEN};
pub use password::{
    PasswordError, dummy_verify, generate_password, hash_secret, normalise_answer, verify_secret,
};
pub use token::{ct_eq, hash_token, new_token};
