#!/usr/bin/env bash
# Installs the Debian packages mixq needs, and only those that are missing.
# Idempotent. Not root: prints the command it would run and exits 0.
#   scripts/install_deps.sh            build + test dependencies
#   scripts/install_deps.sh --peers    also the peer benchmarks' packages
set -euo pipefail
# libcli11-dev, nlohmann-json3-dev: the examples' flags and reports (never the
# library); clang, libclang-rt-dev: the libFuzzer targets (scripts/fuzz.sh).
pkgs=(cmake g++ libeigen3-dev libxsimd-dev libomp-dev doctest-dev libstb-dev zlib1g-dev
      pkg-config g++-aarch64-linux-gnu qemu-user dataset-fashion-mnist clang-format
      libcli11-dev nlohmann-json3-dev clang libclang-rt-dev)
if [[ "${1:-}" == "--peers" ]]; then
  pkgs+=(python3-torch libdnnl-dev libopenblas-dev)
fi
missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install_deps: all ${#pkgs[@]} packages present"
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install_deps: would run: sudo apt-get install -y ${missing[*]}"
  exit 0
fi
echo "install_deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
