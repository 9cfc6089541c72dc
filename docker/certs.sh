#!/usr/bin/env bash
# Writes docker/certs/ for the compose cluster with `kvd pki cluster`: a CA, one certificate per
# member (serverAuth + clientAuth, for the client and the peer port; SANs m1/m2/m3 plus localhost
# and 127.0.0.1 so the host reaches the published ports) and a client certificate (CN root).
# An existing CA in docker/certs/ is reused; member and client certificates are re-issued.
# Usage: docker/certs.sh          (needs target/release/kvd: run docker/build-image.sh first)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
kvd="${KVD_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/kvd}"
certs="$here/certs"

if [ ! -x "$kvd" ]; then
  echo "certs.sh: $kvd not found; run docker/build-image.sh first (or set KVD_BIN)" >&2
  exit 1
fi

# One command makes everything (its report is quiet here: it describes a non-Docker set-up).
mkdir -p "$certs"
"$kvd" pki cluster \
  --members m1=https://m1:2380,m2=https://m2:2380,m3=https://m3:2380 \
  --with-localhost \
  --client-name root \
  --dir "$certs" \
  --force >/dev/null

# The compose file configures the members with ETCD_* variables, not these YAML files.
rm -f "$certs"/m[123].yaml

echo "certificates in $certs:"
ls "$certs"
echo "etcdctl from the host (after docker compose up):"
echo "  etcdctl --endpoints=https://127.0.0.1:23791,https://127.0.0.1:23792,https://127.0.0.1:23793 \\"
echo "    --cacert=$certs/ca.pem --cert=$certs/root.pem --key=$certs/root-key.pem endpoint health"
