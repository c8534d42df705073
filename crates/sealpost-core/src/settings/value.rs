//! How each Rust type of a setting reads from and writes to its stored text, and which form
//! widget shows it. Reading refuses what does not fit with a short reason for the admin.

use std::net::IpAddr;

use ipnet::IpNet;

use super::choices::{
    ClientAddress, CredentialsTo, DeliveryProfile, FirstContact, RecoveryPolicy, ReportSubject,
    ResetDelivery, SecondFactorPolicy,
};

/// How the admin form shows a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Widget {
    /// One line of text.
    Text,
    /// One entry per line (commas also separate).
    Lines,
    /// A whole number, 0 or more.
    Number,
    /// A checkbox.
    Toggle,
    /// One of fixed values: (stored text, label).
    Choice(&'static [(&'static str, &'static str)]),
}

/// A type a setting can have.
pub trait SettingValue: Sized {
    /// The widget unless the declaration names another.
    const WIDGET: Widget;
    /// Reads stored or submitted text; the error is a short reason for the admin.
    fn parse_setting(text: &str) -> Result<Self, String>;
    /// The canonical stored text; `parse_setting` reads it back to the same value.
    fn to_setting(&self) -> String;
}

/// Longest text a free-text setting keeps.
const MAX_TEXT: usize = 500;

impl SettingValue for String {
    const WIDGET: Widget = Widget::Text;
    fn parse_setting(text: &str) -> Result<Self, String> {
        Ok(text
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_TEXT)
            .collect())
    }
    fn to_setting(&self) -> String {
        self.clone()
    }
}

impl SettingValue for bool {
    const WIDGET: Widget = Widget::Toggle;
    fn parse_setting(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "true" | "on" | "yes" | "1" => Ok(true),
            "false" | "off" | "no" | "0" => Ok(false),
            _ => Err("enter true or false".to_string()),
        }
    }
    fn to_setting(&self) -> String {
        self.to_string()
    }
}

/// Numeric settings are counts, sizes and durations: never negative.
fn whole_number(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(n) if n <= i64::MAX as u64 => Ok(n),
        _ => Err("enter a whole number (0 or more)".to_string()),
    }
}

impl SettingValue for i64 {
    const WIDGET: Widget = Widget::Number;
    fn parse_setting(text: &str) -> Result<Self, String> {
        whole_number(text).map(|n| n as i64)
    }
    fn to_setting(&self) -> String {
        self.to_string()
    }
}

impl SettingValue for u32 {
    const WIDGET: Widget = Widget::Number;
    fn parse_setting(text: &str) -> Result<Self, String> {
        whole_number(text)
            .and_then(|n| u32::try_from(n).map_err(|_| "the number is too large".to_string()))
    }
    fn to_setting(&self) -> String {
        self.to_string()
    }
}

impl SettingValue for usize {
    const WIDGET: Widget = Widget::Number;
    fn parse_setting(text: &str) -> Result<Self, String> {
        whole_number(text)
            .and_then(|n| usize::try_from(n).map_err(|_| "the number is too large".to_string()))
    }
    fn to_setting(&self) -> String {
        self.to_string()
    }
}

/// The entries of a list setting: one per line, commas also separate, blanks dropped.
fn entries<'a>(text: &'a str, separators: &'a [char]) -> impl Iterator<Item = &'a str> {
    text.split(separators)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

impl SettingValue for Vec<String> {
    const WIDGET: Widget = Widget::Lines;
    fn parse_setting(text: &str) -> Result<Self, String> {
        entries(text, &[',', '\n'])
            .map(String::parse_setting)
            .collect()
    }
    fn to_setting(&self) -> String {
        self.join("\n")
    }
}

/// An IP network in CIDR form, or one address (a network of one).
pub fn parse_network(s: &str) -> Option<IpNet> {
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

impl SettingValue for Vec<IpNet> {
    const WIDGET: Widget = Widget::Lines;
    fn parse_setting(text: &str) -> Result<Self, String> {
        entries(text, &[',', '\n', ' ', '\t'])
            .map(|n| parse_network(n).ok_or_else(|| format!("{n:?} is not a network or address")))
            .collect()
    }
    fn to_setting(&self) -> String {
        self.iter()
            .map(IpNet::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The choice enums read and write through their `FromStr` and `Display`.
macro_rules! textual {
    ($($ty:ty => $widget:expr),+ $(,)?) => {$(
        impl SettingValue for $ty {
            const WIDGET: Widget = $widget;
            fn parse_setting(text: &str) -> Result<Self, String> {
                text.trim().parse()
            }
            fn to_setting(&self) -> String {
                self.to_string()
            }
        }
    )+};
}

textual! {
    CredentialsTo => Widget::Text,
    ResetDelivery => Widget::Choice(ResetDelivery::CHOICES),
    RecoveryPolicy => Widget::Choice(RecoveryPolicy::CHOICES),
    DeliveryProfile => Widget::Choice(DeliveryProfile::CHOICES),
    ReportSubject => Widget::Choice(ReportSubject::CHOICES),
    FirstContact => Widget::Choice(FirstContact::CHOICES),
    ClientAddress => Widget::Choice(ClientAddress::CHOICES),
    SecondFactorPolicy => Widget::Choice(SecondFactorPolicy::CHOICES),
}
