//! The ordered rule list: each rule has conditions (all must hold) and an action; the first
//! rule whose conditions hold decides, per recipient. The list is stored as JSON in the
//! run-time settings (`policy.rules`) and checked whole before it is saved: a rule that does
//! not compile (a bad pattern, an empty keyword list) is refused with its position and why.
//!
//! The built-in list ([`RuleList::builtin`]) is exactly the behaviour before rules existed:
//! internal recipients get the mail as it is; a subject keyword or the trigger header
//! encrypts; everything else passes.

use serde::{Deserialize, Serialize};

use crate::detect::{Detector, DetectorError, mask};
use crate::extract::Extracted;

/// What a rule does with the recipients it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Encrypt,
    /// Relay unchanged.
    Pass,
    /// Refuse the recipient with a 5xx and the rule's text.
    Reject,
    /// Encrypt, and tell the sender which rule matched.
    NotifySenderEncrypt,
    /// Relay unchanged, and tell the sender which rule matched.
    NotifySenderPass,
}

impl Action {
    /// Whether the recipient's copy must be encrypted: such a copy is never sent in clear.
    pub fn encrypts(self) -> bool {
        matches!(self, Action::Encrypt | Action::NotifySenderEncrypt)
    }

    pub fn notifies_sender(self) -> bool {
        matches!(self, Action::NotifySenderEncrypt | Action::NotifySenderPass)
    }
}

/// What a content condition makes of a part that could not be read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unknown {
    /// Judged on what could be read (the default).
    #[default]
    Ignore,
    /// An unreadable part counts as a match: "if we cannot look, encrypt".
    Matches,
}

/// A detector as a rule names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum DetectorSpec {
    Iban,
    PaymentCard,
    GermanTaxId,
    Pattern { regex: String },
    Keywords { words: Vec<String> },
}

impl DetectorSpec {
    fn compile(&self) -> Result<Detector, DetectorError> {
        Ok(match self {
            DetectorSpec::Iban => Detector::Iban,
            DetectorSpec::PaymentCard => Detector::PaymentCard,
            DetectorSpec::GermanTaxId => Detector::GermanTaxId,
            DetectorSpec::Pattern { regex } => Detector::pattern(regex)?,
            DetectorSpec::Keywords { words } => Detector::keywords(words)?,
        })
    }

    fn label(&self) -> &'static str {
        match self {
            DetectorSpec::Iban => "IBAN",
            DetectorSpec::PaymentCard => "payment card number",
            DetectorSpec::GermanTaxId => "German tax id",
            DetectorSpec::Pattern { .. } => "pattern",
            DetectorSpec::Keywords { .. } => "keyword",
        }
    }
}

fn one() -> usize {
    1
}

/// One condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "if", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Condition {
    /// The subject contains one of these (case-insensitive); empty: the trigger keywords of
    /// the settings (`policy.trigger_keywords`).
    SubjectKeyword {
        #[serde(default)]
        keywords: Vec<String>,
    },
    /// The mail asks for encryption in the trigger header (`X-Sealpost-Encrypt: yes`), as the
    /// add-ins set it.
    TriggerHeader,
    /// A header is present (any value), or equal to `equals` (case-insensitive, trimmed).
    Header {
        name: String,
        #[serde(default)]
        equals: Option<String>,
    },
    /// The envelope sender is one of these addresses or domains (`@domain` or `domain`).
    Sender { any_of: Vec<String> },
    /// The recipient is one of these addresses or domains.
    Recipient { any_of: Vec<String> },
    /// The recipient is (or is not) in an internal domain.
    RecipientInternal { is: bool },
    /// The message is at least this large (bytes, as received).
    SizeAtLeast { bytes: usize },
    /// The text of the bodies and text-bearing attachments holds at least `min_count`
    /// distinct findings of `detector`.
    Contains {
        detector: DetectorSpec,
        #[serde(default = "one")]
        min_count: usize,
    },
}

/// A rule as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    #[serde(default)]
    pub when: Vec<Condition>,
    pub action: Action,
    /// For `reject`: the text of the 5xx reply; for the notify actions: what the sender reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default)]
    pub unknown: Unknown,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RuleError {
    #[error("the rule list is not valid JSON of rules: {0}")]
    Syntax(String),
    #[error("rule {position} ({name}): {why}")]
    Invalid {
        position: usize,
        name: String,
        why: String,
    },
    #[error("the rule list is empty: the last rule must say what happens to everything else")]
    Empty,
}

