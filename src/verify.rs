//! Verification: the token AWS returned checked against the product, with the pure core of
//! [`entitle_verify`] (PS256 signature, then `productCode`, `publicKeyVersion` and `nonce`).
//! Also the product's identity rules, which the seal and the configuration share.

use crate::exit::Failure;
use entitle_verify::{Entitlement, Expected, PublicKey};
use tracing::info;

const MAX_PRODUCT_CODE_LEN: usize = 255;

/// Most pricing dimensions a product has (AWS Marketplace: up to 24 per product).
pub const MAX_DIMENSIONS: usize = 24;

/// The product this binary checks entitlement for.
#[derive(Debug, Clone)]
pub struct Product {
    pub code: String,
    pub public_key_version: u64,
    /// The key RegisterUsage tokens are checked with; none for a product that is only metered.
    pub public_key: Option<PublicKey>,
    /// The pricing dimensions to meter (MeterUsage); empty when not metered.
    pub meter_dimensions: Vec<String>,
}

impl Product {
    /// Verifies `token` as the answer to a request for this product with `nonce`.
    pub fn verify(&self, token: &str, nonce: &str) -> Result<Entitlement, Failure> {
        let key = self.public_key.as_ref().ok_or_else(|| {
            Failure::Config(format!(
                "product {} has no public key to verify a token with",
                self.code
            ))
        })?;
        let expected = Expected {
            product_code: &self.code,
            public_key_version: self.public_key_version,
            nonce,
        };
        entitle_verify::verify(token, key, &expected)
            .map_err(|rejection| Failure::Untrusted(rejection.to_string()))
    }
}

/// MeterUsage `UsageDimension`s: 1..255 characters each (API reference), at most
/// [`MAX_DIMENSIONS`], no repeats.
pub fn meter_dimensions(dimensions: &[String]) -> Result<(), Failure> {
    if dimensions.len() > MAX_DIMENSIONS {
        return Err(Failure::Config(format!(
            "{} metering dimensions given; a product has at most {MAX_DIMENSIONS}",
            dimensions.len()
        )));
    }
    for (i, dimension) in dimensions.iter().enumerate() {
        if dimension.is_empty() || dimension.len() > 255 {
            return Err(Failure::Config(format!(
                "metering dimension `{dimension}` must be 1 to 255 characters; give the names from the AWS Marketplace Management Portal, separated by commas"
            )));
        }
        if dimensions[..i].contains(dimension) {
            return Err(Failure::Config(format!(
                "metering dimension `{dimension}` is given twice"
            )));
        }
    }
    Ok(())
}

/// `entitle verify`: the same verification, offline.
pub fn offline(product: &Product, token: &str, nonce: &str) -> Result<(), Failure> {
    let entitlement = product.verify(token, nonce)?;
    info!(
        product_code = %entitlement.product_code,
        public_key_version = entitlement.public_key_version,
        issued_at = entitlement.issued_at,
        "token verified"
    );
    Ok(())
}

/// RegisterUsage `ProductCode`: 1..255 characters of `[-a-zA-Z0-9/=:_.@]` (API reference).
pub fn product_code(value: Option<&str>) -> Result<String, Failure> {
    let code = value.ok_or_else(|| {
        Failure::Config("no product code: set --product-code or ENTITLE_PRODUCT_CODE to the code AWS Marketplace gave the product".into())
    })?;
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-/=:_.@".contains(c);
    if code.is_empty() {
        return Err(Failure::Config(
            "product code is empty; set it to the code AWS Marketplace gave the product".into(),
        ));
    }
    if code.len() > MAX_PRODUCT_CODE_LEN {
        return Err(Failure::Config(format!(
            "product code is {} characters, at most {MAX_PRODUCT_CODE_LEN} are allowed",
            code.len()
        )));
    }
    if let Some(bad) = code.chars().find(|&c| !allowed(c)) {
        return Err(Failure::Config(format!(
            "product code contains {bad:?}; only letters, digits and -/=:_.@ are allowed"
        )));
    }
    Ok(code.to_owned())
}

/// RegisterUsage `PublicKeyVersion`: an integer >= 1 (the SDK carries it as a 32-bit integer).
pub fn public_key_version(value: Option<u64>) -> Result<u64, Failure> {
    match value {
        None => Ok(1),
        Some(version) if version == 0 || version > i32::MAX as u64 => Err(Failure::Config(format!(
            "public key version {version} is out of range; it is the version AWS Marketplace gave with the key, starting at 1"
        ))),
        Some(version) => Ok(version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_codes_are_checked() {
        assert!(product_code(Some("a-Z0/=:_.@9")).is_ok());
        for bad in [
            None,
            Some(""),
            Some("has space"),
            Some("ünï"),
            Some(&*"a".repeat(256)),
        ] {
            let result = product_code(bad);
            assert!(matches!(result, Err(Failure::Config(_))), "{bad:?}");
        }
    }

    #[test]
    fn dimensions_are_checked() {
        let list = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert!(meter_dimensions(&list(&["scans", "GB processed"])).is_ok());
        for bad in [
            list(&[""]),
            list(&["a", "a"]),
            list(&[&"x".repeat(256)]),
            (0..25).map(|i| i.to_string()).collect(),
        ] {
            assert!(
                matches!(meter_dimensions(&bad), Err(Failure::Config(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn key_versions_are_range_checked() {
        assert_eq!(public_key_version(None).unwrap(), 1);
        assert_eq!(public_key_version(Some(7)).unwrap(), 7);
        for bad in [0, 2_147_483_648] {
            assert!(matches!(
                public_key_version(Some(bad)),
                Err(Failure::Config(_))
            ));
        }
    }
}
