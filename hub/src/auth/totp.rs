//! The second factor of the hub's own accounts (`allow_2fa`): RFC 6238 TOTP codes
//! (SHA-1, 6 digits, 30 s, the one every authenticator app reads), by totp-rs; the
//! enrolment's `otpauth://` URL as a QR code, by qrcode, drawn as inline SVG.

use totp_rs::{Algorithm, Secret, TOTP};

/// Seconds per code.
const STEP: u64 = 30;
/// The issuer authenticator apps show.
const ISSUER: &str = "sudohub";

/// A new random secret, base32 (160 bits, RFC 4226's recommendation).
pub fn new_secret() -> String {
    let bytes: [u8; 20] = rand::random();
    Secret::Raw(bytes.to_vec()).to_encoded().to_string()
}

fn totp(secret: &str, account: &str) -> Option<TOTP> {
    let bytes = Secret::Encoded(secret.to_owned()).to_bytes().ok()?;
    TOTP::new(
        Algorithm::SHA1,
        6,
        1,
        STEP,
        bytes,
        Some(ISSUER.to_owned()),
        account.to_owned(),
    )
    .ok()
}

/// The code of `secret` at unix time `at`.
pub fn code_at(secret: &str, at: u64) -> Option<String> {
    Some(totp(secret, "x")?.generate(at))
}

/// The time step whose code `code` is, among the one of `now` and its neighbours (a
/// clock off by up to 30 s); `None` if none. Compared in constant time.
pub fn matching_step(secret: &str, code: &str, now: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret, "x")?;
    let step = now / STEP;
    [step.saturating_sub(1), step, step + 1]
        .into_iter()
        .find(|s| crate::secrets::same(&t.generate(s * STEP), code))
}

/// The `otpauth://` URL of `secret` for `account`, for an authenticator app.
pub fn otpauth_url(secret: &str, account: &str) -> Option<String> {
    Some(totp(secret, account)?.get_url())
}

/// The QR code of `url` as an SVG image.
pub fn qr_svg(url: &str) -> Option<String> {
    let code = qrcode::QrCode::new(url.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_their_step_and_its_neighbours_only() {
        // RFC 6238's SHA-1 test secret ("12345678901234567890") and vector at 59 s.
        let rfc = Secret::Raw(b"12345678901234567890".to_vec())
            .to_encoded()
            .to_string();
        assert_eq!(code_at(&rfc, 59).unwrap(), "287082");
        let s = new_secret();
        assert_ne!(s, new_secret());
        let now = 1_800_000_015;
        let code = code_at(&s, now).unwrap();
        assert_eq!(matching_step(&s, &code, now), Some(now / 30));
        assert_eq!(
            matching_step(&s, &code, now + 30),
            Some(now / 30),
            "a late clock"
        );
        assert_eq!(matching_step(&s, &code, now + 90), None, "too old");
        for bad in ["", "12345", "1234567", "abcdef", "12 456"] {
            assert_eq!(matching_step(&s, bad, now), None, "{bad:?}");
        }
        let url = otpauth_url(&s, "alice").unwrap();
        assert!(url.starts_with("otpauth://totp/sudohub:alice?"), "{url}");
        assert!(url.contains(&format!("secret={s}")), "{url}");
        assert!(qr_svg(&url).unwrap().starts_with("<?xml"));
    }
}
