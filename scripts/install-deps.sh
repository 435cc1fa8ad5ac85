#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Installs what `make demo` and `make test` need, on Debian or Ubuntu, as root. Elsewhere it
# lists what is missing and what each thing is for, and stops.
set -euo pipefail

missing=()   # "package:purpose"

need_cmd() { command -v "$1" >/dev/null 2>&1 || missing+=("$2:$3"); }
need_file() { [[ -e $1 ]] || missing+=("$2:$3"); }
need_python_module() { /usr/bin/python3 -c "import $1" >/dev/null 2>&1 || missing+=("$2:$3"); }

java_major() { javac -version 2>&1 | sed -E 's/^javac ([0-9]+).*/\1/'; }
if ! command -v javac >/dev/null 2>&1 || (( $(java_major) < 17 )); then
  missing+=("openjdk-17-jdk-headless:Java 17 compiler for the build")
fi
need_cmd curl curl "the Maven wrapper downloads Maven with it; the demo's client"
need_cmd unzip unzip "the Maven wrapper unpacks Maven with it"
need_cmd make make "runs these targets"
need_cmd gcc gcc "builds the BPF test runner"
need_cmd ip iproute2 "network namespaces, veth and addresses for tests and the demo"
need_cmd ss iproute2 "reads socket state back in tests"
need_cmd clang clang "compiles the eBPF programs (-target bpf)"
need_cmd llvm-strip llvm "BPF object tooling"
need_cmd bpftool bpftool "inspects loaded BPF programs in tests"
need_cmd nft nftables "firewall tooling the end-to-end cluster uses"
need_file /usr/bin/python3 python3 "the Python example server, and an unprivileged client in tests"
need_python_module cryptography python3-cryptography "checks the agent's proof in the Python example (protocol version 3)"
need_cmd node nodejs "runs the ws package's WebSocket client in the end-to-end tests"
need_cmd npm npm "installs the ws package (npm's WebSocket library) for those tests"
need_cmd setpriv util-linux "runs a test client as an unprivileged user"
need_file /usr/include/bpf/libbpf.h libbpf-dev "libbpf headers and library for the BPF programs and loader"

if ((${#missing[@]} == 0)); then
  exit 0
fi

packages=$(printf '%s\n' "${missing[@]}" | cut -d: -f1 | sort -u | tr '\n' ' ')
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "Ferry needs these, which this machine lacks:" >&2
  printf '  - %s (%s)\n' "${missing[@]//:/ - }" >&2
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "This is not a Debian-like machine: install the equivalents with your package manager." >&2
  else
    echo "Run as root (sudo make ...) so that they can be installed with apt-get: $packages" >&2
  fi
  exit 1
fi

echo "Installing: $packages"
apt-get update -qq
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages >/dev/null
