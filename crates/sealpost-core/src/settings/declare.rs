//! The `registry!` macro: from the declaration table in `registry.rs` it writes the `Settings`
//! struct, its `Default`, the `REGISTRY` of definitions (form, validation), and the
//! conversion of each field to and from its stored text.

macro_rules! registry {
    (@widget $ty:ty) => { <$ty as $crate::settings::SettingValue>::WIDGET };
    (@widget $ty:ty, $widget:expr) => { $widget };
    (@check) => { $crate::settings::checks::Checked::Ok };
    (@check $check:expr) => { $check };
    (@flag) => { false };
    (@flag $flag:literal) => { $flag };
    ($(
        $group:ident {
            $(
                $(#[doc = $doc:literal])+
                $field:ident: $ty:ty = $default:expr => $key:literal {
                    label: $label:literal,
                    $(help: $help:literal,)?
                    $(widget: $widget:expr,)?
                    $(check: $check:expr,)?
                    $(per_domain: $per_domain:literal,)?
                    $(secret: $secret:literal,)?
                }
            )+
        }
    )+) => {
        /// A snapshot of all run-time settings (see `registry.rs` for each one's declaration).
        #[derive(Debug, Clone, PartialEq)]
        pub struct Settings {
            $($( $(#[doc = $doc])+ pub $field: $ty, )+)+
            /// Per-recipient-domain overrides by lower-case domain; read them through
            /// `Settings::for_domain`.
            pub domain_overrides: std::collections::BTreeMap<String, $crate::settings::DomainSettings>,
            /// The boot configuration's `hostname` (not stored, not a run-time setting): the
            /// right-hand side of every generated Message-ID. `SettingsHandle` keeps it across
            /// reloads.
            pub hostname: String,
        }

        impl Default for Settings {
            fn default() -> Self {
                Settings {
                    $($( $field: $default, )+)+
                    domain_overrides: std::collections::BTreeMap::new(),
                    hostname: "localhost".to_string(),
                }
            }
        }

        /// Every setting's definition, in form order.
        pub static REGISTRY: &[$crate::settings::SettingDef] = &[$($(
            $crate::settings::SettingDef {
                key: $key,
                group: $crate::settings::Group::$group,
                label: $label,
                help: concat!("" $(, $help)?),
                widget: registry!(@widget $ty $(, $widget)?),
                per_domain: registry!(@flag $($per_domain)?),
                secret: registry!(@flag $($secret)?),
                normalise: |text| {
                    $crate::settings::read::<$ty>(text, registry!(@check $($check)?))
                        .map(|v| $crate::settings::SettingValue::to_setting(&v))
                },
            },
        )+)+];

        impl Settings {
            /// Setting keys and their text form, as stored in the database (overrides aside).
            pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
                vec![$($(
                    ($key, $crate::settings::SettingValue::to_setting(&self.$field)),
                )+)+]
            }

            /// The stored text of one setting by key.
            pub fn text_of(&self, key: &str) -> Option<String> {
                match key {
                    $($( $key => Some($crate::settings::SettingValue::to_setting(&self.$field)), )+)+
                    _ => None,
                }
            }

            /// Sets one field from its text, validated like any input; an unknown key is an
            /// error too.
            pub(super) fn apply(&mut self, key: &str, text: &str) -> Result<(), String> {
                match key {
                    $($( $key => {
                        self.$field = $crate::settings::read::<$ty>(text, registry!(@check $($check)?))?;
                        Ok(())
                    } )+)+
                    _ => Err("unknown setting".to_string()),
                }
            }
        }
    };
}

pub(crate) use registry;
