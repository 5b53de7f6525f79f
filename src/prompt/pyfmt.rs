//! Python's ways of printing numbers, reproduced where the reference prompt depends on them.

/// `repr(float)` in Python: the shortest round-trip form, always with a decimal point.
/// (Python switches to exponents only below 1e-4 or from 1e16, which rounded timestamps
/// never reach.)
pub fn float_repr(x: f64) -> String {
    let s = format!("{x}");
    if s.contains(['.', 'e', 'i', 'N']) {
        s
    } else {
        format!("{s}.0")
    }
}

/// `round(x, 1)` on a numpy float64, which the reference applies to its timestamps:
/// numpy multiplies by 10, rounds half to even and divides, which differs from Python's
/// correctly rounded `round` on values such as 0.35 (the golden plans confirm numpy's).
pub fn numpy_round1(x: f64) -> f64 {
    (x * 10.0).round_ties_even() / 10.0
}

/// A number as Python prints an int or a float given by the user: `2` for 2, `2.5` for 2.5.
pub fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        float_repr(x)
    }
}

/// `str(datetime.timedelta(seconds=s))` for s >= 0: `H:MM:SS`, `.ffffff` when the
/// microseconds are not zero, and `N day(s), ` in front past 24 hours.
pub fn timedelta(seconds: f64) -> String {
    let us = timedelta_microseconds(seconds);
    let (days, rest) = (us / 86_400_000_000, us % 86_400_000_000);
    let (secs, micro) = (rest / 1_000_000, rest % 1_000_000);
    let mut out = String::new();
    if days > 0 {
        let plural = if days == 1 { "" } else { "s" };
        out.push_str(&format!("{days} day{plural}, "));
    }
    out.push_str(&format!(
        "{}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    ));
    if micro != 0 {
        out.push_str(&format!(".{micro:06}"));
    }
    out
}

/// CPython's float-seconds to microseconds conversion in `timedelta.__new__`: the whole
/// seconds, then the fraction times 1e6 split again, and the leftover rounded half to even
/// on the parity of the total.
fn timedelta_microseconds(seconds: f64) -> u64 {
    let whole = seconds.trunc();
    let frac_us = (seconds - whole) * 1e6;
    let us_whole = frac_us.trunc();
    let leftover = frac_us - us_whole;
    let total = whole as u64 * 1_000_000 + us_whole as u64;
    let mut rounded = leftover.round();
    if (rounded - leftover).abs() == 0.5 {
        let odd = (total % 2) as f64;
        rounded = 2.0 * ((leftover + odd) * 0.5).round() - odd;
    }
    total + rounded as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_repr() {
        assert_eq!(float_repr(0.0), "0.0");
        assert_eq!(float_repr(4.5), "4.5");
        assert_eq!(float_repr(15.3), "15.3");
        assert_eq!(float_repr(3599.9), "3599.9");
        assert_eq!(number(2.0), "2");
        assert_eq!(number(2.5), "2.5");
    }

    #[test]
    fn numpy_rounding_differs_from_correct_rounding() {
        // 0.35 is 0.34999999999999997...; numpy rounds 3.5 (after *10) to 4.
        assert_eq!(numpy_round1(0.35), 0.4);
        assert_eq!(numpy_round1(0.25), 0.2);
        assert_eq!(numpy_round1(1.0 / 3.0), 0.3);
    }

    #[test]
    fn timedelta_matches_python() {
        // Values printed by CPython 3.11's str(datetime.timedelta(seconds=s)).
        assert_eq!(timedelta(0.0), "0:00:00");
        assert_eq!(timedelta(0.5), "0:00:00.500000");
        assert_eq!(timedelta(65.0), "0:01:05");
        assert_eq!(timedelta(60.06006), "0:01:00.060060");
        assert_eq!(timedelta(3600.0), "1:00:00");
        assert_eq!(timedelta(86400.0), "1 day, 0:00:00");
        assert_eq!(timedelta(90000.5), "1 day, 1:00:00.500000");
        assert_eq!(timedelta(8_640_000.0), "100 days, 0:00:00");
        assert_eq!(timedelta(5e-7), "0:00:00");
        assert_eq!(timedelta(1.5e-6), "0:00:00.000002");
        assert_eq!(timedelta(1.0000025), "0:00:01.000002");
    }
}
