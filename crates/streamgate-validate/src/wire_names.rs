//! Field names as they appear on the wire, for the JSON pointers of rule failures.
//!
//! `validator` reports the Rust names of fields and ignores `#[serde(rename)]` (validator#306).
//! Type errors need no mapping: they come from serde's own deserialization path
//! (`serde_path_to_error`), which already sees the wire names. Rule failures are mapped through
//! [`WireNames`], which the request type implements next to its serde attributes: the default
//! methods map every name to itself, so a type without renames writes `impl WireNames for T {}`.
//!
//! ```
//! use std::borrow::Cow;
//! use serde::Deserialize;
//! use streamgate_validate::{FieldNames, WireNames};
//!
//! #[derive(Deserialize)]
//! struct Item {
//!     #[serde(rename = "itemName")]
//!     name: String,
//! }
//! impl WireNames for Item {
//!     fn wire_name(field: &str) -> Cow<'_, str> {
//!         Cow::Borrowed(if field == "name" { "itemName" } else { field })
//!     }
//! }
//!
//! #[derive(Deserialize)]
//! #[serde(rename_all = "camelCase")]
//! struct Order {
//!     line_items: Vec<Item>,
//! }
//! impl WireNames for Order {
//!     fn wire_name(field: &str) -> Cow<'_, str> {
//!         streamgate_validate::camel_case(field)
//!     }
//!     fn nested(field: &str) -> Option<FieldNames> {
//!         (field == "line_items").then(FieldNames::of::<Item>)
//!     }
//! }
//!
//! assert_eq!(FieldNames::of::<Order>().pointer(&["line_items", "2", "name"]), "/lineItems/2/itemName");
//! ```

use std::{borrow::Cow, fmt};

/// How the Rust field names of a request type map to the names on the wire.
///
/// Implement it beside the type's `#[serde(rename)]` / `#[serde(rename_all)]` attributes; a type
/// without renames uses the defaults (`impl WireNames for T {}`).
///
/// **Limitation:** a `#[serde(flatten)]` field has no name on the wire, but `validator` reports
/// the rules of the flattened struct under that field's name, so their pointers keep a segment
/// the JSON does not have (`/inner/pageSize` where the body has `/pageSize`). Type errors from
/// serde inside a flattened struct or an internally tagged enum (`#[serde(tag = "type")]`)
/// point at the enclosing object (`""` for `{"page_size": "x"}`, `/tagged` for
/// `{"tagged": {"type": "A", "n": "x"}}`): serde reads those values into a buffer first, and the
/// path inside it is lost. Missing fields point at the right place.
pub trait WireNames {
    /// The wire name of the Rust field `field` of `Self`. Defaults to the same name.
    fn wire_name(field: &str) -> Cow<'_, str> {
        Cow::Borrowed(field)
    }

    /// The names of the type validated under `field` (with `#[validate(nested)]`): a struct, or the
    /// element type of a list or map. Defaults to none: names below `field` stay as they are.
    fn nested(field: &str) -> Option<FieldNames> {
        let _ = field;
        None
    }
}

/// The [`WireNames`] of one type as a value, to walk nested errors.
#[derive(Clone, Copy)]
pub struct FieldNames {
    wire_name: for<'a> fn(&'a str) -> Cow<'a, str>,
    nested: fn(&str) -> Option<FieldNames>,
}

impl fmt::Debug for FieldNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldNames").finish_non_exhaustive()
    }
}

fn same_name(field: &str) -> Cow<'_, str> {
    Cow::Borrowed(field)
}

fn no_nested(_: &str) -> Option<FieldNames> {
    None
}

impl FieldNames {
    /// The names of `T`.
    #[must_use]
    pub fn of<T: WireNames + ?Sized>() -> Self {
        Self {
            wire_name: T::wire_name,
            nested: T::nested,
        }
    }

    /// Names that map every field to itself, at every depth.
    #[must_use]
    pub fn identity() -> Self {
        Self {
            wire_name: same_name,
            nested: no_nested,
        }
    }

    /// The wire name of `field`. A raw identifier's `r#` is dropped, as serde does (`r#type` is
    /// `type` on the wire), after [`WireNames::wire_name`] has seen the name as written.
    #[must_use]
    pub fn wire_name<'a>(&self, field: &'a str) -> Cow<'a, str> {
        match (self.wire_name)(field) {
            Cow::Borrowed(name) => Cow::Borrowed(name.strip_prefix("r#").unwrap_or(name)),
            Cow::Owned(name) => match name.strip_prefix("r#") {
                Some(unraw) => Cow::Owned(unraw.to_owned()),
                None => Cow::Owned(name),
            },
        }
    }

    /// The names below `field`, or [`FieldNames::identity`].
    #[must_use]
    pub fn nested(&self, field: &str) -> Self {
        (self.nested)(field).unwrap_or_else(Self::identity)
    }

    /// The JSON pointer of a path of Rust field names and list indices.
    #[must_use]
    pub fn pointer(&self, path: &[&str]) -> String {
        let mut out = String::new();
        let mut names = *self;
        let mut parent: Option<&str> = None;
        for segment in path {
            let is_index = segment.bytes().all(|b| b.is_ascii_digit()) && !segment.is_empty();
            if is_index {
                push_pointer_segment(&mut out, segment);
                continue;
            }
            if let Some(field) = parent.take() {
                names = names.nested(field);
            }
            push_pointer_segment(&mut out, &names.wire_name(segment));
            parent = Some(segment);
        }
        out
    }
}

