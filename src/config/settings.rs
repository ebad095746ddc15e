//! How a setting of the global file is declared: once, in its section's `section!` block, with
//! its type, default, bounds and whether a reload applies it. This module owns that macro, the
//! table it fills ([`Setting`], [`Bound`]) and the [`Checker`] that validates raw values and
//! collects every problem with its file, line, column and key. (List files, reloaded whole,
//! check their few bounded numbers with [`Bound`] too.)
//!
//! One line per setting, in one of three forms:
//!
//! ```text
//! /// doc of the field
//! max_mime_parts: usize = 10_000, 10..=10_000_000, live;        // a number: default, bounds
//! idle_timeout_secs => idle_timeout: Duration = 300, 1..=86_400, live;  // TOML key => field
//! data_dir: PathBuf as String = |c, key, v| c.path(key, v, "/var"), restart;  // read as String
//! ```
//!
//! From these the macro generates the raw serde struct (`deny_unknown_fields`, every value
//! `Spanned` for error positions), the validated struct, its `check` (in declaration order, so
//! errors come out in that order), its `SETTINGS` table and its `reload`. Keys are
//! `stringify!`-ed from the section and field names, so a mistyped key does not compile;
//! `live` or `restart` is the only way to end a line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use super::error::ConfigError;

/// Default and bounds of a numeric setting (Postfix style: declared with the setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    /// Used when the key is absent (or its value is out of range, to go on checking).
    pub default: u64,
    /// Smallest accepted value.
    pub min: u64,
    /// Largest accepted value.
    pub max: u64,
}

impl Bound {
    /// `default` with the bounds of `range` (`min..=max`).
    pub const fn new(default: u64, range: std::ops::RangeInclusive<u64>) -> Bound {
        Bound {
            default,
            min: *range.start(),
            max: *range.end(),
        }
    }

    /// `value` if it is within the bounds; otherwise the sentence that says so.
    pub fn check(&self, value: u64) -> Result<u64, String> {
        if (self.min..=self.max).contains(&value) {
            Ok(value)
        } else {
            Err(format!(
                "{value} is out of range, it must be between {} and {}",
                self.min, self.max
            ))
        }
    }
}

/// One setting of the global file, as its section declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// Dotted key, `section.name`.
    pub key: &'static str,
    /// Whether a reload of the global file applies it to the running server; otherwise the
    /// server keeps its running value and logs that the change needs a restart.
    pub live: bool,
    /// Default and bounds of a numeric setting; `None` for the others.
    pub bound: Option<Bound>,
}

/// The field type of a numeric setting, made from the `u64` of the file.
pub(super) trait FromNumber {
    /// The field's value for `n` (already within its bounds).
    fn from_number(n: u64) -> Self;
}

impl FromNumber for u64 {
    fn from_number(n: u64) -> Self {
        n
    }
}

impl FromNumber for usize {
    fn from_number(n: u64) -> Self {
        usize::try_from(n).unwrap_or(usize::MAX)
    }
}

/// Durations are whole seconds in the file (their keys end in `_secs`).
impl FromNumber for Duration {
    fn from_number(n: u64) -> Self {
        Duration::from_secs(n)
    }
}

/// Collects errors so that one run of `check` reports all of them.
pub(super) struct Checker<'a> {
    /// The file, for the errors.
    pub file: &'a Path,
    /// Its text, to turn spans into lines and columns.
    pub text: &'a str,
    /// Relative paths are relative to this (the file's directory).
    pub base: PathBuf,
    /// What was found so far, in the order it was found.
    pub errors: Vec<ConfigError>,
}

impl<'a> Checker<'a> {
    /// Report a problem at `span` of the file.
    pub fn fail(&mut self, span: std::ops::Range<usize>, key: &str, msg: impl Into<String>) {
        self.errors
            .push(ConfigError::at(self.file, self.text, span, key, msg));
    }

    /// A numeric setting: its value within `bound`, or the default (absent or out of range,
    /// which is reported).
    pub fn number<T: FromNumber>(
        &mut self,
        key: &str,
        bound: Bound,
        value: Option<&Spanned<u64>>,
    ) -> T {
        let n = match value {
            None => bound.default,
            Some(v) => bound.check(*v.get_ref()).unwrap_or_else(|msg| {
                self.fail(v.span(), key, msg);
                bound.default
            }),
        };
        T::from_number(n)
    }

    /// A path relative to the file's directory; `default` (relative to it too) when absent.
    pub fn path(&mut self, key: &str, value: Option<&Spanned<String>>, default: &str) -> PathBuf {
        let raw = value.map_or(default, |v| v.get_ref().as_str());
        if let Some(v) = value.filter(|v| v.get_ref().is_empty()) {
            self.fail(v.span(), key, "the path is empty");
        }
        self.base.join(raw)
    }
}

/// Run the check of one setting on its raw value. (A function rather than a call in the macro
/// so that the parameter types of a check written as a closure are inferred.)
pub(super) fn run<'a, R, T>(
    c: &mut Checker<'a>,
    key: &'static str,
    value: Option<&Spanned<R>>,
    check: impl FnOnce(&mut Checker<'a>, &'static str, Option<&Spanned<R>>) -> T,
) -> T {
    check(c, key, value)
}

