//! Pictures for people: sampled frames as PNG files and a labelled contact sheet.
pub mod contact_sheet;
pub mod font;
pub mod png_file;
