//! Kubernetes resource quantities (`500m`, `1.5`, `128Mi`, `1G`, `2e3`) as millicores and bytes.

/// The value of a quantity in thousandths (so `500m` → 500, `2` → 2000, `1Ki` → 1_024_000).
pub fn parse_milli(q: &str) -> Option<i128> {
    let q = q.trim();
    let split = q.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(q.len());
    let (num, suffix) = q.split_at(split);
    let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
    let negative = int_part.starts_with('-');
    let int_digits = int_part.trim_start_matches(['+', '-']);
    if (int_digits.is_empty() && frac_part.is_empty()) || !int_digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    // Work in units of 10^-9 to keep fractions exact enough.
    let mut nano: i128 = int_digits.parse::<i128>().unwrap_or(0) * 1_000_000_000;
    let frac: String = frac_part.chars().chain(std::iter::repeat('0')).take(9).collect();
    nano += frac.parse::<i128>().ok()?;
    let scale_nano = |v: i128, mul: i128, div: i128| v.checked_mul(mul).map(|x| x / div);
    let value = match suffix {
        "" => nano,
        "n" => nano / 1_000_000_000,
        "u" => nano / 1_000_000,
        "m" => nano / 1_000,
        "k" => scale_nano(nano, 1_000, 1)?,
        "M" => scale_nano(nano, 1_000_000, 1)?,
        "G" => scale_nano(nano, 1_000_000_000, 1)?,
        "T" => scale_nano(nano, 1_000_000_000_000, 1)?,
        "P" => scale_nano(nano, 1_000_000_000_000_000, 1)?,
        "Ki" => scale_nano(nano, 1 << 10, 1)?,
        "Mi" => scale_nano(nano, 1 << 20, 1)?,
        "Gi" => scale_nano(nano, 1 << 30, 1)?,
        "Ti" => scale_nano(nano, 1 << 40, 1)?,
        "Pi" => scale_nano(nano, 1 << 50, 1)?,
        s if s.starts_with(['e', 'E']) => {
            let exp: u32 = s[1..].parse().ok()?;
            scale_nano(nano, 10i128.checked_pow(exp)?, 1)?
        }
        _ => return None,
    };
    // nano-units → milli-units, rounding up as Kubernetes does for MilliValue.
    let milli = (value + 999_999) / 1_000_000;
    Some(if negative { -milli } else { milli })
}

/// Bytes (rounded up), for memory.
pub fn bytes(q: &str) -> Option<i64> {
    parse_milli(q).map(|m| ((m + 999) / 1000) as i64)
}

/// Millicores, for CPU.
pub fn millicores(q: &str) -> Option<i64> {
    parse_milli(q).map(|m| m as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(millicores("500m"), Some(500));
        assert_eq!(millicores("1"), Some(1000));
        assert_eq!(millicores("0.25"), Some(250));
        assert_eq!(millicores("1.5"), Some(1500));
        assert_eq!(bytes("128Mi"), Some(128 << 20));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
        assert_eq!(bytes("2e3"), Some(2000));
        assert_eq!(bytes("1.5Gi"), Some(1_610_612_736));
        assert_eq!(bytes("100"), Some(100));
        assert_eq!(bytes("abc"), None);
        assert_eq!(bytes("10X"), None);
    }
}
