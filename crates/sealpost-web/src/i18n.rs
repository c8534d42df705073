//! The language of a page: the account's, else the browser's, else the configured default.

use axum::http::{HeaderMap, header};

#[derive(Debug, Clone)]
pub struct Tr {
    pub lang: &'static str,
}

impl Tr {
    pub fn for_request(headers: &HeaderMap, account_lang: Option<&str>, default: &str) -> Self {
        let accept = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        Tr {
            lang: sealpost_i18n::negotiate(accept, default),
        }
        .preferring(account_lang)
    }

    /// The account's own language where the portal has it, else this one (the browser's).
    pub fn preferring(self, account_lang: Option<&str>) -> Self {
        match account_lang.and_then(sealpost_i18n::resolve) {
            Some(lang) => Tr { lang },
            None => self,
        }
    }

    pub fn t(&self, key: &str) -> String {
        sealpost_i18n::t(self.lang, key)
    }

    pub fn tf(&self, key: &str, name: &str, value: &str) -> String {
        sealpost_i18n::tf(self.lang, key, &[(name, value)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_account_language_wins_over_the_browser_when_the_portal_has_it() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_static("de"));
        let browser = Tr::for_request(&headers, None, "en");
        assert_eq!(browser.lang, "de");
        assert_eq!(browser.clone().preferring(Some("en")).lang, "en");
        assert_eq!(browser.clone().preferring(Some("xx")).lang, "de");
        assert_eq!(browser.preferring(None).lang, "de");
        assert_eq!(Tr::for_request(&headers, Some("en"), "de").lang, "en");
    }
}
