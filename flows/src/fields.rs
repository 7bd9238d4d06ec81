//! What a receiver accepts in `map:`: each field's name, type, whether it is required and
//! its documented length limit. Used to validate flows and to coerce rendered text.

/// The type a receiver field has in the vendor's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Free text.
    Text,
    /// A phone number (what `switchboard test --to` replaces).
    Phone,
    /// One of a fixed set of values.
    OneOf(&'static [&'static str]),
    /// An ISO 8601 / RFC 3339 date-time.
    DateTime,
    /// An absolute URL.
    Url,
    /// A whole number.
    Integer,
    /// A number with a fraction (an amount: `12.50`).
    Number,
    /// `true` or `false`.
    Boolean,
    /// A list of whole numbers (`"3, 5"` or a YAML list).
    IntegerList,
    /// A list of texts (`"vip, new"` or a YAML list).
    TextList,
    /// Any JSON, passed through as written (YAML lists and mappings).
    Json,
}

/// One field a receiver action accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    pub name: &'static str,
    pub kind: FieldKind,
    pub required: bool,
    /// The longest value the service accepts, in characters.
    pub max_chars: Option<usize>,
    /// What an optional field left out means, when the service (or the connector)
    /// gives it a value.
    pub default: Option<&'static str>,
    pub doc: &'static str,
}

impl FieldSpec {
    pub const fn required(name: &'static str, kind: FieldKind, doc: &'static str) -> Self {
        FieldSpec {
            name,
            kind,
            required: true,
            max_chars: None,
            default: None,
            doc,
        }
    }

    pub const fn optional(name: &'static str, kind: FieldKind, doc: &'static str) -> Self {
        FieldSpec {
            name,
            kind,
            required: false,
            max_chars: None,
            default: None,
            doc,
        }
    }

    pub const fn max_chars(mut self, max: usize) -> Self {
        self.max_chars = Some(max);
        self
    }

    pub const fn default(mut self, value: &'static str) -> Self {
        self.default = Some(value);
        self
    }
}
