//! The product's RSA public key: PEM (SPKI or PKCS#1) in, a checked key out. Pure, no I/O.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::digest::{digest, SHA256};
use std::fmt;

/// Throwaway keys and a PS256 signer for tests (unit tests, and with the `test-support`
/// feature, integration tests and fuzz targets). Never part of a release build.
#[cfg(any(test, feature = "test-support"))]
pub mod test_keys;

/// Smallest and largest modulus accepted. AWS issues 2048+ bit keys (the one public product key
/// is 3072-bit); the 1024-bit key in AWS's old Java sample is the public jwt.io demo key.
pub const MIN_BITS: usize = 2048;
pub const MAX_BITS: usize = 4096;

/// DER of OID 1.2.840.113549.1.1.1 (rsaEncryption), RFC 8017 Appendix C.
const RSA_ENCRYPTION_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// An RSA public key that passed every structural check.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    pkcs1: Vec<u8>,
    bits: usize,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKey(RSA-{}, sha256:{})",
            self.bits,
            self.fingerprint()
        )
    }
}

impl PublicKey {
    /// Parses a `BEGIN PUBLIC KEY` (SPKI, RFC 5280) or `BEGIN RSA PUBLIC KEY` (PKCS#1, RFC 8017) PEM.
    /// Literal `\n` sequences are accepted as line breaks, since PEMs pasted into env vars and Helm
    /// values often arrive that way.
    pub fn from_pem(pem: &str) -> Result<PublicKey, String> {
        let pem = pem.replace("\\n", "\n");
        let pkcs1 = match pem_label(&pem)? {
            "PUBLIC KEY" => spki_to_pkcs1(&pem_body(&pem, "PUBLIC KEY")?)?.to_vec(),
            "RSA PUBLIC KEY" => pem_body(&pem, "RSA PUBLIC KEY")?,
            "CERTIFICATE" => {
                return Err("PEM is a certificate, not a public key; extract the key with `openssl x509 -pubkey -noout`".into())
            }
            label if label.contains("PRIVATE") => {
                return Err(format!("PEM is a {label}: give the public key only (`openssl pkey -pubout`)"))
            }
            label => return Err(format!("PEM is a {label}, expected BEGIN PUBLIC KEY or BEGIN RSA PUBLIC KEY")),
        };
        let bits = rsa_modulus_bits(&pkcs1)?;
        if !(MIN_BITS..=MAX_BITS).contains(&bits) {
            return Err(format!(
                "RSA key is {bits}-bit, expected {MIN_BITS} to {MAX_BITS}; use the key AWS Marketplace gave for the product (not the 1024-bit key from AWS's Java sample, which is jwt.io's public demo key)"
            ));
        }
        Ok(PublicKey { pkcs1, bits })
    }

    /// The key as a PKCS#1 `RSAPublicKey` DER, the form ring verifies with.
    pub fn pkcs1_der(&self) -> &[u8] {
        &self.pkcs1
    }

    pub fn bits(&self) -> usize {
        self.bits
    }

    /// SHA-256 of the SPKI DER (what `openssl pkey -pubin -outform DER | sha256sum` prints), in hex.
    pub fn fingerprint(&self) -> String {
        let spki = pkcs1_to_spki(&self.pkcs1);
        digest(&SHA256, &spki)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

fn pem_label(pem: &str) -> Result<&str, String> {
    let start = pem
        .find("-----BEGIN ")
        .ok_or("no PEM \"-----BEGIN ...-----\" line found")?;
    let rest = &pem[start + "-----BEGIN ".len()..];
    let end = rest.find("-----").ok_or("unterminated PEM BEGIN line")?;
    Ok(&rest[..end])
}

/// The base64-decoded body between `BEGIN label` and `END label`.
pub(crate) fn pem_body(pem: &str, label: &str) -> Result<Vec<u8>, String> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin).ok_or_else(|| format!("no {begin} line"))? + begin.len();
    let stop = pem[start..]
        .find(&end)
        .ok_or_else(|| format!("no {end} line"))?
        + start;
    let body: String = pem[start..stop].split_ascii_whitespace().collect();
    STANDARD
        .decode(body)
        .map_err(|e| format!("PEM body is not base64: {e}"))
}

