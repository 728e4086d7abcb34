//! Validated scalar values of the input model: HL7 timestamps, the Italian fiscal code, the
//! model version tag. Each one is checked while the JSON is read, so an invalid value is
//! reported with the JSON path of its field.

use serde::Deserialize;
use std::fmt;

/// The version tag every input must carry in its top-level `model` field.
pub const MODEL_VERSION: &str = "fse-cda-build/1";

/// The top-level `model` field: always [`MODEL_VERSION`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct ModelVersion;

impl TryFrom<String> for ModelVersion {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if value == MODEL_VERSION {
            Ok(ModelVersion)
        } else {
            Err(format!(
                "unsupported model version {value:?}, expected {MODEL_VERSION:?}"
            ))
        }
    }
}

/// An HL7 V3 point in time (`TS`): `YYYYMMDD[HHMM[SS]][+ZZZZ|-ZZZZ]`, checked strictly
/// (calendar date, hours 00-23, minutes and seconds 00-59, zone offset ±HHMM up to ±1400).
/// Document-level times must be at least day-precise.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Ts(String);

impl Ts {
    /// The timestamp exactly as written in the input.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Ts {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        check_ts(&value, 8).map_err(|why| {
            format!("invalid date {value:?}: {why} (expected YYYYMMDD[HHMM[SS]][+ZZZZ])")
        })?;
        Ok(Ts(value))
    }
}

fn two(d: &[u8], i: usize) -> u32 {
    u32::from(d[i] - b'0') * 10 + u32::from(d[i + 1] - b'0')
}

/// Checks an HL7 TS literal: `YYYY[MM[DD[HH[MM[SS[.F+]]]]]][±ZZZZ]`, at least `min_digits`
/// digits of date/time. Returns why it is invalid.
pub fn check_ts(value: &str, min_digits: usize) -> Result<(), String> {
    let (main, zone) = match value.find(['+', '-']) {
        Some(pos) if pos < 8 => return Err("no separators: digits only, then the zone".into()),
        Some(pos) => (&value[..pos], Some(&value[pos + 1..])),
        None => (value, None),
    };
    let (digits, fraction) = match main.split_once('.') {
        Some((d, f)) => (d, Some(f)),
        None => (main, None),
    };
    let d = digits.as_bytes();
    if !d.iter().all(u8::is_ascii_digit) {
        return Err("only digits are allowed before the time zone".into());
    }
    if !matches!(d.len(), 4 | 6 | 8 | 10 | 12 | 14) || d.len() < min_digits {
        return Err(format!("{} date/time digits", d.len()));
    }
    if let Some(f) = fraction {
        if d.len() != 14 || f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
            return Err("a fraction of second needs full seconds and digits".into());
        }
    }
    let year = two(d, 0) * 100 + two(d, 2);
    if d.len() >= 6 {
        let month = two(d, 4);
        if !(1..=12).contains(&month) {
            return Err(format!("month {month:02} out of range"));
        }
        if d.len() >= 8 {
            let day = two(d, 6);
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            let max = match month {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            if day == 0 || day > max {
                return Err(format!("day {day:02} out of range"));
            }
        }
    }
    if d.len() >= 10 && two(d, 8) > 23 {
        return Err("hour out of range".into());
    }
    if d.len() >= 12 && two(d, 10) > 59 {
        return Err("minute out of range".into());
    }
    if d.len() >= 14 && two(d, 12) > 59 {
        return Err("second out of range".into());
    }
    if let Some(z) = zone {
        let zb = z.as_bytes();
        if zb.len() != 4 || !zb.iter().all(u8::is_ascii_digit) {
            return Err("time zone must be +HHMM or -HHMM".into());
        }
        if d.len() < 10 {
            return Err("a time zone needs a time of day".into());
        }
        if two(zb, 0) > 14 || two(zb, 2) > 59 {
            return Err("time zone out of range".into());
        }
    }
    Ok(())
}

/// An Italian fiscal code (codice fiscale) of a person: 16 characters, the pattern of the
/// Agenzia delle Entrate (omocodia substitutions allowed) and a correct check character.
/// Lower case is accepted and normalised to upper case.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct FiscalCode(String);

