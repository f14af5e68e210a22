//! Throwaway RSA keys made with openssl for unit tests only (never trusted by the product).

use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PSS_SHA256};

pub const PRIVATE_2048: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDGm4Eq/1oSKRMk\n\
2eZJHsYnSNiptirpArV+Im896+RO54wOmiyQut6rcCqNNp23rPaTnEUOSCrOvAKC\n\
/KI8hRCvitWvG4nAQgJ4LirZHi1mMCFwteFPBUKfxn54n1RxpWDavaNjFETAefor\n\
LQWs4Gskcfvv75ui/g7pH5TpVmnBhhZb7ibtzJtV9g1Uj4zSDqrJuMrzlwCkswC+\n\
7FETR/1w2uaX6EytB4PYVlPB6pmhFpuPfDdEfRC5YKd8GWufXYHvTJtHpoMUu/PC\n\
gs1aNMVq4EwocaogFgLS9rixz997VJQPhj2ao6eVDMCvwfvYdDc0RAqJy5q9+XUO\n\
ra9D8l6vAgMBAAECggEACKvyhFuY5bEYbmP7O5cV5NI375UOI5VkMkkznTsHAXD3\n\
uw19Q6Z9IXQoz3iig0oQjBpnI3wALn2kCG8acFUJCPkhYl9r8NKRBAlUAp3gMpWI\n\
aEDwwQAETDChBghC6iFj7LkaALH6XIMW6rqxBD7aPsGhU/Uc0Q2RvhkMafHFdVcf\n\
QvX+4HykBIaejvJu1cT6ColPPIUCFSIf2Beno05PG0NvUefHKakolSMTQDlOGjjM\n\
dCNOT/Ft6jjUT73KOUPh1n6t1lJsKbQuBR/HQ52DGSfrChOAmlhCxR6CFDnI5mvR\n\
XOPRxD8qw6U8C35Nc0D4JL4r0LpA0Q1ntkSaSt/SeQKBgQDiE1wkPMcv11/AVOdx\n\
2tWOizjU+9X8UWZAGVlyCEoCpy//zlor+HsbbvhWLJ3QF5FP3Rv/wzxxHM2lBcca\n\
3bXvKIux7sOYuxUkyVKOjrUZx4MME33cBqy/5PSx0yijenK4wOeFfcUeClHIq3D9\n\
WHlRN/WDS86vO8ktJZeODyL9ZwKBgQDg5WCBxqt2wIJurP47x950uPGweEqO2Nm0\n\
U32xSSyNor9KsAyfhn2f5bUX50nORr63MWQRdenmuLvB3PjPbpQELrVuM1VLw8T7\n\
f8J7xhsvC4sJxyj5oxAlPRGe2PCVUHw+0RYYJV/Pp0TzB/9/dOTPYIXET2HrnYtr\n\
rjD2n6n/eQKBgGgknveaf++L+XHyKsQKGQKXI9EJSeP343B3vPqI0v8x4Syn9GX5\n\
C0zx67hWyUQI90mhA7roRzmcGSeB59x6ccsAFIodAUGkPPM7QqqlFswPWlD/0aS/\n\
9mhXolkgesIEMEDnrD+UVm+mNVKJl309enVtn82h6E5U7jG79XrdgjLVAoGBALFd\n\
dX0kF/ox3Sw4FtFC0fiwGzyXwgVilF+ZMRnuocqaPc9DhNETGmROn0HY0OZz+Nk1\n\
hLwYiH3D16APC9NcXDPoOoJMzcpQ/Tt0CQfgt3Ok4OS3Q2ON7J/Rx+HFKgg4T6Si\n\
9Y/ZefSk8MXS2vfEUugSMa0fBhTyTRCBcnAuf73RAoGAZOBtocs1SQeq3rtV07X5\n\
p1461da/vXWuY0OHUc/6bqd5qBmQRbGvP7iniiRN6iQnLfgZ3ePpJQB4ZNRjT0IS\n\
+oDZNQBoCIjLLFbcCZX3GQ2a1ip+K6VQKBxcE9d5vlz63aP1WtgUxVlIkEOKGDXY\n\
eRbbgBR1gZN9ZPLaPZN7ksQ=\n\
-----END PRIVATE KEY-----\n\
";
pub const PUBLIC_2048_SPKI: &str = "\
-----BEGIN PUBLIC KEY-----\n\
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAxpuBKv9aEikTJNnmSR7G\n\
J0jYqbYq6QK1fiJvPevkTueMDposkLreq3AqjTadt6z2k5xFDkgqzrwCgvyiPIUQ\n\
r4rVrxuJwEICeC4q2R4tZjAhcLXhTwVCn8Z+eJ9UcaVg2r2jYxREwHn6Ky0FrOBr\n\
JHH77++bov4O6R+U6VZpwYYWW+4m7cybVfYNVI+M0g6qybjK85cApLMAvuxRE0f9\n\
cNrml+hMrQeD2FZTweqZoRabj3w3RH0QuWCnfBlrn12B70ybR6aDFLvzwoLNWjTF\n\
auBMKHGqIBYC0va4sc/fe1SUD4Y9mqOnlQzAr8H72HQ3NEQKicuavfl1Dq2vQ/Je\n\
rwIDAQAB\n\
-----END PUBLIC KEY-----\n\
";
pub const PUBLIC_2048_PKCS1: &str = "\
-----BEGIN RSA PUBLIC KEY-----\n\
MIIBCgKCAQEAxpuBKv9aEikTJNnmSR7GJ0jYqbYq6QK1fiJvPevkTueMDposkLre\n\
q3AqjTadt6z2k5xFDkgqzrwCgvyiPIUQr4rVrxuJwEICeC4q2R4tZjAhcLXhTwVC\n\
n8Z+eJ9UcaVg2r2jYxREwHn6Ky0FrOBrJHH77++bov4O6R+U6VZpwYYWW+4m7cyb\n\
VfYNVI+M0g6qybjK85cApLMAvuxRE0f9cNrml+hMrQeD2FZTweqZoRabj3w3RH0Q\n\
uWCnfBlrn12B70ybR6aDFLvzwoLNWjTFauBMKHGqIBYC0va4sc/fe1SUD4Y9mqOn\n\
lQzAr8H72HQ3NEQKicuavfl1Dq2vQ/JerwIDAQAB\n\
-----END RSA PUBLIC KEY-----\n\
";
pub const PRIVATE_OTHER_2048: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDat6icW2DKEJVO\n\
d80c4luTHTJIpghRDZ7kYtqeRi+S/TBbmrdVccpjbpnIAoE6sw2NSZxHIKe93ogk\n\
s7hEvbb1qUVYT8yNoPKdpWTah/8CQvdbl3qA2BGCvbFZBlZ1O65z0ckjMZwTkdUn\n\
NKIhbYbGiF7nFCPm9TGxd11qq+38Je/9lSbSdmdPaNaIujAOfcC86fOKPyhjVNJ7\n\
IKse3Gu0D84mVAmcsv/IgvJvVNARjd6KEbxH98N+8nVf91kEtz2/wVCsIh5iFU+s\n\
P+11IVLQxYs5BHwdKktEG4qXnr1BiHy14WvjKAT2Weo9BiSKPA3PJVNpGlzqf+o6\n\
mY0LMKlVAgMBAAECggEARnUTpArryyw8bOK6+KsSxPmK0UxrMXEp1njh5ErH2Jon\n\
kdrtZGEbyZw/fecQqlAz9WfZKDCk2M1vHiOnIL3cypaU+DX8t0M55P761kspIxlf\n\
henuVMNGIM/q6brY7zsin7zdBrFcjhFUkSSrdglKeXpE2DvstOIX+Atz1IE+URNu\n\
vAtgl6+X+ZyaDi2Xn4JhX50nNGRubRmJA8ZQediRz5/e96KBrFDILEOOdLWyr9nK\n\
npP14Rjv1ZkMcdv63vdIfPHEOEZdBaAYA9vJnKDRqrsmnWa/t0wq8rl4YzOjpm6Q\n\
M98hHQtI6aIKTZJ6zJJpiPEWjwkJWgLtC1w/G+PUoQKBgQD+KjCatHkdt4+3ZjeG\n\
Jlp0WlzD6p2dd6YlV5VOWOSa5kWd2bDs1VJCkb5t+j6t2W6IHW2bVbihTd+JpSO8\n\
QgjFHDn/OPmI7/I08P7FucbVBTw0ExPWy+qxSsy0ZLn4WEjzhJEke+6XQjDPHVuo\n\
MExEfrNfThkpNoHbHwdBlp3wnwKBgQDcS/I3rzSuqMTNhMg+dXO0vV4OIzmEf+ic\n\
riy6xUa8CslVKvVC0dMm/J2VuKZK5QfVA2gHFMuWbFWKGyYbgx2+h3dlHg10alCI\n\
NCzpWgbLpe/DTb6gGkuzNX7RMd/uyvSRBUfgPBminBEx0/FkmKL68Nyqq4yYdLE9\n\
yeBa4LMdiwKBgEHIJaBEyXwZgEbVW9WKo6qtoIjMdlLFHulXS7tlYnV819PM/e+u\n\
HoZANms8c3CHcAYmp7GmdAy7nPmBFkipRp/NeG1ID72TbLqrDSWbuYx0uGo57c6Q\n\
JIQSefzOfRt7rhXo36/zq4LWjM9uJ8TWC0dHC6HFEtoJ034k/7nIA8S9AoGAJPVs\n\
3qC7Uu4njl9PhQMJdXIrvG12cd9PtDGYeYEtW9DndC1v1lUDes/41CyVYY1JIhif\n\
NEjt2v+z3iat3wHBVLy/cCx5j2Viu2cdfczHxRTCw95gM9YViyxXaVtXuWU9YLMl\n\
Gt6aYmiSjeyD3B+rgDQ2oT+Ep/Mz5SzgQf7erf8CgYEAtxO2seoGp6ErLVWGLJPN\n\
MVSnFOLvdgI/uu3FUgzkAvnXP+w6xRS30hzMt0zPlge3FaVxCRq8WZB1j0ewSg2e\n\
HC4ozLaDt0KIyTgwL6vA4q0E2fR1xqkHQkEhq4BaTzcw/q6AkvS3IMCe8tWhNhde\n\
GjvNuCxF8G8+SabPfsUMlpg=\n\
-----END PRIVATE KEY-----\n\
";
pub const PUBLIC_1024_SPKI: &str = "\
-----BEGIN PUBLIC KEY-----\n\
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCwGJtjcfuSzHyBevY/7HEiLGrD\n\
dM34WQGfSJ0WCQyshJY/eTJcyoWETJ5WpN7QI/lW3pHUujBC4R+IWwnh/uTJykTZ\n\
EUpBsWKJuYWJflH/qXCSrlx9xSgNKbgN1Xyvqa9vqYtswD49AwXrs56l9WZu0s3l\n\
3Nbi2UUHrN8DbNk8owIDAQAB\n\
-----END PUBLIC KEY-----\n\
";
pub const PUBLIC_4160_SPKI: &str = "\
-----BEGIN PUBLIC KEY-----\n\
MIICKjANBgkqhkiG9w0BAQEFAAOCAhcAMIICEgKCAgkAtJj3q/Ve6zngpm4YZ3Ja\n\
ze9i+G2yDIT11MuEcmmSldiywMuk2NdDE3Bp3TtEQANSISD0Bbe4OBI6pLVuj4bH\n\
WbWLODUcbvTl9CnOwAxOCYdkWKs1Vaq+4JX3NwHa2q5E9SelSYNDucjaTk3tmiDg\n\
D+28mjpriutrspaL1UgeuFG9q+JHOuv/JfmTMViJzrZYNThGFQZ4rla7PGZzFNh4\n\
Ag0E1H4Fdz31VUHHNyRZ0Z/MHuYcdwBngRQBtGFTdW2GG7F5epe9rKVtXkBgU0z2\n\
wEKjBnK+0am2u4pJoIbwJruacCwaicFHXonQ9Q1mRPQ2fqPRa//NObJWd0GRICwF\n\
g82KZGXRXrdD1FzRqKFL9CAONh5wJ9Rdwimwzg8VJpWC1ax16Qz5hrFJubQbFYZl\n\
jprsezSwhd6Mm8NG7MhwEBiwy7Tjrv7ILJOWV1Zkz4hvRVb2pknB/Px0qM1s2xRx\n\
Nqf5AaB1//7dJKmo8WkJ2btUhKS8AIDOUc9JcHKGLAMVBQchMo0NV/c7G8zDDwsr\n\
GrdT8ZN2gTeUtrT/ZRktCKWqAYqyz6T+KEvxSoRLryvIMIi4nKgHLOQ9YmGDTcHv\n\
dWIRDO4KDqnsASg9IgrP0gnzS5068YjB8CTxnssuWTmj1CHr4uIUPrkBaKIIP/pn\n\
YQtboNlgPnketCQ0JY2VQdZmJaVybqLl5QIDAQAB\n\
-----END PUBLIC KEY-----\n\
";
pub const PUBLIC_EC_P256: &str = "\
-----BEGIN PUBLIC KEY-----\n\
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAErk4sW7flXq4P1cMib/J8BiIQE3gO\n\
aP7rNgype7NcFhlT+izbozlzlvMXNkOrckgq6uUuvLkpWleOgMF8GYo7rg==\n\
-----END PUBLIC KEY-----\n\
";

