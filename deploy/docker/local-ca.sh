#!/usr/bin/env bash
# Print the CA certificates this host trusts beyond Debian's ca-certificates
# package (for example a TLS-intercepting egress proxy's CA), as PEM.
# Image builds take them through the EXTRA_CA_CERTS build argument so pip can
# reach PyPI from inside the builder stage; nothing of it reaches the final
# images. Prints nothing on an ordinary host.
set -euo pipefail
exec python3 - <<'PY'
import glob
import re

pem = re.compile(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", re.S)
try:
    with open("/etc/ssl/certs/ca-certificates.crt", encoding="ascii") as f:
        bundle = pem.findall(f.read())
except OSError:
    bundle = []
known = set()
for path in glob.glob("/usr/share/ca-certificates/**/*.crt", recursive=True):
    with open(path, encoding="ascii", errors="replace") as f:
        known.update(pem.findall(f.read()))
print("\n".join(cert for cert in bundle if cert not in known))
PY