/// Declare one section of the global file; see the module documentation for the line forms.
///
/// ```text
/// section! {
///     /// doc of the section's struct
///     [limits] Limits from RawLimits {
///         /// doc of the field
///         max_mime_parts: usize = 10_000, 10..=10_000_000, live;
///     }
/// }
/// ```
macro_rules! section {
    // Entry: read the lines one by one into a uniform form, then generate.
    (
        $(#[$meta:meta])*
        [$section:ident] $Struct:ident from $Raw:ident {
            $($lines:tt)*
        }
    ) => {
        section!(@line [$(#[$meta])* [$section] $Struct $Raw] [] $($lines)*);
    };

    // All lines read.
    (@line $head:tt [$($item:tt)*]) => {
        section!(@generate $head $($item)*);
    };

    // A number whose TOML key is not the field's name (`idle_timeout_secs => idle_timeout`).
    (@line $head:tt [$($item:tt)*]
        $(#[$doc:meta])*
        $key:ident => $field:ident : $ty:ty = $default:expr, $range:expr, $reload:ident;
        $($rest:tt)*
    ) => {
        section!(@line $head [$($item)* {
            [$(#[$doc])*] $key $field ($ty) (u64)
            (Some($crate::config::settings::Bound::new($default, $range)))
            (|c, key, v| c.number(key, $crate::config::settings::Bound::new($default, $range), v))
            $reload
        }] $($rest)*);
    };

    // A value read as another type (`as String`) and made into the field by `check`, a
    // function or closure `(checker, key, Option<&Spanned<raw>>) -> field`.
    (@line $head:tt [$($item:tt)*]
        $(#[$doc:meta])*
        $field:ident : $ty:ty as $raw:ty = $check:expr, $reload:ident;
        $($rest:tt)*
    ) => {
        section!(@line $head [$($item)* {
            [$(#[$doc])*] $field $field ($ty) ($raw) (None) ($check) $reload
        }] $($rest)*);
    };

    // A number: default, bounds.
    (@line $head:tt [$($item:tt)*]
        $(#[$doc:meta])*
        $field:ident : $ty:ty = $default:expr, $range:expr, $reload:ident;
        $($rest:tt)*
    ) => {
        section!(@line $head [$($item)* {
            [$(#[$doc])*] $field $field ($ty) (u64)
            (Some($crate::config::settings::Bound::new($default, $range)))
            (|c, key, v| c.number(key, $crate::config::settings::Bound::new($default, $range), v))
            $reload
        }] $($rest)*);
    };

    (@generate [$(#[$meta:meta])* [$section:ident] $Struct:ident $Raw:ident]
        $({
            [$(#[$doc:meta])*] $key:ident $field:ident ($ty:ty) ($raw:ty)
            ($bound:expr) ($check:expr) $reload:ident
        })*
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $Struct {
            $(
                $(#[$doc])*
                #[doc = ""]
                #[doc = concat!(
                    "`", stringify!($section), ".", stringify!($key), "`, ",
                    section!(@reload_doc $reload), "."
                )]
                pub $field: $ty,
            )*
        }

        #[derive(::serde::Deserialize, Default)]
        #[serde(deny_unknown_fields)]
        struct $Raw {
            $($key: Option<::toml::Spanned<$raw>>,)*
        }

        impl $Struct {
            #[doc = concat!("Every setting of `[", stringify!($section), "]`, in declaration order.")]
            pub const SETTINGS: &'static [$crate::config::settings::Setting] = &[$(
                $crate::config::settings::Setting {
                    key: concat!(stringify!($section), ".", stringify!($key)),
                    live: section!(@live $reload),
                    bound: $bound,
                },
            )*];

            /// Validate the raw section, setting by setting in declaration order.
            fn check(c: &mut $crate::config::settings::Checker<'_>, raw: &$Raw) -> Self {
                $(
                    let $field: $ty = $crate::config::settings::run(
                        c,
                        concat!(stringify!($section), ".", stringify!($key)),
                        raw.$key.as_ref(),
                        $check,
                    );
                )*
                $Struct { $($field,)* }
            }

            /// `new` with every restart-only setting at its running value (ours); and the keys
            /// of those that `new` would change.
            fn reload(&self, new: Self) -> (Self, Vec<&'static str>) {
                let restart = [$(
                    section!(@changed $reload self new $field
                        concat!(stringify!($section), ".", stringify!($key))),
                )*];
                let next = $Struct {
                    $($field: section!(@pick $reload self new $field),)*
                };
                (next, restart.into_iter().flatten().collect())
            }
        }
    };

    (@live live) => { true };
    (@live restart) => { false };
    (@reload_doc live) => { "applied by a reload" };
    (@reload_doc restart) => { "takes effect after a restart" };
    (@changed live $running:ident $new:ident $field:ident $key:expr) => { None };
    (@changed restart $running:ident $new:ident $field:ident $key:expr) => {
        ($running.$field != $new.$field).then_some($key)
    };
    (@pick live $running:ident $new:ident $field:ident) => { $new.$field };
    (@pick restart $running:ident $new:ident $field:ident) => {
        ::std::clone::Clone::clone(&$running.$field)
    };
}

pub(super) use section;
