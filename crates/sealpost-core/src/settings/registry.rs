//! Every run-time setting, declared once: field, type, default, stored key, form group, label,
//! help, and optionally a widget, a check, per-domain overrides and whether it is a secret.
//! The `Settings` struct, its defaults, persistence, validation and the admin form all come
//! from this table. Adding a setting is adding an entry here.
//!
//! All settings take effect on the running nodes within seconds (nodes reload on change);
//! the SMTP limits apply from the next connection.

use ipnet::IpNet;

use super::checks;
use super::choices::{
    ClientAddress, CredentialsTo, DeliveryProfile, FirstContact, RecoveryPolicy, ReportSubject,
    ResetDelivery, SecondFactorPolicy,
};
use super::declare::registry;
use super::logo::BrandLogo;
use super::value::Widget;

const LANGUAGES: &[(&str, &str)] = &[("en", "English"), ("de", "Deutsch")];

registry! {
    Mail {
        /// Subject keywords that ask for encryption (removed from the subject).
        trigger_keywords: Vec<String> = vec!["[secure]".to_string()] => "policy.trigger_keywords" {
            label: "Trigger keywords in the subject",
            help: "One per line; a subject containing one is encrypted and the keyword removed.",
            check: checks::at_least_one,
        }
        /// A mail with this header set to yes is encrypted too.
        trigger_header: String = "X-Sealpost-Encrypt".to_string() => "policy.trigger_header" {
            label: "Trigger header",
            help: "A mail with this header set to yes is encrypted too.",
            check: checks::header_name,
        }
        /// Carrier mail keeps the original subject (else the neutral subject).
        keep_subject: bool = true => "mail.keep_subject" {
            label: "Keep the original subject in the carrier mail",
            help: "Off: a neutral subject replaces it.",
            per_domain: true,
        }
        /// The neutral subject of carrier mails ("" = the locale's neutral subject).
        neutral_subject: String = String::new() => "mail.neutral_subject" {
            label: "Neutral subject",
            help: "Used when the original subject is not kept; empty uses the language's standard text.",
        }
        /// secure.htm submits itself when opened (the old behaviour); off, the recipient presses
        /// its button.
        carrier_auto_open: bool = false => "carrier.auto_open" {
            label: "secure.htm opens the portal by itself",
            help: "Adds a script that submits secure.htm on load. Off (recommended): the page has no script and the recipient presses its button; mail systems quarantine HTML attachments that submit themselves.",
        }
        /// How the payload travels to recipients of a domain.
        delivery_profile: DeliveryProfile = DeliveryProfile::Attachment => "delivery.profile" {
            label: "Delivery profile",
            help: "attachment: secure.htm attached (default). datafile: message.sealpost attached with a link to the upload page, for domains that block HTML attachments. link (opt-in): the carrier links to this message in the portal; the server then keeps the encrypted message (ciphertext only, never readable without the recipient's key) for delivery.link_days days and deletes it afterwards; secure.htm is still attached while the carrier stays under carrier.max_size.",
            per_domain: true,
        }
        /// Recipients in these domains get mail unencrypted (lower-case).
        internal_domains: Vec<String> = Vec::new() => "policy.internal_domains" {
            label: "Internal domains",
            help: "Recipients in these domains get the mail unencrypted.",
            check: checks::domains,
        }
        /// Next hop override ("" = the node's configured `delivery.relay`).
        next_hop: String = String::new() => "delivery.next_hop" {
            label: "Next hop",
            help: "smtp://host:port or maildir:PATH; empty uses the node's configured relay.",
            check: checks::next_hop,
        }
        /// Largest inbound message, bytes.
        max_message_size: usize = 50 * 1024 * 1024 => "limits.max_message_size" {
            label: "Maximum message size (bytes)",
            help: "Applies from the next SMTP connection.",
        }
        /// Most recipients per inbound message.
        max_recipients: usize = 100 => "limits.max_recipients" {
            label: "Maximum recipients per message",
            help: "Applies from the next SMTP connection.",
        }
        /// Largest envelope the portal opens, bytes.
        max_open_size: usize = 200 * 1024 * 1024 => "limits.max_open_size" {
            label: "Largest secure.htm the portal opens (bytes)",
        }
        /// Sender address of generated mails (credentials, resets, bounces).
        notification_from: String = "noreply@localhost".to_string() => "mail.notification_from" {
            label: "Notifications come from",
            help: "Sender address of credentials and password-reset mails.",
            check: checks::address,
        }
        /// Who receives the credentials mail of a new account.
        credentials_to: CredentialsTo = CredentialsTo::Sender => "mail.credentials_to" {
            label: "Credentials of new accounts go to",
            help: "\"sender\" (the sender of the first mail) or a fixed address.",
        }
        /// How a password reset reaches the recipient.
        reset_mail_to: ResetDelivery = ResetDelivery::Link => "mail.reset_mail_to" {
            label: "Password resets are mailed to",
            help: "link: the recipient gets a one-time link (valid 24 hours) to set a new password; sender: a generated password goes to the last sender, who hands it on by another channel. A password is never mailed to the recipient's own mailbox, where the encrypted messages arrive too.",
        }
        /// Delivery gives up (and bounces) after this long.
        retry_give_up_secs: i64 = 5 * 24 * 3600 => "delivery.give_up_secs" {
            label: "Give up delivery after (seconds)",
            help: "Retries back off from the configured first delay (delivery.retry_base_secs, restart) up to this time.",
        }
        /// Days the encrypted copy of a `link` delivery is kept, then deleted.
        link_days: u32 = 30 => "delivery.link_days" {
            label: "Link copies are kept (days)",
            help: "Under the link profile (or the size fallback) the server stores the encrypted message this many days (1-365), then deletes it; after that the link says it has expired.",
            check: checks::link_days,
        }
        /// Largest carrier handed to the next hop, bytes.
        carrier_max_size: usize = 20 * 1024 * 1024 => "carrier.max_size" {
            label: "Largest carrier mail (bytes)",
            help: "A carrier above this size switches to the link profile where delivery.link_fallback allows it for the domain; otherwise the sender gets a bounce saying the message is too large. Nothing larger is handed to the next hop.",
            check: checks::carrier_max_size,
        }
        /// An oversized carrier may switch to `link` for this domain.
        link_fallback: bool = false => "delivery.link_fallback" {
            label: "Oversized carriers switch to a link",
            help: "Off by default: a link stores the encrypted message on the server for delivery.link_days days. On: a carrier above carrier.max_size is sent as a link (without secure.htm) instead of bouncing.",
            per_domain: true,
        }
        /// Portal replies: reply-all to internal addresses of the original allowed.
        reply_allow_internal_all: bool = true => "reply.allow_internal_all" {
            label: "Replies may go to internal addresses of the thread",
        }
        /// Portal replies: total attachment size, bytes (0 = attachments off).
        reply_max_attachment_bytes: usize = 10 * 1024 * 1024 => "reply.max_attachment_bytes" {
            label: "Reply attachments, total bytes (0 = none)",
        }
        /// Portal replies: the recipient also gets an encrypted copy of their reply.
        reply_encrypted_copy: bool = false => "reply.encrypted_copy" {
            label: "Recipients get an encrypted copy of their reply",
        }
        /// Proof-of-delivery reports name the subject by its SHA-256 or in clear.
        report_subject: ReportSubject = ReportSubject::Hash => "messages.report_subject" {
            label: "Delivery reports show the subject as",
            help: "hash (default): its SHA-256 only. clear: the subject itself, kept in the ledger from sealing on (mail sealed before the change has only the hash).",
        }
        /// Message control: days until a sealed message expires (0 = never), per domain;
        /// a mail's `X-Sealpost-Expires` header overrides it.
        message_expiry_days: usize = 0 => "messages.expiry_days" {
            label: "Messages expire after (days, 0 = never)",
            help: "After this, the message can no longer be opened: its secret is deleted. A mail's X-Sealpost-Expires header (days or an RFC 3339 date) sets its own.",
            per_domain: true,
        }
        /// Message control: how much of a reader's client address the ledger keeps.
        message_client_address: ClientAddress = ClientAddress::Truncated => "messages.client_address" {
            label: "Client address in the message timeline",
            help: "full, truncated (IPv4 /24, IPv6 /48) or none.",
        }
        /// Message control: ledger rows and events are deleted after this many days.
        message_retention_days: usize = 400 => "messages.retention_days" {
            label: "Keep message metadata (days)",
            help: "Ledger rows and their timelines older than this are deleted.",
        }
        /// Message control: the sender is told when a recipient first opens a message, with
        /// a single-use link to its status; per recipient domain.
        message_receipts: bool = false => "messages.receipts" {
            label: "Senders are told when a message is first opened",
            help: "Off by default. On: an internal sender gets a notice at the first open of each copy, with a single-use link to the message's status, where they can also revoke it.",
            per_domain: true,
        }
    }
    Security {
        /// Minimum length of a recipient's chosen password.
        password_min_length: usize = 12 => "security.password_min_length" {
            label: "Minimum password length",
        }
        /// A generated password must be replaced at the first login.
        force_password_change: bool = true => "security.force_password_change" {
            label: "Generated passwords must be changed at first login",
        }
        /// Failed logins of one account before it is locked.
        lockout_threshold: i64 = 5 => "security.lockout_threshold" {
            label: "Failed logins before lockout",
        }
        /// How long a lockout lasts, seconds.
        lockout_secs: i64 = 15 * 60 => "security.lockout_secs" {
            label: "Lockout duration (seconds)",
        }
        /// Failed sign-ins or answers per client address per lockout window before that
        /// address is throttled.
        source_failure_limit: i64 = 20 => "security.source_failure_limit" {
            label: "Failed attempts per client address before it is throttled",
            help: "Counted over the lockout duration, across all accounts.",
            check: checks::positive,
        }
        /// Wrong secret answers before the reset is blocked (until an admin helps).
        secret_answer_max_attempts: i64 = 5 => "security.secret_answer_max_attempts" {
            label: "Wrong secret answers before the reset is blocked",
        }
        /// What a recipient must show to reset a forgotten password.
        recovery_policy: RecoveryPolicy = RecoveryPolicy::AnswerAndCode => "security.recovery" {
            label: "Password recovery needs",
            help: "answer+code (recommended): a reset needs the secret answer and a one-time code mailed to the account's address. answer-only is weaker: whoever knows or guesses the answer can take over the account, without access to its mailbox.",
        }
        /// How a new recipient account gets its first way in.
        first_contact: FirstContact = FirstContact::Sender => "recipients.first_contact" {
            label: "First contact of new recipients",
            help: "sender: a generated password goes to the internal sender, who hands it on (the high-assurance way). mailbox-code: no password is generated and nothing goes to the sender; the recipient asks for a 6-digit code to their own address (valid 15 minutes, 5 tries) and then chooses a password. An account may then be created for mail from any sender allowed to relay.",
            per_domain: true,
        }
        /// Recipients with a password may also sign in with a code mailed to their address.
        code_sign_in: bool = false => "recipients.code_sign_in" {
            label: "Recipients may sign in with a mailed code",
            help: "Off: only accounts without a password yet (mailbox-code) sign in with a code. On: every recipient may choose \"e-mail me a code\" instead of the password; whoever reads the mailbox can then sign in.",
            per_domain: true,
        }
        /// Whether recipients must sign in with a second factor (an authenticator app).
        second_factor: SecondFactorPolicy = SecondFactorPolicy::Optional => "recipients.second_factor" {
            label: "Second factor of recipients",
            help: "optional: recipients may enrol an authenticator app (TOTP) in their profile. required: every recipient of the domain enrols one at the next sign-in and gives a code after the password or mailbox code at every sign-in (a remembered device skips the code).",
            per_domain: true,
        }
        /// Days a "remember this device" cookie skips the second factor (0 = never offered).
        remember_device_days: i64 = 30 => "recipients.remember_device_days" {
            label: "Remember a device for the second factor (days)",
            help: "A checkbox on the code step sets a device cookie that skips the second factor (never the password) for this many days; revoked when the password or a factor changes. 0: not offered.",
            check: checks::non_negative,
        }
        /// Recipients may write their own secret question.
        allow_own_questions: bool = false => "security.own_questions" {
            label: "Recipients may write their own secret question",
            help: "Risk: the forgotten-password page must then show that text, which proves the account exists and often hints at the answer; standard questions look the same for every address.",
        }
        /// Portal sessions end after this long without a request.
        session_idle_secs: i64 = 30 * 60 => "security.session_idle_secs" {
            label: "Portal session idle timeout (seconds)",
        }
        /// Portal sessions end this long after sign-in even when in use.
        session_absolute_secs: i64 = 12 * 3600 => "security.session_absolute_secs" {
            label: "Portal session lifetime (seconds)",
            help: "A portal session ends this long after sign-in even when in use.",
            check: checks::positive,
        }
        /// Admin sessions end after this long without a request.
        admin_session_idle_secs: i64 = 15 * 60 => "security.admin_session_idle_secs" {
            label: "Admin session idle timeout (seconds)",
        }
        /// Admin sessions end this long after sign-in even when in use.
        admin_session_absolute_secs: i64 = 8 * 3600 => "security.admin_session_absolute_secs" {
            label: "Admin session lifetime (seconds)",
            help: "An admin session ends this long after sign-in even when in use.",
            check: checks::positive,
        }
        /// Accounts expire this many days after the last login.
        account_validity_days: i64 = 365 => "security.account_validity_days" {
            label: "Account validity after the last login (days)",
        }
        /// TOTP second factor mandatory for all admins.
        admin_totp_required: bool = true => "security.admin_totp_required" {
            label: "Second factor (TOTP) mandatory for admins",
        }
        /// How long an opened secure.htm waits for the recipient to sign in, seconds.
        temp_open_ttl_secs: i64 = 30 * 60 => "portal.temp_open_ttl_secs" {
            label: "Opened secure.htm waits for sign-in (seconds)",
        }
    }
    Network {
        /// The portal's public URL, without a trailing slash.
        public_url: String = "https://localhost:8443".to_string() => "web.public_url" {
            label: "Portal public URL",
            help: "Baked into every secure.htm sent from now on.",
            check: checks::web_url,
        }
        /// Old public host names that redirect to `public_url`.
        legacy_hosts: Vec<String> = Vec::new() => "network.legacy_hosts" {
            label: "Legacy host names",
            help: "Old portal names (inside secure.htm files already sent); requests to them are redirected to the public URL. The TLS certificate must cover them.",
        }
        /// Peers whose X-Forwarded-For / X-Forwarded-Proto are trusted.
        trusted_proxies: Vec<IpNet> = Vec::new() => "network.trusted_proxies" {
            label: "Trusted proxies",
            help: "Load balancers whose X-Forwarded-For is believed.",
        }
        /// The admin UI (and /metrics without a token) answers only clients in these
        /// networks; empty = on the admin listener only.
        admin_allowed_networks: Vec<IpNet> = Vec::new() => "admin.allowed_networks" {
            label: "Admin networks",
            help: "On the public listener the admin UI answers only clients in these networks (nobody while empty); on web.admin_listen it answers everyone until networks are set. /metrics answers these networks without a token.",
        }
    }
    Branding {
        /// Shown in the portal, secure.htm and generated mails.
        org_name: String = "Sealpost".to_string() => "branding.org_name" {
            label: "Organisation name",
            help: "Shown in the portal, secure.htm and generated mails.",
        }
        /// Accent colour `#RRGGBB`.
        accent_color: String = "#1f5fa8".to_string() => "branding.accent_color" {
            label: "Accent colour",
            help: "#RRGGBB; white text on it must reach a contrast of 4.5:1 (WCAG AA), so light colours are refused.",
            check: checks::accent_colour,
        }
        /// The organisation's logo (PNG or JPEG, a `data:` URL), served at `/brand/logo`.
        logo: BrandLogo = BrandLogo::default() => "branding.logo" {
            label: "Logo",
            help: "Paste a PNG or JPEG as a data URL (data:image/png;base64,…), at most 32 KiB; empty = no logo. Shown in the portal's header. SVG is not accepted (it can carry scripts).",
        }
        /// How a recipient checks a mail is genuine: a phone number or URL.
        support_contact: String = String::new() => "branding.support_contact" {
            label: "Support contact",
            help: "Phone number or URL where recipients can check that a secure mail is genuine; shown in the portal and the mails.",
            check: checks::support_contact,
        }
        /// The organisation's imprint (legal notice), https.
        imprint_url: String = String::new() => "branding.imprint_url" {
            label: "Imprint URL",
            help: "https:// link shown in the portal's footer and the mails; empty = none.",
            check: checks::optional_https_url,
        }
        /// The organisation's privacy notice, https.
        privacy_url: String = String::new() => "branding.privacy_url" {
            label: "Privacy notice URL",
            help: "https:// link shown in the portal's footer and the mails; empty = none.",
            check: checks::optional_https_url,
        }
        /// Language of the portal and mails when nothing better is known.
        default_language: String = "en".to_string() => "i18n.default_language" {
            label: "Default language",
            widget: Widget::Choice(LANGUAGES),
            check: checks::language,
        }
    }
    Unlisted {
        /// SHA-256 (hex) of the bearer token that may read /metrics ("" = none). Made by the
        /// network settings' "new metrics token" action, never typed in.
        metrics_token_hash: String = String::new() => "metrics.token_sha256" {
            label: "Metrics token (SHA-256)",
            check: checks::sha256_hex,
            secret: true,
        }
    }
}