/// A checked, compiled rule list.
#[derive(Debug, Clone)]
pub struct RuleList {
    rules: Vec<Rule>,
    detectors: Vec<Vec<Option<Detector>>>,
}

/// What the evaluator knows of the mail.
pub struct Mail<'a> {
    pub subject: &'a str,
    /// The header fields (name, unfolded value), in order.
    pub headers: &'a [(String, String)],
    /// The envelope sender (MAIL FROM), normalised.
    pub sender: &'a str,
    pub size: usize,
    /// `policy.trigger_keywords`.
    pub trigger_keywords: &'a [String],
    /// Whether the trigger header asks for encryption (decided by the inbound parser).
    pub trigger_header: bool,
    /// The extracted text; `None` when no rule needs content ([`RuleList::needs_content`]).
    pub content: Option<&'a Extracted>,
}

/// One recipient as the evaluator sees it.
pub struct Recipient<'a> {
    /// Normalised (lower-case domain).
    pub address: &'a str,
    pub internal: bool,
}

/// Why a detector fired: in which part, and the finding masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub detector: &'static str,
    pub part: String,
    pub masked: String,
}

/// The decision for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Position (1-based) and name of the rule that decided; `None` when no rule matched
    /// (then the mail passes, as before rules existed).
    pub rule: Option<(usize, String)>,
    pub action: Action,
    pub text: Option<String>,
    pub findings: Vec<Finding>,
    /// Parts that could not be read and counted as a match.
    pub unknown_matched: Vec<String>,
}

impl RuleList {
    /// Today's behaviour, as a rule list.
    pub fn builtin() -> RuleList {
        let rules = vec![
            Rule {
                name: "Internal recipients get the mail as it is".into(),
                when: vec![Condition::RecipientInternal { is: true }],
                action: Action::Pass,
                text: None,
                unknown: Unknown::Ignore,
            },
            Rule {
                name: "Subject keyword".into(),
                when: vec![Condition::SubjectKeyword { keywords: vec![] }],
                action: Action::Encrypt,
                text: None,
                unknown: Unknown::Ignore,
            },
            Rule {
                name: "Trigger header".into(),
                when: vec![Condition::TriggerHeader],
                action: Action::Encrypt,
                text: None,
                unknown: Unknown::Ignore,
            },
            Rule {
                name: "Everything else".into(),
                when: vec![],
                action: Action::Pass,
                text: None,
                unknown: Unknown::Ignore,
            },
        ];
        // The built-in rules have no detector to compile.
        let detectors = rules.iter().map(|r| vec![None; r.when.len()]).collect();
        RuleList { rules, detectors }
    }

    /// Checks and compiles `rules`.
    pub fn new(rules: Vec<Rule>) -> Result<RuleList, RuleError> {
        if rules.is_empty() {
            return Err(RuleError::Empty);
        }
        let mut detectors = Vec::with_capacity(rules.len());
        for (n, rule) in rules.iter().enumerate() {
            let invalid = |why: String| RuleError::Invalid {
                position: n + 1,
                name: rule.name.clone(),
                why,
            };
            if rule.name.trim().is_empty() || rule.name.len() > 200 {
                return Err(invalid(
                    "a rule needs a name of at most 200 characters".into(),
                ));
            }
            if rule.action == Action::Reject
                && rule.text.as_deref().is_none_or(|t| t.trim().is_empty())
            {
                return Err(invalid(
                    "a reject rule needs the text of its refusal".into(),
                ));
            }
            if let Some(text) = &rule.text
                && (text.len() > 400 || text.chars().any(char::is_control))
            {
                return Err(invalid(
                    "the text must be one line of at most 400 characters".into(),
                ));
            }
            let mut compiled = Vec::with_capacity(rule.when.len());
            for condition in &rule.when {
                compiled.push(match condition {
                    Condition::Contains {
                        detector,
                        min_count,
                    } => {
                        if *min_count == 0 {
                            return Err(invalid("min_count must be at least 1".into()));
                        }
                        Some(detector.compile().map_err(|e| invalid(e.to_string()))?)
                    }
                    Condition::Header { name, .. } if !valid_header_name(name) => {
                        return Err(invalid(format!("“{name}” is not a header name")));
                    }
                    _ => None,
                });
            }
            detectors.push(compiled);
        }
        Ok(RuleList { rules, detectors })
    }