impl FiscalCode {
    /// The normalised (upper-case) code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for FiscalCode {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        let upper = value.to_ascii_uppercase();
        check_fiscal_code(&upper).map_err(|why| format!("invalid fiscal code {value:?}: {why}"))?;
        Ok(FiscalCode(upper))
    }
}

/// The check character of the first 15 characters of a fiscal code (which must be ASCII
/// alphanumeric upper case).
pub fn fiscal_code_check_char(first15: &[u8]) -> Option<u8> {
    const ODD: [u32; 26] = [
        1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24,
        23,
    ];
    let mut sum = 0u32;
    for (i, &c) in first15.iter().enumerate() {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A'),
            _ => return None,
        };
        // Positions are 1-based in the rule: index 0 is "odd".
        sum += if i % 2 == 0 { ODD[v as usize] } else { v };
    }
    Some(b'A' + (sum % 26) as u8)
}

/// The fiscal-code pattern AAAAAA00A00A000A (digit positions may hold the omocodia letters
/// L M N P Q R S T U V), upper case; the check character is not verified.
fn fiscal_code_shape_ok(b: &[u8]) -> bool {
    let letter = |c: u8| c.is_ascii_uppercase();
    let digitish = |c: u8| c.is_ascii_digit() || b"LMNPQRSTUV".contains(&c);
    b.len() == 16
        && b[..6].iter().all(|&c| letter(c))
        && digitish(b[6])
        && digitish(b[7])
        && b"ABCDEHLMPRST".contains(&b[8])
        && digitish(b[9])
        && digitish(b[10])
        && letter(b[11])
        && b[12..15].iter().all(|&c| digitish(c))
        && letter(b[15])
}

/// For a code with the shape of a fiscal code (see [`FiscalCode`]; upper case) whose check
/// character is wrong: (the character found, the one expected). `None` for a correct code and
/// for anything that is not shaped like a fiscal code (temporary codes: 11 digits, STP, ENI…).
pub fn fiscal_code_check_mismatch(code: &str) -> Option<(char, char)> {
    let b = code.as_bytes();
    if !fiscal_code_shape_ok(b) {
        return None;
    }
    let expected = fiscal_code_check_char(&b[..15])?;
    (expected != b[15]).then_some((b[15] as char, expected as char))
}

fn check_fiscal_code(code: &str) -> Result<(), String> {
    if code.len() != 16 {
        return Err(format!(
            "must be 16 characters, found {}",
            code.chars().count()
        ));
    }
    if !fiscal_code_shape_ok(code.as_bytes()) {
        return Err("does not match the pattern AAAAAA00A00A000A".into());
    }
    match fiscal_code_check_mismatch(code) {
        Some((found, expected)) => Err(format!(
            "wrong check character {found:?}, expected {expected:?}"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        for ok in [
            "20240229",
            "202402291230",
            "20240229123059",
            "20240229123059+0100",
            "20240101000000.123-0500",
        ] {
            assert!(Ts::try_from(ok.to_string()).is_ok(), "{ok}");
        }
        for bad in [
            "2024-02-29",
            "20230229",
            "2024",
            "20241301",
            "20240101246000",
            "202401011200+01",
            "2024010112+0100x",
            "",
            "20240101+0100",
        ] {
            assert!(Ts::try_from(bad.to_string()).is_err(), "{bad}");
        }
        assert!(check_ts("2024", 4).is_ok());
        assert!(check_ts("202413", 4).is_err());
    }

    #[test]
    fn fiscal_codes() {
        assert!(FiscalCode::try_from("RSSMRA80A01H501U".to_string()).is_ok());
        assert!(FiscalCode::try_from("rssmra80a01h501u".to_string()).is_ok());
        let err = FiscalCode::try_from("RSSMRA80A01H501X".to_string()).unwrap_err();
        assert!(err.contains("check character"), "{err}");
        assert!(FiscalCode::try_from("PROVAX00X00X000Y".to_string()).is_err());
        assert!(FiscalCode::try_from("XYZ".to_string()).is_err());
    }
}
