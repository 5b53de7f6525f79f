//! GPT-2's byte-level alphabet (`bytes_to_unicode`), which Qwen2's tokenizer uses: printable
//! Latin-1 bytes stand for themselves, the other bytes, in order, for U+0100 onwards.

use std::collections::HashMap;
use std::sync::LazyLock;

fn printable(b: u8) -> bool {
    matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF)
}

/// The character that stands for `byte`.
pub fn char_of_byte(byte: u8) -> char {
    if printable(byte) {
        return char::from(byte);
    }
    let rank = (0..byte).filter(|&b| !printable(b)).count() as u32;
    char::from_u32(256 + rank).expect("U+0100..U+0143 are chars")
}

/// The byte a character of the alphabet stands for.
pub fn byte_of_char(c: char) -> Option<u8> {
    static BYTES: LazyLock<HashMap<char, u8>> =
        LazyLock::new(|| (0..=255u8).map(|b| (char_of_byte(b), b)).collect());
    BYTES.get(&c).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_bytes_to_characters_as_gpt2_does() {
        assert_eq!(char_of_byte(b'A'), 'A');
        assert_eq!(char_of_byte(0), '\u{100}');
        assert_eq!(char_of_byte(b' '), '\u{120}');
        assert_eq!(char_of_byte(b'\n'), '\u{10a}');
        assert_eq!(char_of_byte(0xAD), '\u{143}');
        for b in 0..=255u8 {
            assert_eq!(byte_of_char(char_of_byte(b)), Some(b));
        }
    }
}
