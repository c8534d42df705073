//! Validation beyond the type of a setting, named in its declaration. Each check takes the
//! parsed value and returns it normalised, or a short reason for the admin.

use sealpost_smtp::next_hop::NextHop;

pub type Checked<T> = Result<T, String>;

/// A list that must keep at least one entry.
pub fn at_least_one(items: Vec<String>) -> Checked<Vec<String>> {
    if items.is_empty() {
        Err("at least one entry is needed".to_string())
    } else {
        Ok(items)
    }
}

/// A mail header name.
pub fn header_name(name: String) -> Checked<String> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_graphic() && c != ':') {
        Err("a header name without spaces or colons".to_string())
    } else {
        Ok(name)
    }
}

/// A domain name as mail addresses use it, in the normalised spelling of
/// [`crate::normalise_domain`] (lower-case U-labels).
pub fn domain(name: &str) -> Checked<String> {
    let trimmed = name.trim().trim_end_matches('.');
    // The host part of a mailbox, in either spelling (A-label or U-label), checked like an
    // address's domain; stored in the one form addresses are normalised to, so that a domain
    // written as `xn--mnchen-3ya.example` matches mail to `max@MÜNCHEN.example`.
    let valid = !trimmed.is_empty()
        && !trimmed.starts_with('[')
        && sealpost_smtp::address::validate_mailbox(&format!("postmaster@{trimmed}")).is_ok();
    if valid {
        Ok(crate::normalise_domain(trimmed))
    } else {
        Err(format!("{:?} is not a domain name", name.trim()))
    }
}

/// Every entry a domain (see [`domain`]).
pub fn domains(items: Vec<String>) -> Checked<Vec<String>> {
    items.iter().map(|d| domain(d)).collect()
}

/// An absolute http(s) URL, kept without a trailing slash.
pub fn web_url(url: String) -> Checked<String> {
    if crate::url::is_web_url(&url) {
        Ok(url.trim_end_matches('/').to_string())
    } else {
        Err("enter a URL starting with https://".to_string())
    }
}

/// An e-mail address (the form `local@domain`).
pub fn address(address: String) -> Checked<String> {
    match address.split_once('@') {
        Some((local, domain))
            if !local.is_empty()
                && !domain.is_empty()
                && !address.contains(char::is_whitespace) =>
        {
            Ok(address)
        }
        _ => Err("enter an e-mail address".to_string()),
    }
}

/// A colour `#RRGGBB` (it goes into style sheets, so nothing else passes).
pub fn colour(colour: String) -> Checked<String> {
    let ok = colour.len() == 7
        && colour.starts_with('#')
        && colour[1..].chars().all(|c| c.is_ascii_hexdigit());
    if ok {
        Ok(colour)
    } else {
        Err("use the form #RRGGBB".to_string())
    }
}

/// The accent colour: `#RRGGBB` (see [`colour`]) on which the portal's white button and header
/// text stay readable, i.e. a contrast ratio of at least 4.5:1 against white (WCAG 2 AA for
/// normal text).
pub fn accent_colour(colour: String) -> Checked<String> {
    let colour = self::colour(colour)?;
    let ratio = contrast_with_white(&colour).unwrap_or(0.0);
    if ratio >= MIN_CONTRAST {
        Ok(colour)
    } else {
        Err(format!(
            "white text on {colour} has a contrast ratio of {:.2}:1, below the 4.5:1 that WCAG AA asks for; choose a darker colour",
            (ratio * 100.0).floor() / 100.0
        ))
    }
}

/// WCAG 2 AA: normal text needs 4.5:1.
const MIN_CONTRAST: f64 = 4.5;

/// The WCAG 2 contrast ratio of white against `#RRGGBB`; None for anything else.
pub fn contrast_with_white(colour: &str) -> Option<f64> {
    let hex = colour.strip_prefix('#').filter(|h| h.len() == 6)?;
    let channel = |i: usize| -> Option<f64> {
        let v = f64::from(u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()?) / 255.0;
        // sRGB to linear light, as WCAG 2 defines relative luminance.
        Some(if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        })
    };
    let luminance = 0.2126 * channel(0)? + 0.7152 * channel(2)? + 0.0722 * channel(4)?;
    Some(1.05 / (luminance + 0.05))
}

/// Empty (none) or an `https://` URL with a host: a link the portal and the mails show.
pub fn optional_https_url(url: String) -> Checked<String> {
    if url.is_empty() || (url.starts_with("https://") && crate::url::is_web_url(&url)) {
        Ok(url)
    } else {
        Err("enter a URL starting with https://, or leave it empty".to_string())
    }
}

/// Longest support contact: a phone number or a short URL, shown on one line.
const MAX_CONTACT: usize = 120;

/// Empty or a short line of text (a phone number or a URL) without markup characters.
pub fn support_contact(contact: String) -> Checked<String> {
    if contact.chars().count() > MAX_CONTACT {
        Err(format!("at most {MAX_CONTACT} characters"))
    } else if contact.contains(['<', '>']) {
        Err("a phone number or a URL, without < or >".to_string())
    } else {
        Ok(contact)
    }
}

/// A language the catalogues have.
pub fn language(code: String) -> Checked<String> {
    match sealpost_i18n::resolve(&code) {
        Some(lang) => Ok(lang.to_string()),
        None => Err(format!("one of {}", sealpost_i18n::available().join(", "))),
    }
}

/// Empty (the node's configured relay) or `smtp://host:port` / `maildir:PATH`.
pub fn next_hop(hop: String) -> Checked<String> {
    if hop.is_empty() {
        return Ok(hop);
    }
    hop.parse::<NextHop>()
        .map(|_| hop)
        .map_err(|e| e.to_string())
}

/// Empty (none) or a hex SHA-256, stored lower-case.
pub fn sha256_hex(hash: String) -> Checked<String> {
    if hash.is_empty() || (hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit())) {
        Ok(hash.to_ascii_lowercase())
    } else {
        Err("a SHA-256 in hex (64 characters), or empty".to_string())
    }
}

/// A duration or count that must be at least one (zero would disable what it limits).
pub fn positive(n: i64) -> Checked<i64> {
    if n >= 1 {
        Ok(n)
    } else {
        Err("enter 1 or more".to_string())
    }
}

/// A count or duration where zero switches the feature off.
pub fn non_negative(n: i64) -> Checked<i64> {
    if n >= 0 {
        Ok(n)
    } else {
        Err("enter 0 or more".to_string())
    }
}

/// Days an encrypted link copy is kept (`delivery.link_days`): at least a day, at most a year.
pub fn link_days(days: u32) -> Checked<u32> {
    if (1..=365).contains(&days) {
        Ok(days)
    } else {
        Err("enter 1 to 365 days".to_string())
    }
}

/// Smallest and largest `carrier.max_size`: below 64 KiB not even a short message with its
/// secure.htm fits; above 1 GiB no next hop takes it.
pub const CARRIER_MAX_SIZE_RANGE: std::ops::RangeInclusive<usize> = 64 * 1024..=1024 * 1024 * 1024;

/// The largest carrier handed to the next hop (`carrier.max_size`), bytes.
pub fn carrier_max_size(bytes: usize) -> Checked<usize> {
    if CARRIER_MAX_SIZE_RANGE.contains(&bytes) {
        Ok(bytes)
    } else {
        Err(format!(
            "enter {} to {} bytes",
            CARRIER_MAX_SIZE_RANGE.start(),
            CARRIER_MAX_SIZE_RANGE.end()
        ))
    }
}
