//! SMS length rules: which encoding a text needs and how many billed parts it makes.
//! GSM-7 fits 160 characters in one part and 153 per part when split (characters of
//! the extension table count twice); anything outside GSM-7 needs UCS-2: 70 in one
//! part, 67 per part, counted in UTF-16 units.

use serde::Serialize;

/// The encoding an SMS text needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Encoding {
    #[serde(rename = "GSM-7")]
    Gsm7,
    #[serde(rename = "UCS-2")]
    Ucs2,
}

impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Encoding::Gsm7 => "GSM-7",
            Encoding::Ucs2 => "UCS-2",
        })
    }
}

/// How a text goes out as SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SmsInfo {
    pub encoding: Encoding,
    /// Characters as the encoding counts them (septets or UTF-16 units).
    pub units: usize,
    pub parts: usize,
}

const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM7_EXTENSION: &str = "^{}\\[~]|€\u{0c}";

/// How many billed parts a text may make unless a flow says otherwise (`max_parts`):
/// 1,530 GSM-7 or 670 other characters. A longer text is almost always a mistake (a
/// whole document in a cell), and every part is paid for.
pub const DEFAULT_MAX_PARTS: usize = 10;

/// The encoding and part count of `text`, or why it is too long to send as at most
/// `max_parts` billed parts.
pub fn within(text: &str, max_parts: usize) -> Result<SmsInfo, String> {
    let info = analyse(text);
    if info.parts > max_parts {
        return Err(format!(
            "the text is {} characters, {} billed SMS parts in {}; at most {max_parts} are sent (`max_parts` on the receiver)",
            text.chars().count(),
            info.parts,
            info.encoding
        ));
    }
    Ok(info)
}

/// The encoding and part count of `text`.
pub fn analyse(text: &str) -> SmsInfo {
    let mut septets = 0;
    for c in text.chars() {
        if GSM7_BASIC.contains(c) {
            septets += 1;
        } else if GSM7_EXTENSION.contains(c) {
            septets += 2;
        } else {
            let units = text.encode_utf16().count();
            return SmsInfo {
                encoding: Encoding::Ucs2,
                units,
                parts: parts(units, 70, 67),
            };
        }
    }
    SmsInfo {
        encoding: Encoding::Gsm7,
        units: septets,
        parts: parts(septets, 160, 153),
    }
}

fn parts(units: usize, single: usize, per_part: usize) -> usize {
    if units <= single {
        1
    } else {
        units.div_ceil(per_part)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_fits_160_then_splits_by_153() {
        assert_eq!(
            analyse(&"a".repeat(160)),
            SmsInfo {
                encoding: Encoding::Gsm7,
                units: 160,
                parts: 1
            }
        );
        assert_eq!(analyse(&"a".repeat(161)).parts, 2);
        assert_eq!(analyse(&"a".repeat(306)).parts, 2);
        assert_eq!(analyse(&"a".repeat(307)).parts, 3);
        assert_eq!(analyse("Tom & Jerry <3").encoding, Encoding::Gsm7);
    }

    #[test]
    fn extension_characters_count_twice() {
        assert_eq!(analyse("€").units, 2);
        assert_eq!(analyse(&format!("{}€", "a".repeat(159))).parts, 2);
    }

    #[test]
    fn anything_else_needs_ucs2_70_then_67() {
        assert_eq!(analyse("Привіт").encoding, Encoding::Ucs2);
        assert_eq!(analyse(&"я".repeat(70)).parts, 1);
        assert_eq!(analyse(&"я".repeat(71)).parts, 2);
        assert_eq!(analyse(&"я".repeat(135)).parts, 3);
        assert_eq!(analyse("你好").parts, 1);
        // an emoji is two UTF-16 units
        assert_eq!(analyse("👋").units, 2);
    }
}
