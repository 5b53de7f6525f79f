//! Sizes as people write them: `APOLLO_CACHE_MAX=500M`, `2G`, `20GiB`, or a count of bytes;
//! the suffixes are binary (K = 1024 bytes, M = 1024 K, ...).

/// Bytes in `text`, or why it is not a size.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(bad(text)),
    };
    let value: f64 = number.parse().map_err(|_| bad(text))?;
    let bytes = value * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(bad(text));
    }
    Ok(bytes as u64)
}

fn bad(text: &str) -> String {
    format!("{text:?} is not a size: expected bytes, or a number with K, M, G or T (binary), e.g. 500M or 2G")
}

/// `bytes` for people: 1.5 GiB, 300 MiB, 12 KiB, 7 B.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ if value < 10.0 => format!("{value:.1} {}", UNITS[unit]),
        _ => format!("{value:.0} {}", UNITS[unit]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_size("123"), Ok(123));
        assert_eq!(parse_size("500M"), Ok(500 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("20GiB"), Ok(20 << 30));
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert_eq!(parse_size(" 3 MB "), Ok(3 << 20));
        assert_eq!(parse_size("0"), Ok(0));
        for bad in ["", "G", "-1G", "1X", "1.2.3", "99999999999T"] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.contains("is not a size"), "{bad}: {e}");
        }
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(7), "7 B");
        assert_eq!(human(12 << 10), "12 KiB");
        assert_eq!(human(3 << 29), "1.5 GiB");
        assert_eq!(human(20 << 30), "20 GiB");
    }
}
