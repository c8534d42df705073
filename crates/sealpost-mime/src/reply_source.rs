//! Reading the message a portal reply answers: where a reply may go, how it threads, what
//! it quotes. Only parsing here; [`crate::reply`] builds the reply.

use crate::inbound::original_headers;
use crate::util::{clean_address, one_line};

/// What a reply needs to know about the message it answers, read from the
/// decrypted original.
#[derive(Debug, Clone, Default)]
pub struct ReplySource {
    /// Where a reply could go, as the original's headers name it.
    pub addresses: ReplyAddresses,
    /// The original's From as displayed ("Name <addr>"), for the quote line.
    pub from_display: String,
    pub subject: String,
    pub date: String,
    /// Message-ID without angle brackets.
    pub message_id: Option<String>,
    /// The original's References (or In-Reply-To), without angle brackets.
    pub references: Vec<String>,
    /// The text body (mail-parser converts an HTML-only body to text).
    pub text: String,
}

/// The addresses a reply to a message could go to, from its top-level headers, kept apart
/// so that the caller can decide which of them a reply may use. Lower-cased.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyAddresses {
    /// The first address of Reply-To, if it names one.
    pub reply_to: Option<String>,
    /// The first address of From, if it names one.
    pub from: Option<String>,
    /// Every address in To and Cc, in order, without duplicates.
    pub to_and_cc: Vec<String>,
}

impl ReplyAddresses {
    /// Reply-To if present, else From: where a mail client would send a reply.
    pub fn reply_address(&self) -> Option<&str> {
        self.reply_to.as_deref().or(self.from.as_deref())
    }
}

fn reply_addresses_of(msg: &mail_parser::Message<'_>) -> ReplyAddresses {
    let first = |a: Option<&mail_parser::Address>| {
        a.and_then(|a| a.iter().find_map(|x| x.address.as_deref()))
            .map(|s| clean_address(s).to_lowercase())
            .filter(|s| s.contains('@'))
    };
    let mut to_and_cc: Vec<String> = Vec::new();
    for list in [msg.to(), msg.cc()].into_iter().flatten() {
        for addr in list.iter().filter_map(|x| x.address.as_deref()) {
            let addr = clean_address(addr).to_lowercase();
            if addr.contains('@') && !to_and_cc.contains(&addr) {
                to_and_cc.push(addr);
            }
        }
    }
    ReplyAddresses {
        reply_to: first(msg.reply_to()),
        from: first(msg.from()),
        to_and_cc,
    }
}

/// [`ReplySource`]'s addresses from the headers alone: the body (with any large attachment)
/// is not parsed or decoded. None when no header parses.
pub fn reply_addresses(raw: &[u8]) -> Option<ReplyAddresses> {
    let msg = mail_parser::MessageParser::default().parse_headers(raw)?;
    Some(reply_addresses_of(&msg))
}

/// Reads the reply-relevant parts of a message; None when it does not parse.
pub fn reply_source(raw: &[u8]) -> Option<ReplySource> {
    let msg = mail_parser::MessageParser::default().parse(raw)?;
    let addresses = reply_addresses_of(&msg);
    let original = original_headers(raw);
    let mut references = original.references.clone();
    if let Some(id) = &original.message_id {
        // References of a reply: the parent's references, then the parent itself.
        if !references.contains(id) {
            references.push(id.clone());
        }
    }
    Some(ReplySource {
        addresses,
        from_display: original.from.clone(),
        subject: original.subject.clone(),
        date: original.date.clone().unwrap_or_default(),
        message_id: original.message_id.clone(),
        references,
        text: msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
    })
}

/// "Re: subject", without stacking prefixes ("Re: Re: …") and without
/// translating an existing German "AW:".
pub fn reply_subject(subject: &str) -> String {
    let s = one_line(subject);
    let lower = s.to_lowercase();
    if lower.starts_with("re:") || lower.starts_with("aw:") {
        s
    } else if s.is_empty() {
        "Re:".to_string()
    } else {
        format!("Re: {s}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
pub(crate) mod tests {
    use super::*;

    /// An original to reply to, also used by the reply builder's tests.
    pub(crate) const ORIGINAL: &str = "From: Anna Advisor <Anna@Bank.example>\r\n\
To: kundin@example.org, chef@bank.example\r\n\
Cc: Other <other@example.net>\r\n\
Subject: Ihr Vertrag\r\n\
Date: Tue, 5 Mar 2024 10:15:00 +0100\r\n\
Message-ID: <orig@bank.example>\r\n\
References: <p1@x>\r\n\r\n\
Line one\r\n\r\nLine three\r\n";

    #[test]
    fn reply_source_reads_recipients_and_thread() {
        let src = reply_source(ORIGINAL.as_bytes()).unwrap();
        assert_eq!(src.addresses.reply_address(), Some("anna@bank.example"));
        assert_eq!(src.addresses.reply_to, None);
        assert_eq!(
            src.addresses.to_and_cc,
            vec![
                "kundin@example.org",
                "chef@bank.example",
                "other@example.net"
            ]
        );
        assert_eq!(src.references, vec!["p1@x", "orig@bank.example"]);
        let with_reply_to = ORIGINAL.replace("Subject:", "Reply-To: team@bank.example\r\nSubject:");
        let src = reply_source(with_reply_to.as_bytes()).unwrap();
        assert_eq!(src.addresses.reply_address(), Some("team@bank.example"));
        assert_eq!(src.addresses.reply_to.as_deref(), Some("team@bank.example"));
        assert_eq!(src.addresses.from.as_deref(), Some("anna@bank.example"));
        assert_eq!(
            reply_addresses(with_reply_to.as_bytes()),
            Some(src.addresses)
        );
    }

    #[test]
    fn subjects_do_not_stack() {
        assert_eq!(reply_subject("Hallo"), "Re: Hallo");
        assert_eq!(reply_subject("RE: Hallo"), "RE: Hallo");
        assert_eq!(reply_subject("AW: Hallo"), "AW: Hallo");
        assert_eq!(reply_subject(""), "Re:");
    }
}
