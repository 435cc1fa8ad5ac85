#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Certificates for the node-agents' mutual TLS, made with openssl:
#   ferry-certs.sh DIR           the cluster CA (kept if DIR already has one), then
#                                agent.crt    CN=ferry-node-agent, SAN DNS:ferry-node-agent, server and client
#                                operator.crt CN=ferry-operator (may call everything)
#                                admin.crt    CN=ferry-admin    (the CLI; may call everything)
#   ferry-certs.sh --rogue DIR   a CA nobody trusts and operator.crt signed by it, for tests
#   ferry-certs.sh --node NODE DIR
#                                agent-NODE.crt, signed by DIR's CA: an agent's own certificate, as
#                                agent.crt plus the URI SAN spiffe://ferry.dev/node/NODE, which a
#                                target agent checks against the plan's source node
# Keys are PKCS#8 EC P-256, as Netty wants them.
set -euo pipefail

rogue=false
node=""
if [[ "${1:-}" == "--rogue" ]]; then rogue=true; shift; fi
if [[ "${1:-}" == "--node" ]]; then
  node="${2:?usage: ferry-certs.sh --node NODE DIR}"
  shift 2
  [[ "$node" =~ ^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$ ]] || {
    echo "ferry-certs.sh: --node $node is not a Kubernetes node name" >&2
    exit 1
  }
fi
dir="${1:?usage: ferry-certs.sh [--rogue | --node NODE] DIR}"
command -v openssl >/dev/null || { echo "ferry-certs.sh: openssl is missing: apt-get install openssl" >&2; exit 1; }
mkdir -p "$dir"
cd "$dir"

key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [[ ! -f ca.crt ]]; then
  key ca.key
  openssl req -x509 -new -key ca.key -days 3650 -subj "/CN=ferry-cluster-ca$($rogue && echo -rogue)" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.crt 2>/dev/null
fi

# leaf NAME CN USAGE [SAN]
leaf() {
  local name=$1 cn=$2 usage=$3 san=${4:-}
  key "$name.key"
  openssl req -new -key "$name.key" -subj "/CN=$cn" -out "$name.csr" 2>/dev/null
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature"
    echo "extendedKeyUsage=$usage"
    [[ -n "$san" ]] && echo "subjectAltName=$san"
  } > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 \
    -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

if [[ -n "$node" ]]; then
  [[ -f ca.key ]] || { echo "ferry-certs.sh: --node needs $dir/ca.key: run ferry-certs.sh $dir first" >&2; exit 1; }
  leaf "agent-$node" ferry-node-agent serverAuth,clientAuth "DNS:ferry-node-agent,URI:spiffe://ferry.dev/node/$node"
elif $rogue; then
  leaf operator ferry-operator clientAuth
else
  leaf agent ferry-node-agent serverAuth,clientAuth DNS:ferry-node-agent
  leaf operator ferry-operator clientAuth
  leaf admin ferry-admin clientAuth
fi
chmod 600 ./*.key
echo "certificates in $dir"