/// One DER TLV: (tag, contents, rest). Definite lengths only, up to 3 length bytes.
fn der_tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let malformed = || "key DER is malformed".to_owned();
    let (&tag, rest) = input.split_first().ok_or_else(malformed)?;
    let (&first, rest) = rest.split_first().ok_or_else(malformed)?;
    let (len, rest) = match first {
        0..=0x7f => (first as usize, rest),
        0x81..=0x83 => {
            let n = (first & 0x7f) as usize;
            let bytes = rest.get(..n).ok_or_else(malformed)?;
            (
                bytes.iter().fold(0usize, |acc, &b| acc << 8 | b as usize),
                &rest[n..],
            )
        }
        _ => return Err(malformed()),
    };
    let contents = rest.get(..len).ok_or_else(malformed)?;
    Ok((tag, contents, &rest[len..]))
}

fn der_expect<'a>(input: &'a [u8], tag: u8, what: &str) -> Result<(&'a [u8], &'a [u8]), String> {
    match der_tlv(input)? {
        (t, contents, rest) if t == tag => Ok((contents, rest)),
        _ => Err(format!("key DER is malformed: expected {what}")),
    }
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;

/// SubjectPublicKeyInfo ::= SEQUENCE { SEQUENCE { OID, params }, BIT STRING } (RFC 5280 §4.1).
fn spki_to_pkcs1(spki: &[u8]) -> Result<&[u8], String> {
    let (info, _) = der_expect(spki, SEQUENCE, "SubjectPublicKeyInfo")?;
    let (algorithm, rest) = der_expect(info, SEQUENCE, "AlgorithmIdentifier")?;
    let (oid, _) = der_expect(algorithm, OID, "algorithm OID")?;
    if oid != RSA_ENCRYPTION_OID {
        return Err(
            "public key is not RSA (AWS Marketplace signs with RSA-PSS); use the product's RSA key"
                .into(),
        );
    }
    let (bits, _) = der_expect(rest, BIT_STRING, "public key BIT STRING")?;
    match bits.split_first() {
        Some((0, key)) => Ok(key),
        _ => Err("key DER is malformed: BIT STRING has unused bits".into()),
    }
}

fn pkcs1_to_spki(pkcs1: &[u8]) -> Vec<u8> {
    let mut algorithm = der_wrap(OID, RSA_ENCRYPTION_OID);
    algorithm.extend_from_slice(&[0x05, 0x00]); // NULL parameters
    let mut bit_string = vec![0];
    bit_string.extend_from_slice(pkcs1);
    let mut info = der_wrap(SEQUENCE, &algorithm);
    info.extend(der_wrap(BIT_STRING, &bit_string));
    der_wrap(SEQUENCE, &info)
}

fn der_wrap(tag: u8, contents: &[u8]) -> Vec<u8> {
    let len = contents.len();
    let mut out = vec![tag];
    match len {
        0..=0x7f => out.push(len as u8),
        0x80..=0xff => out.extend_from_slice(&[0x81, len as u8]),
        _ => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
    }
    out.extend_from_slice(contents);
    out
}

/// RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } (RFC 8017 §A.1.1).
fn rsa_modulus_bits(pkcs1: &[u8]) -> Result<usize, String> {
    let (key, trailing) = der_expect(pkcs1, SEQUENCE, "RSAPublicKey")?;
    if !trailing.is_empty() {
        return Err("key DER is malformed: trailing bytes".into());
    }
    let (modulus, rest) = der_expect(key, INTEGER, "modulus")?;
    let (exponent, rest) = der_expect(rest, INTEGER, "public exponent")?;
    if !rest.is_empty() || exponent.last().is_none_or(|b| b & 1 == 0) {
        return Err("key DER is malformed: bad RSA public exponent".into());
    }
    let modulus = strip_leading_zeros(modulus);
    match modulus.first() {
        Some(&top) if modulus.last().is_some_and(|b| b & 1 == 1) => {
            Ok(modulus.len() * 8 - top.leading_zeros() as usize)
        }
        _ => Err("key DER is malformed: bad RSA modulus".into()),
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real AWS Marketplace product key (Upbound UXP, product `1fszvu527waovqeuhpkyx2b5d`),
    /// public in their repository; the fingerprint is what `openssl pkey -pubin -outform DER | sha256sum` prints.
    const UPBOUND_3072: &str = "-----BEGIN PUBLIC KEY-----
MIIBojANBgkqhkiG9w0BAQEFAAOCAY8AMIIBigKCAYEAyu7Xq7XTBRgFWCL+DXj8
Xyc/fPLWNQ1adPDf8zqkJ1H1JCTg6fUo7HUvNu0BAbPwIME4aDEzteJkhPq9IzS8
HlrZT/7DqSPV9bXnR9OkqugfbFPyHGyd9afHyfDJfGwfqBP5r8oBuGwmCw5Ia088
AcePfkVEisAo+8KiBAE16bqvDw0v5YzDrDVpHH9YdK1q9eG5WRTt0h7lYFj8dydr
h+OyONGyWTkAWbs3JpsQLZgRdU6Klj5aZzO6FeUc2kOz2Hs+QvKgbNSpgV0000KK
2on4L1+WJau7sj8EFquFdk2C0MhucIy6ceWXGB3YAOb8c0H9FT0eSY5rtX154otW
jmV9vMLLX1gajtQD0iOLBLRQ3WliP7fGc6o3StjMrbKh+ErXGVzzJnjK2eQhgkg/
/DgcKjUptZ21gdbqbQBGwvfitBEJX7VCwF4VMhFM8JQiAxCVBZ7kkY5ZlGjvN2gO
AMFKarvAWRwrZisxKWe+RFBU1EI5WS75X7owU/IehIabAgMBAAE=
-----END PUBLIC KEY-----
";

    /// The key printed in AWS's old Java sample: jwt.io's demo key, whose private half is public.
    const JWT_IO_DEMO_1024: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDdlatRjRjogo3WojgGHFHYLugd
UWAY9iR3fy4arWNA1KoS8kVw33cJibXr8bvwUAUparCwlvdbH6dvEOfou0/gCFQs
HUfQrSDv+MuSUMAe8jzKE4qW+jK+xQU9a03GUnKHkkle+Q0pX/g6jXZ7r1/xAK5D
o2kQ+X5xK9cipRgEKwIDAQAB
-----END PUBLIC KEY-----";

    #[test]
    fn parses_a_real_marketplace_key_with_its_known_fingerprint() {
        let key = PublicKey::from_pem(UPBOUND_3072).unwrap();
        assert_eq!(key.bits(), 3072);
        assert_eq!(
            key.fingerprint(),
            "77a04677c8c34b96fbfe326b5a2bf9b4f5e3f41a9e2b9ae7241aea4e43d11ccc"
        );
    }

    #[test]
    fn spki_and_pkcs1_forms_are_the_same_key() {
        let spki = PublicKey::from_pem(test_keys::PUBLIC_2048_SPKI).unwrap();
        let pkcs1 = PublicKey::from_pem(test_keys::PUBLIC_2048_PKCS1).unwrap();
        assert_eq!(spki, pkcs1);
        assert_eq!(spki.bits(), 2048);
    }

    #[test]
    fn accepts_escaped_newlines() {
        let escaped = test_keys::PUBLIC_2048_SPKI.replace('\n', "\\n");
        assert!(PublicKey::from_pem(&escaped).is_ok());
    }

    #[test]
    fn rejects_the_jwt_io_demo_key_and_other_sizes() {
        for pem in [
            JWT_IO_DEMO_1024,
            test_keys::PUBLIC_1024_SPKI,
            test_keys::PUBLIC_4160_SPKI,
        ] {
            let err = PublicKey::from_pem(pem).unwrap_err();
            assert!(err.contains("expected 2048 to 4096"), "{err}");
        }
    }

    #[test]
    fn rejects_non_rsa_private_and_certificate_pems() {
        let ec = PublicKey::from_pem(test_keys::PUBLIC_EC_P256).unwrap_err();
        assert!(ec.contains("not RSA"), "{ec}");
        let private = PublicKey::from_pem(test_keys::PRIVATE_2048).unwrap_err();
        assert!(private.contains("public key only"), "{private}");
        let cert =
            PublicKey::from_pem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----")
                .unwrap_err();
        assert!(cert.contains("certificate"), "{cert}");
    }

    #[test]
    fn rejects_broken_pem_and_der_without_panicking() {
        let good = test_keys::PUBLIC_2048_SPKI;
        let cases = [
            String::new(),
            "hello".to_owned(),
            "-----BEGIN PUBLIC KEY-----\n".to_owned(),
            "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----".to_owned(),
            "-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----".to_owned(),
            good.replace("MIIB", "MIIC"),
            good[..good.len() - 60].to_owned() + "\n-----END PUBLIC KEY-----",
        ];
        for pem in cases {
            assert!(PublicKey::from_pem(&pem).is_err(), "{pem}");
        }
    }

    #[test]
    fn der_reader_survives_every_truncation() {
        let der = pem_body(test_keys::PUBLIC_2048_SPKI, "PUBLIC KEY").unwrap();
        for len in 0..der.len() {
            assert!(
                spki_to_pkcs1(&der[..len])
                    .and_then(rsa_modulus_bits)
                    .is_err(),
                "{len}"
            );
        }
    }
}