    /// Parses and checks the stored JSON form.
    pub fn from_json(json: &str) -> Result<RuleList, RuleError> {
        let rules: Vec<Rule> =
            serde_json::from_str(json).map_err(|e| RuleError::Syntax(e.to_string()))?;
        RuleList::new(rules)
    }

    /// The stored JSON form (pretty, stable field order).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.rules).unwrap_or_else(|_| "[]".into())
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether any rule looks at content: only then is the text extracted.
    pub fn needs_content(&self) -> bool {
        self.rules.iter().any(|r| {
            r.when
                .iter()
                .any(|c| matches!(c, Condition::Contains { .. }))
        })
    }

    /// The first rule whose conditions all hold for `recipient` decides.
    pub fn decide(&self, mail: &Mail, recipient: &Recipient) -> Decision {
        for (n, rule) in self.rules.iter().enumerate() {
            let mut findings = Vec::new();
            let mut unknown_matched = Vec::new();
            let holds = rule.when.iter().zip(&self.detectors[n]).all(|(c, d)| {
                holds(
                    c,
                    d.as_ref(),
                    rule.unknown,
                    mail,
                    recipient,
                    &mut findings,
                    &mut unknown_matched,
                )
            });
            if holds {
                return Decision {
                    rule: Some((n + 1, rule.name.clone())),
                    action: rule.action,
                    text: rule.text.clone(),
                    findings,
                    unknown_matched,
                };
            }
        }
        Decision {
            rule: None,
            action: Action::Pass,
            text: None,
            findings: Vec::new(),
            unknown_matched: Vec::new(),
        }
    }
}

fn valid_header_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 100 && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

/// `address` is one of `list` (addresses, `@domain` or `domain`).
fn address_in(address: &str, list: &[String]) -> bool {
    let address = address.trim().to_ascii_lowercase();
    let domain = address.rsplit_once('@').map(|(_, d)| d).unwrap_or_default();
    list.iter().any(|entry| {
        let entry = entry.trim().to_ascii_lowercase();
        if entry.contains('@') && !entry.starts_with('@') {
            entry == address
        } else {
            entry.trim_start_matches('@') == domain
        }
    })
}

