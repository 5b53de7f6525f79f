//! A tiny bitmap font (assets/font-5x7.txt) for the contact sheet's time labels.

use std::collections::HashMap;
use std::sync::OnceLock;

pub const GLYPH_W: usize = 5;
pub const GLYPH_H: usize = 7;

type Glyph = [[bool; GLYPH_W]; GLYPH_H];

fn glyphs() -> &'static HashMap<char, Glyph> {
    static GLYPHS: OnceLock<HashMap<char, Glyph>> = OnceLock::new();
    GLYPHS.get_or_init(|| parse(include_str!("../../assets/font-5x7.txt")))
}

fn parse(text: &str) -> HashMap<char, Glyph> {
    let mut lines = text
        .lines()
        .filter(|l| !l.starts_with('#') || l.len() == GLYPH_W);
    let mut out = HashMap::new();
    while let Some(head) = lines.next() {
        let ch = head.trim_matches('\'').chars().next().expect("glyph name");
        let mut g = [[false; GLYPH_W]; GLYPH_H];
        for row in g.iter_mut() {
            let line = lines.next().expect("7 rows per glyph");
            for (cell, c) in row.iter_mut().zip(line.chars()) {
                *cell = c == '#';
            }
        }
        out.insert(ch, g);
    }
    out
}

/// Calls `ink(x, y)` for every lit pixel of `text` drawn at `scale`, left to right with one
/// blank column between glyphs. Characters the font lacks are left blank.
pub fn draw(text: &str, scale: usize, mut ink: impl FnMut(usize, usize)) {
    for (n, ch) in text.chars().enumerate() {
        let Some(g) = glyphs().get(&ch) else { continue };
        let x0 = n * (GLYPH_W + 1) * scale;
        for (y, row) in g.iter().enumerate() {
            for (x, &on) in row.iter().enumerate() {
                if on {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            ink(x0 + x * scale + dx, y * scale + dy);
                        }
                    }
                }
            }
        }
    }
}

/// Width in pixels of `text` at `scale`.
pub fn width(text: &str, scale: usize) -> usize {
    text.chars().count() * (GLYPH_W + 1) * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_character_has_a_glyph() {
        for ch in "0123456789.:s- ".chars() {
            assert!(glyphs().contains_key(&ch), "{ch:?}");
        }
        let mut lit = 0;
        draw("1", 1, |_, _| lit += 1);
        assert_eq!(lit, 10, "the glyph '1' has ten lit pixels");
    }
}
