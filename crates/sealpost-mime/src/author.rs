//! Who a mail written in the portal (a reply, and later a new message) is from.
//!
//! The reader's own domain may publish DMARC `p=reject`; a mail with the reader in `From:`
//! that leaves through the organisation's servers would fail DMARC at the organisation's own
//! inbound filter. So `From:` is the gateway's notification sender (the signing domain), named
//! `"<reader> via <org>"`; `Reply-To:` is the reader, so "Reply" reaches them; `Sender:` names
//! the gateway as the transmitting system, as before.

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use sealpost_i18n::tf;

use crate::util::{clean_address, one_line};

/// The parties of a portal-written mail.
pub struct PortalAuthor<'a> {
    /// The reader (the recipient account writing in the portal).
    pub reader: &'a str,
    /// The organisation's name (`Branding::org`).
    pub org: &'a str,
    /// The gateway's notification sender (`mail.notification_from`).
    pub notification_sender: &'a str,
}

impl PortalAuthor<'_> {
    /// `"<reader> via <org>"`, on one line.
    pub fn display_name(&self) -> String {
        let reader = clean_address(self.reader);
        let org = one_line(self.org);
        if org.is_empty() {
            reader
        } else {
            format!("{reader} via {org}")
        }
    }

    /// Sets `From:`, `Reply-To:` and `Sender:` on `builder`.
    pub fn apply<'x>(&self, builder: MessageBuilder<'x>) -> MessageBuilder<'x> {
        let sender = clean_address(self.notification_sender);
        builder
            .from(Address::new_address(
                Some(self.display_name()),
                sender.clone(),
            ))
            .reply_to(Address::new_address(
                None::<&str>,
                clean_address(self.reader),
            ))
            .sender(Address::new_address(None::<&str>, sender))
    }

    /// The first line of the body: who really wrote it, since `From:` names the gateway.
    pub fn body_line(&self, lang: &str) -> String {
        tf(
            lang,
            "reply.author_line",
            &[
                ("reader", &clean_address(self.reader)),
                ("org", &one_line(self.org)),
            ],
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;
    use mail_parser::MessageParser;

    #[test]
    fn from_is_the_gateway_and_reply_to_the_reader() {
        let author = PortalAuthor {
            reader: "kundin@example.org",
            org: "Bank \"Süd\" AG",
            notification_sender: "noreply@bank.example",
        };
        let raw = author
            .apply(MessageBuilder::new().subject("x"))
            .text_body("x")
            .write_to_vec()
            .unwrap();
        let msg = MessageParser::default().parse(&raw).unwrap();
        let from = msg.from().unwrap().first().unwrap();
        assert_eq!(from.address.as_deref(), Some("noreply@bank.example"));
        assert_eq!(
            from.name.as_deref(),
            Some("kundin@example.org via Bank \"Süd\" AG")
        );
        assert_eq!(
            msg.reply_to().unwrap().first().unwrap().address.as_deref(),
            Some("kundin@example.org")
        );
        assert_eq!(
            msg.sender().unwrap().first().unwrap().address.as_deref(),
            Some("noreply@bank.example")
        );
        assert!(author.body_line("en").contains("kundin@example.org"));
        assert!(author.body_line("de").contains("kundin@example.org"));
    }
}
