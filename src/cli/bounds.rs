//! The allowed range of each numeric flag, enforced by clap as it parses: a value outside is a
//! usage error (exit 2) that states the range, before any file is read. The ranges are wide
//! enough for any real use and narrow enough that no setting can exhaust memory or overflow
//! the sampler's arithmetic; the help of each flag states its range.

use std::fmt::Display;
use std::str::FromStr;

/// The lowest value of a range is allowed, or only values above it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Low {
    Included,
    Excluded,
}

/// A clap value parser for a number from `min` to `max`; NaN and infinities never pass.
pub fn number<T>(
    min: T,
    low: Low,
    max: T,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: FromStr + PartialOrd + Display + Copy + Send + Sync + 'static,
{
    move |text: &str| {
        let range = match low {
            Low::Included => format!("expected a number from {min} to {max}"),
            Low::Excluded => format!("expected a number above {min} and at most {max}"),
        };
        let value: T = text.trim().parse().map_err(|_| range.clone())?;
        let above_min = match low {
            Low::Included => value >= min,
            Low::Excluded => value > min,
        };
        if above_min && value <= max {
            Ok(value)
        } else {
            Err(range)
        }
    }
}

/// The generation settings' ranges, for their flags and for `apollo serve`'s requests alike.
pub fn temperature() -> impl Fn(&str) -> Result<f32, String> + Clone + Send + Sync + 'static {
    number(0.0f32, Low::Included, 100.0)
}

pub fn top_p() -> impl Fn(&str) -> Result<f32, String> + Clone + Send + Sync + 'static {
    number(0.0f32, Low::Excluded, 1.0)
}

pub fn repetition_penalty() -> impl Fn(&str) -> Result<f32, String> + Clone + Send + Sync + 'static
{
    number(0.0f32, Low::Excluded, 100.0)
}

pub fn max_new_tokens() -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync + 'static {
    number(1usize, Low::Included, 1 << 20)
}

pub fn logprobs() -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync + 'static {
    number(0usize, Low::Included, 20)
}

/// `--video-size WxH`: even sides from 16 to 7680 (8K), as the H.264 encoder takes them.
pub fn frame_size(text: &str) -> Result<(usize, usize), String> {
    let side = number(16usize, Low::Included, 7680);
    let (w, h) = text
        .split_once('x')
        .ok_or_else(|| "expected WxH, e.g. 640x360".to_string())?;
    let (w, h) = (side(w)?, side(h)?);
    if w % 2 == 1 || h % 2 == 1 {
        return Err("expected even sides".into());
    }
    Ok((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_outside_the_range_or_not_numbers_are_refused_with_the_range() {
        let seconds = number(0.1f64, Low::Included, 3600.0);
        assert_eq!(seconds("2"), Ok(2.0));
        assert_eq!(seconds("0.1"), Ok(0.1));
        assert_eq!(seconds("3600"), Ok(3600.0));
        for bad in ["0.05", "1e300", "inf", "NaN", "-1", "two", ""] {
            assert_eq!(
                seconds(bad),
                Err("expected a number from 0.1 to 3600".into()),
                "{bad}"
            );
        }
        let ratio = number(0.0f64, Low::Excluded, 1.0);
        assert_eq!(ratio("1"), Ok(1.0));
        assert_eq!(
            ratio("0"),
            Err("expected a number above 0 and at most 1".into())
        );
        let count = number(1usize, Low::Included, 256);
        assert_eq!(count("256"), Ok(256));
        for bad in ["0", "257", "4294967296", "1.5", "-3"] {
            assert!(count(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn frame_sizes_are_even_and_bounded() {
        assert_eq!(frame_size("640x360"), Ok((640, 360)));
        for bad in ["640", "641x360", "8x8", "100000x100", "axb"] {
            assert!(frame_size(bad).is_err(), "{bad}");
        }
    }
}
