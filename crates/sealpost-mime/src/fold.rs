//! Address headers a generated mail re-emits from the original (the carrier's To and Cc),
//! folded so no line is longer than 78 characters (RFC 5322 §2.1.1).
//!
//! The original's raw value is parsed and written again as an address list: mail-builder
//! folds between addresses, which a raw value (re-wrapped only at whitespace past column
//! 76) does not guarantee.

use mail_builder::headers::address::Address;
use mail_parser::MessageParser;

use crate::util::{clean_address, one_line};

fn mailbox(name: Option<&str>, address: &str) -> Option<Address<'static>> {
    let address = clean_address(address);
    if address.is_empty() {
        return None;
    }
    let name = name.map(one_line).filter(|n| !n.is_empty());
    Some(Address::new_address(name, address))
}

/// The raw (unfolded) value of an address header as a list mail-builder folds, or None when
/// it holds no address (the caller then writes its own fallback).
pub(crate) fn address_list(name: &str, raw: &str) -> Option<Address<'static>> {
    let field = format!("{name}: {}\r\n\r\n", one_line(raw));
    let parsed = MessageParser::default().parse_headers(field.as_bytes())?;
    let value = parsed.header(name)?.as_address()?;
    let items: Vec<Address<'static>> = match value {
        mail_parser::Address::List(list) => list
            .iter()
            .filter_map(|a| mailbox(a.name.as_deref(), a.address.as_deref()?))
            .collect(),
        mail_parser::Address::Group(groups) => groups
            .iter()
            .filter_map(|g| {
                let members: Vec<Address<'static>> = g
                    .addresses
                    .iter()
                    .filter_map(|a| mailbox(a.name.as_deref(), a.address.as_deref()?))
                    .collect();
                match g.name.as_deref().map(one_line).filter(|n| !n.is_empty()) {
                    Some(group) => Some(Address::new_group(Some(group), members)),
                    // Ungrouped addresses beside a group come as a nameless group.
                    None if members.len() == 1 => members.into_iter().next(),
                    None if members.is_empty() => None,
                    None => Some(Address::new_list(members)),
                }
            })
            .collect(),
    };
    match items.len() {
        0 => None,
        1 => items.into_iter().next(),
        _ => Some(Address::new_list(items)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;
    use mail_builder::MessageBuilder;

    #[test]
    fn long_lists_fold_at_78_and_parse_back() {
        let raw = (0..12)
            .map(|i| format!("=?utf-8?Q?M=C3=BCller_{i}?= <person.number.{i}@bank.example>"))
            .collect::<Vec<_>>()
            .join(", ");
        let out = MessageBuilder::new()
            .header("To", address_list("To", &raw).unwrap())
            .subject("x")
            .text_body("x")
            .write_to_vec()
            .unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        for line in text.lines() {
            assert!(line.len() <= 78, "{} {line:?}", line.len());
        }
        let msg = MessageParser::default().parse(&out).unwrap();
        let to = msg.to().unwrap();
        assert_eq!(to.iter().count(), 12);
        let first = to.first().unwrap();
        assert_eq!(first.name.as_deref(), Some("Müller 0"));
        assert_eq!(
            first.address.as_deref(),
            Some("person.number.0@bank.example")
        );
    }

    #[test]
    fn groups_and_empty_values() {
        let a = address_list("To", "Team: a@x.example, b@x.example;").unwrap();
        let out = MessageBuilder::new()
            .header("To", a)
            .text_body("x")
            .write_to_vec()
            .unwrap();
        let msg = MessageParser::default().parse(&out).unwrap();
        let group = msg.to().unwrap().as_group().unwrap();
        assert_eq!(group[0].name.as_deref(), Some("Team"));
        assert_eq!(group[0].addresses.len(), 2);
        assert!(address_list("To", "").is_none());
        assert!(address_list("To", "undisclosed-recipients:;").is_some());
    }
}
