use super::*;

fn owned(pairs: Vec<(&'static str, String)>) -> Vec<(String, String)> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

#[test]
fn every_default_round_trips_and_passes_its_own_check() {
    let defaults = Settings::default();
    let pairs = defaults.to_pairs();
    assert_eq!(
        pairs.len(),
        REGISTRY.len(),
        "one stored pair per declaration"
    );
    for (key, text) in &pairs {
        let def = definition(key).expect("declared");
        assert_eq!(def.check(text).as_ref(), Ok(text), "{key}");
    }
    assert_eq!(Settings::from_pairs(&owned(pairs)), defaults);
}

#[test]
fn keys_are_unique_and_every_form_has_settings() {
    let mut keys: Vec<&str> = REGISTRY.iter().map(|d| d.key).collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(keys.len(), REGISTRY.len());
    for group in Group::FORMS {
        assert!(group.settings().count() > 0, "{group:?}");
        assert_eq!(Group::from_slug(group.slug()), Some(group));
    }
    assert_eq!(
        Group::from_slug("unlisted"),
        None,
        "no form for unlisted settings"
    );
}

#[test]
fn changed_values_round_trip() {
    let s = Settings {
        trigger_keywords: vec!["[secure]".into(), "[vertraulich]".into()],
        internal_domains: vec!["bank.example".into()],
        max_recipients: 7,
        credentials_to: CredentialsTo::Address("ops@bank.example".into()),
        reset_mail_to: ResetDelivery::Sender,
        recovery_policy: RecoveryPolicy::AnswerOnly,
        trusted_proxies: vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()],
        admin_allowed_networks: vec!["127.0.0.0/8".parse().unwrap()],
        metrics_token_hash: "ab".repeat(32),
        admin_totp_required: false,
        ..Settings::default()
    };
    assert_eq!(Settings::from_pairs(&owned(s.to_pairs())), s);
}

#[test]
fn settings_sheet_defaults() {
    let s = Settings::default();
    assert_eq!(s.credentials_to, CredentialsTo::Sender);
    assert_eq!(s.reset_mail_to, ResetDelivery::Link);
    assert_eq!(s.neutral_subject, "");
    assert_eq!(s.recovery_policy, RecoveryPolicy::AnswerAndCode);
    assert!(!s.allow_own_questions);
    assert!(
        s.admin_totp_required,
        "TOTP is required unless an admin opts out"
    );
    assert_eq!(s.session_absolute_secs, 43_200);
    assert_eq!(s.admin_session_absolute_secs, 28_800);
    assert_eq!(s.source_failure_limit, 20);
    assert!(s.admin_allowed_networks.is_empty());
    assert_eq!(s.metrics_token_hash, "");
    assert!(s.trusted_proxies.is_empty());
}

#[test]
fn bad_stored_values_keep_defaults() {
    let s = Settings::from_pairs(&[
        ("limits.max_recipients".into(), "many".into()),
        ("branding.accent_color".into(), "red;}".into()),
        (
            "network.trusted_proxies".into(),
            "10.0.0.0/8\nnot-a-net".into(),
        ),
        ("no.such.setting".into(), "1".into()),
    ]);
    assert_eq!(s, Settings::default());
}

#[test]
fn the_old_reset_text_reads_as_link() {
    let s = Settings::from_pairs(&[("mail.reset_mail_to".into(), "recipient".into())]);
    assert_eq!(s.reset_mail_to, ResetDelivery::Link);
    assert_eq!(check("mail.reset_mail_to", "recipient").unwrap().1, "link");
}

#[test]
fn validation_refuses_what_it_should() {
    let refused = [
        ("limits.max_recipients", "-1"),
        ("limits.max_recipients", "ten"),
        ("security.lockout_secs", "1.5"),
        ("mail.keep_subject", "maybe"),
        ("policy.trigger_keywords", " \n , "),
        ("policy.trigger_header", "X-Bad Header:"),
        ("policy.internal_domains", "bank.example\nuser@bank.example"),
        ("web.public_url", "ftp://x.example"),
        ("web.public_url", "https://"),
        ("mail.notification_from", "nobody"),
        ("mail.credentials_to", "someone"),
        ("mail.reset_mail_to", "everyone"),
        ("security.recovery", "answer"),
        ("security.session_absolute_secs", "0"),
        ("security.admin_session_absolute_secs", "0"),
        ("security.source_failure_limit", "0"),
        ("branding.accent_color", "red;}"),
        ("i18n.default_language", "xx"),
        ("delivery.next_hop", "ftp://relay"),
        ("network.trusted_proxies", "10.0.0.0/33"),
        ("admin.allowed_networks", "127.0.0.0/8, localhost"),
        ("metrics.token_sha256", "not-a-hash"),
    ];
    for (key, value) in refused {
        match check(key, value) {
            Err(SettingError::InvalidValue { key: k, .. }) => assert_eq!(k, key),
            other => panic!("{key} = {value:?} gave {other:?}"),
        }
    }
}

#[test]
fn validation_normalises_what_it_accepts() {
    let accepted = [
        ("mail.keep_subject", "on", "true"),
        (
            "policy.internal_domains",
            "Bank.Example, sub.bank.example",
            "bank.example\nsub.bank.example",
        ),
        (
            "web.public_url",
            "https://gw.example/",
            "https://gw.example",
        ),
        ("mail.credentials_to", " sender ", "sender"),
        (
            "network.trusted_proxies",
            "10.0.0.0/8, 192.0.2.1",
            "10.0.0.0/8\n192.0.2.1/32",
        ),
        ("i18n.default_language", "de-DE", "de"),
        ("delivery.next_hop", "", ""),
        ("metrics.token_sha256", &"AB".repeat(32), &"ab".repeat(32)),
    ];
    for (key, value, stored) in accepted {
        assert_eq!(
            check(key, value),
            Ok((key.to_string(), stored.to_string())),
            "{key}"
        );
    }
}

#[test]
fn names_and_domains() {
    assert_eq!(
        check("no.such", "1"),
        Err(SettingError::UnknownKey("no.such".into()))
    );
    assert_eq!(
        check("branding.org_name@bank.example", "X"),
        Err(SettingError::NotPerDomain("branding.org_name"))
    );
    assert!(matches!(
        check("mail.keep_subject@not a domain", "true"),
        Err(SettingError::BadDomain(_))
    ));
    assert_eq!(
        check("mail.keep_subject@Partner.Example", "false"),
        Ok(("mail.keep_subject@partner.example".into(), "false".into()))
    );
}

#[test]
fn per_domain_overrides_apply_to_their_domain_only() {
    let s = Settings::from_pairs(&[
        ("mail.keep_subject".into(), "true".into()),
        ("mail.keep_subject@partner.example".into(), "false".into()),
        // Not per domain: ignored.
        ("branding.org_name@partner.example".into(), "Evil".into()),
        // Invalid: the domain keeps the global value.
        ("mail.keep_subject@other.example".into(), "maybe".into()),
    ]);
    assert!(s.keep_subject);
    assert!(!s.for_domain("partner.example").keep_subject);
    assert!(!s.for_domain("PARTNER.example").keep_subject);
    assert_eq!(s.for_domain("partner.example").org_name, "Sealpost");
    assert!(
        s.for_domain("bank.example").keep_subject,
        "no override: the default"
    );
    assert!(s.for_domain("other.example").keep_subject);
    assert_eq!(
        s.override_pairs(),
        vec![(
            "mail.keep_subject@partner.example".to_string(),
            "false".to_string()
        )]
    );
}

#[test]
fn internal_domains_match_exactly() {
    let s = Settings {
        internal_domains: vec!["bank.example".into()],
        ..Settings::default()
    };
    assert!(s.is_internal("a@bank.example"));
    assert!(!s.is_internal("a@notbank.example"));
    assert!(!s.is_internal("a@sub.bank.example"));
}

/// A domain entered in either IDNA spelling is stored as addresses are normalised, so internal
/// domains and per-domain overrides match mail to either spelling.
#[test]
fn idn_domains_are_stored_in_the_spelling_addresses_use() {
    for written in [
        "XN--MNCHEN-3YA.example",
        "München.EXAMPLE",
        "münchen.example.",
    ] {
        assert_eq!(
            checks::domain(written).unwrap(),
            "münchen.example",
            "{written}"
        );
    }
    assert!(checks::domain("not a domain").is_err());
    assert!(checks::domain("a@b").is_err());
    let s = Settings::from_pairs(&[
        (
            "policy.internal_domains".to_string(),
            "xn--mnchen-3ya.example".to_string(),
        ),
        (
            "mail.keep_subject@XN--MNCHEN-3YA.example".to_string(),
            "false".to_string(),
        ),
    ]);
    assert!(s.is_internal(&crate::normalise_address("Max@MÜNCHEN.example")));
    assert!(!s.for_domain("München.example").keep_subject);
    assert!(!s.for_domain("xn--mnchen-3ya.example").keep_subject);
}

#[test]
fn link_delivery_settings_are_bounded_and_per_domain_where_declared() {
    use super::{DeliveryProfile, SettingError, check};
    let defaults = Settings::default();
    assert_eq!(defaults.delivery_profile, DeliveryProfile::Attachment);
    assert_eq!(defaults.link_days, 30);
    assert_eq!(defaults.carrier_max_size, 20 * 1024 * 1024);
    assert!(
        !defaults.link_fallback,
        "link is opt-in: it stores ciphertext"
    );

    assert_eq!(
        check("delivery.profile@Link.Example", "link").unwrap(),
        (
            "delivery.profile@link.example".to_string(),
            "link".to_string()
        )
    );
    assert!(check("delivery.profile", "cloud").is_err());
    assert!(check("delivery.link_fallback@big.example", "true").is_ok());
    for bad in ["0", "366", "-1", "many"] {
        assert!(check("delivery.link_days", bad).is_err(), "{bad}");
    }
    assert_eq!(check("delivery.link_days", "365").unwrap().1, "365");
    assert!(matches!(
        check("delivery.link_days@x.example", "7"),
        Err(SettingError::NotPerDomain("delivery.link_days"))
    ));
    assert!(check("carrier.max_size", "1000").is_err(), "below 64 KiB");
    assert!(
        check("carrier.max_size", "2000000000").is_err(),
        "above 1 GiB"
    );
    assert!(check("carrier.max_size", "65536").is_ok());

    let s = Settings::from_pairs(&[(
        "delivery.profile@link.example".to_string(),
        "link".to_string(),
    )]);
    assert_eq!(
        s.for_domain("link.example").delivery_profile,
        DeliveryProfile::Link
    );
    assert_eq!(
        s.for_domain("other.example").delivery_profile,
        DeliveryProfile::Attachment
    );
}