/// A PS256 signer over a test private key: the one place tests, property tests and fuzz
/// targets make validly signed tokens.
pub struct Signer(RsaKeyPair);

impl Signer {
    /// Parses a PKCS#8 `BEGIN PRIVATE KEY` PEM (such as tests/data/vector-private.pem).
    pub fn from_pem(private_pem: &str) -> Signer {
        let der = super::pem_body(private_pem, "PRIVATE KEY").expect("test key PEM");
        Signer(RsaKeyPair::from_pkcs8(&der).expect("test key PKCS#8"))
    }

    /// The compact JWS over `header` and `payload` (any bytes), with a valid PS256 signature.
    pub fn sign(&self, header: &[u8], payload: &[u8]) -> String {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine;
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut signature = vec![0; self.0.public().modulus_len()];
        self.0
            .sign(
                &RSA_PSS_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut signature,
            )
            .expect("PS256 signing");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// Signs `header.payload` (given as JSON text) with PS256, returning the compact JWS.
pub fn sign_ps256(private_pem: &str, header: &str, payload: &str) -> String {
    sign_ps256_bytes(private_pem, header.as_bytes(), payload.as_bytes())
}

/// [`sign_ps256`] for parts that need not be UTF-8.
pub fn sign_ps256_bytes(private_pem: &str, header: &[u8], payload: &[u8]) -> String {
    Signer::from_pem(private_pem).sign(header, payload)
}
