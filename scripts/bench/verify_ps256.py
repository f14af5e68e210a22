#!/usr/bin/env python3
"""What a vendor writes next to the AWS CLI: check the RegisterUsage JWT (PS256, claims, nonce)."""
import base64, json, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding


def b64(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def main():
    token, nonce, product_code, key_file = sys.argv[1:5]
    header, payload, signature = token.split(".")
    if json.loads(b64(header)).get("alg") != "PS256":
        sys.exit("bad alg")
    key = serialization.load_pem_public_key(open(key_file, "rb").read())
    key.verify(b64(signature), f"{header}.{payload}".encode(),
               padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    claims = json.loads(b64(payload))
    if (claims.get("productCode"), claims.get("publicKeyVersion"), claims.get("nonce")) != (product_code, 1, nonce):
        sys.exit("claims do not match")


main()
