//! The organisation's look of generated mails and secure.htm.

/// Per-organisation look of generated mails and secure.htm.
#[derive(Debug, Clone)]
pub struct Branding {
    pub org_name: String,
    /// "#RRGGBB"; anything else is replaced by the default when used.
    pub accent_color: String,
    pub footer: String,
    /// How a recipient reaches the organisation to check a mail is genuine (phone or URL),
    /// shown in the "Why did I get this, and is it genuine?" block; empty = not shown.
    pub support_contact: String,
    /// Imprint (legal notice) and privacy links of the portal and the mails; empty = none.
    pub imprint_url: String,
    pub privacy_url: String,
}

const DEFAULT_ACCENT: &str = "#1f5fa8";

impl Default for Branding {
    fn default() -> Self {
        Self {
            org_name: "Sealpost".to_string(),
            accent_color: DEFAULT_ACCENT.to_string(),
            footer: String::new(),
            support_contact: String::new(),
            imprint_url: String::new(),
            privacy_url: String::new(),
        }
    }
}

impl Branding {
    /// The accent colour, validated: it is pasted into CSS, so only a strict
    /// "#RRGGBB" passes (an admin typo must not break or inject styles).
    pub fn accent(&self) -> &str {
        let c = self.accent_color.trim();
        let valid =
            c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|ch| ch.is_ascii_hexdigit());
        if valid { c } else { DEFAULT_ACCENT }
    }

    /// Appends the configured footer, if any, as the last line of a text body.
    pub(crate) fn push_text_footer(&self, text: &mut String) {
        let footer = self.footer.trim();
        if !footer.is_empty() {
            text.push_str(footer);
            text.push('\n');
        }
    }

    /// The organisation's name, "Sealpost" when none is configured.
    pub fn org(&self) -> &str {
        let org = self.org_name.trim();
        if org.is_empty() { "Sealpost" } else { org }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accent_validation() {
        let mut b = Branding::default();
        assert_eq!(b.accent(), "#1f5fa8");
        b.accent_color = "#AA00ff".into();
        assert_eq!(b.accent(), "#AA00ff");
        for bad in ["red", "#12345", "#1234567", "#12345g", "#ä1234", ""] {
            b.accent_color = bad.into();
            assert_eq!(b.accent(), "#1f5fa8", "{bad}");
        }
    }
}