/// Appends `/segment` to a JSON pointer, escaping `~` and `/` (RFC 6901).
pub(crate) fn push_pointer_segment(pointer: &mut String, segment: &str) {
    pointer.push('/');
    for c in segment.chars() {
        match c {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

/// `snake_case` to `camelCase`, the rename of `#[serde(rename_all = "camelCase")]`, exactly as
/// serde_derive does it: each `_` is dropped and the character after it upper-cased, the first
/// character is lower-cased (`_private` is `private`, `a_b_c` is `aBC`). A raw identifier's `r#`
/// is kept for [`FieldNames::wire_name`] to drop.
#[must_use]
pub fn camel_case(field: &str) -> Cow<'_, str> {
    let (raw, name) = match field.strip_prefix("r#") {
        Some(name) => ("r#", name),
        None => ("", field),
    };
    let starts_lower = name.chars().next().is_none_or(|c| !c.is_ascii_uppercase());
    if !name.contains('_') && starts_lower {
        return Cow::Borrowed(field);
    }
    let mut out = String::with_capacity(field.len());
    out.push_str(raw);
    // serde_derive's PascalCase, then its first character lower-cased.
    let mut capitalize = true;
    let mut first = true;
    for c in name.chars() {
        if c == '_' {
            capitalize = true;
            continue;
        }
        let c = if capitalize {
            c.to_ascii_uppercase()
        } else {
            c
        };
        capitalize = false;
        out.push(if first { c.to_ascii_lowercase() } else { c });
        first = false;
    }
    Cow::Owned(out)
}

/// Implements [`WireNames`] from a list of renamed fields and of nested types.
///
/// ```
/// use serde::Deserialize;
/// use streamgate_validate::{FieldNames, wire_names};
///
/// #[derive(Deserialize)]
/// struct Line {
///     #[serde(rename = "sku")]
///     code: String,
/// }
/// #[derive(Deserialize)]
/// struct Order {
///     #[serde(rename = "displayName")]
///     display_name: String,
///     lines: Vec<Line>,
/// }
/// wire_names!(Line { code => "sku" });
/// wire_names!(Order { display_name => "displayName" } nested { lines => Line });
///
/// assert_eq!(FieldNames::of::<Order>().pointer(&["lines", "0", "code"]), "/lines/0/sku");
/// assert_eq!(FieldNames::of::<Order>().pointer(&["display_name"]), "/displayName");
/// ```
#[macro_export]
macro_rules! wire_names {
    ($ty:ty { $($field:ident => $wire:literal),* $(,)? } $(nested { $($inner:ident => $inner_ty:ty),* $(,)? })?) => {
        impl $crate::WireNames for $ty {
            fn wire_name(field: &str) -> ::std::borrow::Cow<'_, str> {
                ::std::borrow::Cow::Borrowed(match field {
                    $(::std::stringify!($field) => $wire,)*
                    other => other,
                })
            }

            fn nested(field: &str) -> ::std::option::Option<$crate::FieldNames> {
                match field {
                    $($(::std::stringify!($inner) => ::std::option::Option::Some($crate::FieldNames::of::<$inner_ty>()),)*)?
                    _ => ::std::option::Option::None,
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_escapes_tilde_and_slash() {
        let mut pointer = String::new();
        push_pointer_segment(&mut pointer, "a/b~c");
        assert_eq!(pointer, "/a~1b~0c");
    }

    #[test]
    fn camel_case_matches_serde() {
        assert_eq!(camel_case("display_name"), "displayName");
        assert_eq!(camel_case("email"), "email");
        assert_eq!(camel_case("a_b_c"), "aBC");
        assert_eq!(camel_case("_private"), "private");
        assert_eq!(camel_case("__a__b_"), "aB");
        assert_eq!(camel_case("Upper_case"), "upperCase");
        assert_eq!(camel_case("r#my_type"), "r#myType");
    }

    #[test]
    fn raw_identifiers_lose_their_prefix() {
        struct Raw;
        impl WireNames for Raw {}
        struct Camel;
        impl WireNames for Camel {
            fn wire_name(field: &str) -> Cow<'_, str> {
                camel_case(field)
            }
        }
        assert_eq!(FieldNames::of::<Raw>().pointer(&["r#type"]), "/type");
        assert_eq!(FieldNames::of::<Camel>().pointer(&["r#my_type"]), "/myType");
    }
}