#[allow(clippy::too_many_arguments)]
fn holds(
    condition: &Condition,
    detector: Option<&Detector>,
    unknown: Unknown,
    mail: &Mail,
    recipient: &Recipient,
    findings: &mut Vec<Finding>,
    unknown_matched: &mut Vec<String>,
) -> bool {
    match condition {
        Condition::SubjectKeyword { keywords } => {
            let keywords = if keywords.is_empty() {
                mail.trigger_keywords
            } else {
                keywords
            };
            let subject = mail.subject.to_lowercase();
            keywords
                .iter()
                .map(|k| k.trim().to_lowercase())
                .any(|k| !k.is_empty() && subject.contains(&k))
        }
        Condition::TriggerHeader => mail.trigger_header,
        Condition::Header { name, equals } => mail.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case(name)
                && equals
                    .as_ref()
                    .is_none_or(|want| v.trim().eq_ignore_ascii_case(want.trim()))
        }),
        Condition::Sender { any_of } => address_in(mail.sender, any_of),
        Condition::Recipient { any_of } => address_in(recipient.address, any_of),
        Condition::RecipientInternal { is } => recipient.internal == *is,
        Condition::SizeAtLeast { bytes } => mail.size >= *bytes,
        Condition::Contains {
            detector: spec,
            min_count,
        } => {
            let (Some(detector), Some(content)) = (detector, mail.content) else {
                // No content was extracted: the caller did not ask `needs_content`.
                return false;
            };
            let mut all: Vec<(String, String)> = Vec::new();
            for part in &content.texts {
                for finding in detector.findings(&part.text) {
                    if !all.iter().any(|(_, f)| *f == finding) {
                        all.push((part.part.clone(), finding));
                    }
                }
            }
            if all.len() >= *min_count {
                findings.extend(all.into_iter().map(|(part, f)| Finding {
                    detector: spec.label(),
                    part,
                    masked: mask(&f),
                }));
                return true;
            }
            if unknown == Unknown::Matches && content.has_unknown() {
                unknown_matched.extend(content.unknown.iter().map(|(p, _)| p.clone()));
                return true;
            }
            false
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::*;
    use crate::extract::PartText;

    fn mail<'a>(subject: &'a str, content: Option<&'a Extracted>, trigger: bool) -> Mail<'a> {
        static KEYWORDS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        Mail {
            subject,
            headers: &[],
            sender: "berater@bank.example",
            size: 1000,
            trigger_keywords: KEYWORDS.get_or_init(|| vec!["[secure]".into()]),
            trigger_header: trigger,
            content,
        }
    }

    const EXTERNAL: Recipient = Recipient {
        address: "kunde@example.com",
        internal: false,
    };
    const INTERNAL: Recipient = Recipient {
        address: "kollege@bank.example",
        internal: true,
    };

    fn text(t: &str) -> Extracted {
        Extracted {
            texts: vec![PartText {
                part: "attachment kontoauszug.pdf".into(),
                text: t.into(),
            }],
            unknown: vec![],
            truncated: false,
        }
    }

    #[test]
    fn the_builtin_list_is_todays_behaviour() {
        let list = RuleList::builtin();
        assert!(!list.needs_content());
        let d = list.decide(&mail("Angebot [SECURE]", None, false), &EXTERNAL);
        assert_eq!(d.action, Action::Encrypt);
        assert_eq!(d.rule.as_ref().unwrap().0, 2);
        assert_eq!(
            list.decide(&mail("Angebot", None, true), &EXTERNAL).action,
            Action::Encrypt
        );
        assert_eq!(
            list.decide(&mail("Angebot", None, false), &EXTERNAL).action,
            Action::Pass
        );
        // Internal recipients are never encrypted for, keyword or not.
        assert_eq!(
            list.decide(&mail("Angebot [secure]", None, true), &INTERNAL)
                .action,
            Action::Pass
        );
        // It round-trips through its stored form.
        let again = RuleList::from_json(&list.to_json()).unwrap();
        assert_eq!(again.rules(), list.rules());
    }

    fn iban_rule(min_count: usize, unknown: Unknown) -> Rule {
        Rule {
            name: "IBANs".into(),
            when: vec![
                Condition::RecipientInternal { is: false },
                Condition::Contains {
                    detector: DetectorSpec::Iban,
                    min_count,
                },
            ],
            action: Action::Encrypt,
            text: None,
            unknown,
        }
    }

    #[test]
    fn an_iban_rule_encrypts_a_mail_without_keyword_and_says_where_it_found_what() {
        let mut rules = vec![iban_rule(1, Unknown::Ignore)];
        rules.extend(RuleList::builtin().rules().iter().cloned());
        let list = RuleList::new(rules).unwrap();
        assert!(list.needs_content());
        let found = text("IBAN DE89 3704 0044 0532 0130 00");
        let d = list.decide(&mail("Kontoauszug", Some(&found), false), &EXTERNAL);
        assert_eq!(d.action, Action::Encrypt);
        assert_eq!(d.rule, Some((1, "IBANs".into())));
        assert_eq!(d.findings.len(), 1);
        assert_eq!(d.findings[0].part, "attachment kontoauszug.pdf");
        assert_eq!(d.findings[0].masked, "DE******************00");
        // A broken check digit is no IBAN: the built-in rules decide (pass).
        let broken = text("IBAN DE89 3704 0044 0532 0130 01");
        let d = list.decide(&mail("Kontoauszug", Some(&broken), false), &EXTERNAL);
        assert_eq!(d.action, Action::Pass);
        assert_eq!(d.rule.unwrap().0, 5);
        // Internal recipients are still plain (the rule's first condition).
        assert_eq!(
            list.decide(&mail("Kontoauszug", Some(&found), false), &INTERNAL)
                .action,
            Action::Pass
        );
    }

    #[test]
    fn min_count_and_unknown_parts() {
        let two = RuleList::new(vec![iban_rule(2, Unknown::Ignore)]).unwrap();
        let one_iban = text("DE89370400440532013000 and again DE89 3704 0044 0532 0130 00");
        assert_eq!(
            two.decide(&mail("x", Some(&one_iban), false), &EXTERNAL)
                .action,
            Action::Pass,
            "the same IBAN twice is one finding"
        );
        let mut unreadable = text("nothing here");
        unreadable
            .unknown
            .push(("attachment scan.pdf".into(), "an encrypted PDF".into()));
        let lenient = RuleList::new(vec![iban_rule(1, Unknown::Ignore)]).unwrap();
        assert_eq!(
            lenient
                .decide(&mail("x", Some(&unreadable), false), &EXTERNAL)
                .action,
            Action::Pass
        );
        let strict = RuleList::new(vec![iban_rule(1, Unknown::Matches)]).unwrap();
        let d = strict.decide(&mail("x", Some(&unreadable), false), &EXTERNAL);
        assert_eq!(d.action, Action::Encrypt);
        assert_eq!(d.unknown_matched, vec!["attachment scan.pdf".to_string()]);
    }

    #[test]
    fn rule_order_decides_and_bad_rules_are_refused_with_their_position() {
        let reject = Rule {
            name: "No patient data in clear".into(),
            when: vec![Condition::Contains {
                detector: DetectorSpec::Keywords {
                    words: vec!["Diagnose".into()],
                },
                min_count: 1,
            }],
            action: Action::Reject,
            text: Some("Patient data must be sent encrypted: add [secure].".into()),
            unknown: Unknown::Ignore,
        };
        let keyword = RuleList::builtin().rules()[1].clone();
        let content = text("Die Diagnose lautet ...");
        let list = RuleList::new(vec![keyword.clone(), reject.clone()]).unwrap();
        assert_eq!(
            list.decide(&mail("[secure] Befund", Some(&content), false), &EXTERNAL)
                .action,
            Action::Encrypt
        );
        assert_eq!(
            list.decide(&mail("Befund", Some(&content), false), &EXTERNAL)
                .action,
            Action::Reject
        );
        let list = RuleList::new(vec![reject.clone(), keyword]).unwrap();
        assert_eq!(
            list.decide(&mail("[secure] Befund", Some(&content), false), &EXTERNAL)
                .action,
            Action::Reject
        );

        let mut no_text = reject.clone();
        no_text.text = None;
        assert!(matches!(
            RuleList::new(vec![no_text]),
            Err(RuleError::Invalid { position: 1, .. })
        ));
        let bad_pattern = Rule {
            when: vec![Condition::Contains {
                detector: DetectorSpec::Pattern { regex: "(".into() },
                min_count: 1,
            }],
            ..reject.clone()
        };
        let err =
            RuleList::new(vec![RuleList::builtin().rules()[0].clone(), bad_pattern]).unwrap_err();
        assert!(
            matches!(err, RuleError::Invalid { position: 2, .. }),
            "{err}"
        );
        assert_eq!(RuleList::new(vec![]).unwrap_err(), RuleError::Empty);
        assert!(matches!(
            RuleList::from_json("[{\"name\":\"x\",\"action\":\"explode\"}]"),
            Err(RuleError::Syntax(_))
        ));
    }

    #[test]
    fn senders_recipients_headers_and_size() {
        let rule = |when: Vec<Condition>| {
            RuleList::new(vec![Rule {
                name: "r".into(),
                when,
                action: Action::Encrypt,
                text: None,
                unknown: Unknown::Ignore,
            }])
            .unwrap()
        };
        let headers = vec![("X-Classification".to_string(), " Confidential ".to_string())];
        let m = Mail {
            headers: &headers,
            ..mail("x", None, false)
        };
        let enc = |list: &RuleList, r: &Recipient| list.decide(&m, r).action == Action::Encrypt;
        assert!(enc(
            &rule(vec![Condition::Sender {
                any_of: vec!["@BANK.example".into()]
            }]),
            &EXTERNAL
        ));
        assert!(!enc(
            &rule(vec![Condition::Sender {
                any_of: vec!["other@bank.example".into()]
            }]),
            &EXTERNAL
        ));
        assert!(enc(
            &rule(vec![Condition::Recipient {
                any_of: vec!["example.com".into()]
            }]),
            &EXTERNAL
        ));
        assert!(enc(
            &rule(vec![Condition::Header {
                name: "x-classification".into(),
                equals: Some("confidential".into())
            }]),
            &EXTERNAL
        ));
        assert!(!enc(
            &rule(vec![Condition::Header {
                name: "X-Classification".into(),
                equals: Some("public".into())
            }]),
            &EXTERNAL
        ));
        assert!(enc(
            &rule(vec![Condition::SizeAtLeast { bytes: 1000 }]),
            &EXTERNAL
        ));
        assert!(!enc(
            &rule(vec![Condition::SizeAtLeast { bytes: 1001 }]),
            &EXTERNAL
        ));
    }
}
