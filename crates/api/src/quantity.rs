//! Reading storage quantities (`1Gi`, `500M`, `1.5Ti`, `2e9`) as byte counts.
//!
//! The API server rewrites quantities in canonical form (`1024Mi` is stored as `1Gi`), so
//! sizes must be compared by value, not by text, or a claim would look resized forever. The
//! backup-operator sizes its Jobs' scratch volumes from them (`storage.size`, `scratchSize`).

/// The number of bytes `quantity` stands for, rounded up; `None` when it is not a
/// non-negative Kubernetes quantity or does not fit.
pub fn bytes(quantity: &str) -> Option<u128> {
    let (numerator, denominator) = ratio(quantity)?;
    Some(numerator.div_ceil(denominator))
}

/// The exact value of `quantity` as numerator and denominator; `None` when it is not a
/// non-negative Kubernetes quantity or does not fit.
pub fn ratio(quantity: &str) -> Option<(u128, u128)> {
    let quantity = quantity.trim();
    let split = quantity
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(quantity.len());
    let (number, suffix) = quantity.split_at(split);
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let digits = format!("{int}{frac}");
    let mut numerator: u128 = digits.parse().ok()?;
    let mut denominator: u128 = 10u128.checked_pow(u32::try_from(frac.len()).ok()?)?;

    let binary = |power: u32| 1024u128.checked_pow(power);
    let decimal = |power: u32| 10u128.checked_pow(power);
    match suffix {
        "" => {}
        "Ki" => numerator = numerator.checked_mul(binary(1)?)?,
        "Mi" => numerator = numerator.checked_mul(binary(2)?)?,
        "Gi" => numerator = numerator.checked_mul(binary(3)?)?,
        "Ti" => numerator = numerator.checked_mul(binary(4)?)?,
        "Pi" => numerator = numerator.checked_mul(binary(5)?)?,
        "Ei" => numerator = numerator.checked_mul(binary(6)?)?,
        "n" => denominator = denominator.checked_mul(decimal(9)?)?,
        "u" => denominator = denominator.checked_mul(decimal(6)?)?,
        "m" => denominator = denominator.checked_mul(decimal(3)?)?,
        "k" => numerator = numerator.checked_mul(decimal(3)?)?,
        "M" => numerator = numerator.checked_mul(decimal(6)?)?,
        "G" => numerator = numerator.checked_mul(decimal(9)?)?,
        "T" => numerator = numerator.checked_mul(decimal(12)?)?,
        "P" => numerator = numerator.checked_mul(decimal(15)?)?,
        "E" => numerator = numerator.checked_mul(decimal(18)?)?,
        exponent => {
            let exponent = exponent.strip_prefix(['e', 'E'])?;
            let value: i32 = exponent.parse().ok()?;
            let scale = decimal(value.unsigned_abs())?;
            if value >= 0 {
                numerator = numerator.checked_mul(scale)?;
            } else {
                denominator = denominator.checked_mul(scale)?;
            }
        }
    }
    Some((numerator, denominator))
}

#[cfg(test)]
mod tests {
    use super::bytes;

    #[test]
    fn quantities_table() {
        let gi = 1u128 << 30;
        let rows: [(&str, Option<u128>); 16] = [
            ("1Gi", Some(gi)),
            ("1024Mi", Some(gi)),
            ("1.5Gi", Some(gi + gi / 2)),
            ("500M", Some(500_000_000)),
            ("10G", Some(10_000_000_000)),
            ("1k", Some(1000)),
            ("2Ti", Some(2 << 40)),
            ("1e9", Some(1_000_000_000)),
            ("1E3", Some(1000)),
            ("1E", Some(1_000_000_000_000_000_000)),
            ("100", Some(100)),
            ("1500m", Some(2)),
            (" 1Gi ", Some(gi)),
            ("", None),
            ("Gi", None),
            ("1Xi", None),
        ];
        for (text, want) in rows {
            assert_eq!(bytes(text), want, "{text:?}");
        }
    }
}
