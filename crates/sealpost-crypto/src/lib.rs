//! Cryptography for Sealpost: the master key and wrapped per-recipient keys,
//! the sealed envelope that travels inside `secure.htm`, password and
//! secret-answer hashing, generated passwords, one-time tokens, and the signed
//! proof-of-delivery reports (`report`).
//!
//! The envelope format and key hierarchy are documented for auditors in
//! `docs/ENVELOPE.md`; keep that file in step with `envelope.rs` and `keys.rs`.

pub mod envelope;
pub mod keys;
pub mod password;
pub mod report;
pub mod token;

mod compress;

pub use envelope::{
    ENVELOPE_VERSION, EnvelopeError, EnvelopeHeader, PayloadDecoder, PreparedMessage,
    decode_payload, encode_payload, open, open_owned, prepare, read_header, seal, seal_prepared,
};
pub use keys::{KeyError, KeyId, MasterKey, RecipientKey};
pub use password::{
    PasswordError, dummy_verify, generate_password, hash_secret, normalise_answer, verify_secret,
};
pub use token::{ct_eq, hash_token, new_token};
