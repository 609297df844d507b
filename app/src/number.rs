//! Numbers typed into the page. They are read with the JSON reader the
//! browser bundle carries anyway: the standard library's own float parser
//! would add its code and 10 KB of tables to every page with a number field.

/// Reads a decimal number as people type it: `12`, `-0.5`, `.5`, `+3`,
/// `007`, `2.` or `1e3`, with spaces around it. `None` for anything else,
/// including `inf`, `NaN` and numbers beyond the range of `f64`.
///
/// The value is the nearest `f64`, as the standard parser gives, for up to
/// 15 significant digits scaled by at most 10^±22 (`0.000123`, `-21.5`,
/// `4.2e9`): the digits, read as a whole number, are exact, and one exact
/// power of ten scales them. Past that, the JSON reader may be one unit off
/// in the last bit.
pub fn parse_number(text: &str) -> Option<f64> {
    let text = text.trim();
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exponent) = match rest.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, Some(exponent)),
        None => (rest, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    // The same number in JSON's stricter spelling.
    let mut json = String::with_capacity(text.len() + 2);
    if negative {
        json.push('-');
    }
    let whole = whole.trim_start_matches('0');
    json.push_str(if whole.is_empty() { "0" } else { whole });
    if !fraction.is_empty() {
        json.push('.');
        json.push_str(fraction);
    }
    if let Some(exponent) = exponent {
        let exponent_digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        if exponent_digits.is_empty() || !all_digits(exponent_digits) {
            return None;
        }
        json.push('e');
        json.push_str(exponent);
    }
    serde_json::from_str(&json).ok()
}

/// Whether every character is an ASCII digit (true for "").
pub fn all_digits(text: &str) -> bool {
    text.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_as_typed() {
        for (text, value) in [
            ("12", 12.0),
            ("-0.5", -0.5),
            (".5", 0.5),
            ("-.5", -0.5),
            ("+3", 3.0),
            ("007", 7.0),
            ("2.", 2.0),
            ("1e3", 1000.0),
            ("1.5E-2", 0.015),
            ("2e+2", 200.0),
            ("  21.5 ", 21.5),
            ("0", 0.0),
        ] {
            assert_eq!(parse_number(text), Some(value), "{text:?}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_number() {
        for text in [
            "", " ", ".", "-", "+", "1.2.3", "1e", "1e+", "e5", "--1", "+-1", "1,5", "0x10", "inf",
            "NaN", "infinity", "1_000", "12abc", "1e400", "- 1",
        ] {
            assert_eq!(parse_number(text), None, "{text:?}");
        }
    }

    /// Whatever the standard library reads, this reads to the same `f64`, for
    /// numbers with up to 15 significant digits scaled by at most 10^±22.
    #[test]
    fn agrees_with_the_standard_parser() {
        let mut next = crate::test_random();
        for _ in 0..200_000 {
            let digits = 1 + next() % 15;
            let mantissa = next() % 10u64.pow(digits as u32);
            let point = next() % (digits + 1);
            let text = mantissa.to_string();
            let text = format!("{:0>width$}", text, width = digits as usize);
            let (whole, fraction) = text.split_at(point as usize);
            let sign = if next().is_multiple_of(2) { "-" } else { "" };
            // The power of ten that scales the digits read as a whole number.
            let scale = (next() % 45) as i64 - 22;
            let fraction_digits = (digits - point) as i64;
            let exponent = match scale + fraction_digits {
                0 if next().is_multiple_of(2) => String::new(),
                exponent => format!("e{exponent}"),
            };
            let typed = format!("{sign}{whole}.{fraction}{exponent}");
            let expected: f64 = typed.parse().unwrap();
            assert_eq!(parse_number(&typed), Some(expected), "{typed:?}");
        }
    }
}
