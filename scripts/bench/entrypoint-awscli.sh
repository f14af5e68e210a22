#!/bin/sh
# The entrypoint a vendor would otherwise write: AWS CLI RegisterUsage, a Python PS256 check, exec.
set -e
here=$(dirname "$0")
nonce=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
token=$(aws meteringmarketplace register-usage --product-code "$ENTITLE_PRODUCT_CODE" \
  --public-key-version 1 --nonce="$nonce" --query Signature --output text)
python3 "$here/verify_ps256.py" "$token" "$nonce" "$ENTITLE_PRODUCT_CODE" "$ENTITLE_PUBLIC_KEY_FILE"
exec "$@"
