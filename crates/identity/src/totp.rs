//! TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps): secrets, the
//! `otpauth://` enrolment URI and its QR code, codes and their verification.

use aws_lc_rs::hmac;

/// The length of new secrets (160 bits, as RFC 4226 recommends).
pub const SECRET_BYTES: usize = 20;
/// Seconds per step.
pub const PERIOD_S: u64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;

/// Why the QR code could not be drawn.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the QR code cannot be drawn: {0}")]
pub struct QrError(pub String);

/// A new random secret of [`SECRET_BYTES`].
pub fn new_secret() -> Vec<u8> {
    crate::tokens::random::<SECRET_BYTES>().to_vec()
}

const BASE32_UPPER: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32, uppercase, without padding (what authenticator apps take).
pub fn secret_base32(secret: &[u8]) -> String {
    let mut out = String::with_capacity(secret.len().div_ceil(5) * 8);
    let mut buffer = 0u32;
    let mut bits = 0u32;
    for byte in secret {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32_UPPER[index(buffer >> bits)]));
        }
        buffer &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(BASE32_UPPER[index(buffer << (5 - bits))]));
    }
    out
}

fn index(value: u32) -> usize {
    usize::try_from(value & 31).unwrap_or(0)
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The enrolment URI: `otpauth://totp/<issuer>:<account>?secret=...&issuer=...
/// &algorithm=SHA1&digits=6&period=30` (Key Uri Format).
pub fn otpauth_uri(issuer: &str, account_name: &str, secret: &[u8]) -> String {
    let issuer = percent_encode(issuer);
    format!(
        "otpauth://totp/{issuer}:{}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={PERIOD_S}",
        percent_encode(account_name),
        secret_base32(secret),
    )
}

/// The URI as a QR code, an SVG document.
pub fn qr_svg(uri: &str) -> Result<String, QrError> {
    let code = qrcode::QrCode::new(uri.as_bytes()).map_err(|e| QrError(e.to_string()))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// The HOTP value (RFC 4226) of `counter`, `digits` long (1 to 9), zero-padded.
pub fn hotp(secret: &[u8], counter: u64, digits: u32) -> String {
    let digits = digits.clamp(1, 9);
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    let offset = mac.last().map_or(0, |b| usize::from(b & 0x0f));
    let word = mac
        .get(offset..offset + 4)
        .map_or(0, |w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    let value = (word & 0x7fff_ffff) % 10u32.pow(digits);
    let width = usize::try_from(digits).unwrap_or(6);
    format!("{value:0width$}")
}

/// The 30-second step of a Unix time.
pub const fn step_of(unix_s: u64) -> u64 {
    unix_s / PERIOD_S
}

/// The 6-digit code at `unix_s`.
pub fn code_at(secret: &[u8], unix_s: u64) -> String {
    hotp(secret, step_of(unix_s), DIGITS)
}

/// The step whose code `code` is, among the step of `unix_s` and one on either
/// side (clock drift); `None` for a wrong code or anything but 6 ASCII digits
/// (spaces allowed). The caller records the step
/// ([`IdentityCommand::RecordTotpUse`](crate::IdentityCommand::RecordTotpUse)) so
/// that a code is used once.
pub fn verify(secret: &[u8], code: &str, unix_s: u64) -> Option<u64> {
    let code: String = code.chars().filter(|c| *c != ' ').collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) || secret.is_empty() {
        return None;
    }
    let now = step_of(unix_s);
    let mut matched = None;
    for step in [now.saturating_sub(1), now, now.saturating_add(1)] {
        let expected = hotp(secret, step, DIGITS);
        if crate::tokens::constant_time_eq(expected.as_bytes(), code.as_bytes())
            && matched.is_none_or(|m| step > m)
        {
            matched = Some(step);
        }
    }
    matched
}
