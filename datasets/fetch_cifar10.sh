#!/usr/bin/env bash
# Downloads CIFAR-10 (binary version) from its official source, verifies it,
# and stores the batch files gzip-compressed in the layout mixq reads:
#   TARGET/data_batch_{1..5}.bin.gz  TARGET/test_batch.bin.gz
#   TARGET/batches.meta.txt          TARGET/SHA256SUMS
#
# Checks: the tarball's published MD5 (c32a1d4ab5d03f1284b67883e8d87530), then
# the SHA-256 of each extracted .bin file against datasets/cifar10.sha256.
# Nothing is written to TARGET unless every check passes.
#
# Usage: datasets/fetch_cifar10.sh [options] [TARGET]
#   TARGET                 where to put the files (default: datasets/cifar10
#                          next to this script; mixq looks there, see docs/data.md)
#   --from-tarball FILE    use a local cifar-10-binary.tar.gz instead of downloading
#   --url URL              download from URL instead of the official address
#                          (the MD5 check still applies)
#   --keep-tarball         keep the downloaded tarball in TARGET
#   --force                replace files already in TARGET
#   -h, --help             show this help
# Exit status: 0 done (or already present), 1 failure, 2 usage error.
set -euo pipefail

official_url="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
tar_md5="c32a1d4ab5d03f1284b67883e8d87530"
script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
sums="$script_dir/cifar10.sha256"
# For mixq's own tests only (tests/io/test_fetch_script.cpp), which run the
# script offline on a small fake tarball: replace the expected checksums.
tar_md5="${MIXQ_FETCH_TEST_MD5:-$tar_md5}"
sums="${MIXQ_FETCH_TEST_SHA256SUMS:-$sums}"
files=(data_batch_1.bin data_batch_2.bin data_batch_3.bin data_batch_4.bin data_batch_5.bin test_batch.bin)

usage() { sed -n '/^# Usage:/,/^# Exit status/p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "fetch_cifar10: error: $*" >&2; exit 1; }
usage_error() { echo "fetch_cifar10: $*" >&2; echo "run with --help for usage" >&2; exit 2; }

target=""
tarball=""
url="$official_url"
keep=0
force=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --from-tarball) [[ $# -ge 2 ]] || usage_error "--from-tarball needs a file"; tarball="$2"; shift 2 ;;
    --url) [[ $# -ge 2 ]] || usage_error "--url needs a URL"; url="$2"; shift 2 ;;
    --keep-tarball) keep=1; shift ;;
    --force) force=1; shift ;;
    --) shift; [[ $# -le 1 ]] || usage_error "more than one TARGET"; target="${1:-$target}"; shift $# ;;
    -*) usage_error "unknown option '$1'" ;;
    *) [[ -z "$target" ]] || usage_error "more than one TARGET ('$target' and '$1')"; target="$1"; shift ;;
  esac
done
target="${target:-$script_dir/cifar10}"

if [[ $force -eq 0 ]]; then
  have=1
  for f in "${files[@]}"; do [[ -f "$target/$f.gz" || -f "$target/$f" ]] || have=0; done
  if [[ $have -eq 1 ]]; then
    echo "fetch_cifar10: $target already holds CIFAR-10 (use --force to fetch again)"
    exit 0
  fi
fi

for tool in tar gzip md5sum sha256sum; do
  command -v "$tool" >/dev/null || die "'$tool' is required"
done
[[ -f "$sums" ]] || die "checksum list $sums is missing"

work="$(mktemp -d "${TMPDIR:-/tmp}/fetch_cifar10.XXXXXX")"
trap 'rm -rf "$work"' EXIT

if [[ -n "$tarball" ]]; then
  [[ -f "$tarball" ]] || die "tarball '$tarball' not found"
  cp "$tarball" "$work/cifar-10-binary.tar.gz"
else
  echo "fetch_cifar10: downloading $url"
  if command -v curl >/dev/null; then
    curl -fL --retry 3 -o "$work/cifar-10-binary.tar.gz" "$url" || die "download failed: $url"
  elif command -v wget >/dev/null; then
    wget -O "$work/cifar-10-binary.tar.gz" "$url" || die "download failed: $url"
  else
    die "neither curl nor wget is installed"
  fi
fi

got_md5="$(md5sum "$work/cifar-10-binary.tar.gz" | cut -d' ' -f1)"
[[ "$got_md5" == "$tar_md5" ]] ||
  die "MD5 mismatch for cifar-10-binary.tar.gz: got $got_md5, expected $tar_md5 (corrupt or wrong download)"
echo "fetch_cifar10: tarball MD5 ok"

tar -xzf "$work/cifar-10-binary.tar.gz" -C "$work" || die "cannot unpack the tarball"
src="$work/cifar-10-batches-bin"
[[ -d "$src" ]] || die "the tarball holds no cifar-10-batches-bin/ folder"
(cd "$src" && sha256sum --quiet -c "$sums") || die "SHA-256 mismatch of the extracted .bin files (see above)"
echo "fetch_cifar10: per-file SHA-256 ok"

[[ -f "$src/batches.meta.txt" ]] || die "the tarball holds no batches.meta.txt"
for f in "${files[@]}"; do gzip -9 -n "$src/$f"; done
cp "$sums" "$src/SHA256SUMS"
mkdir -p "$target" || die "cannot create $target"
for f in "${files[@]}"; do
  mv -f "$src/$f.gz" "$target/$f.gz"
  rm -f "$target/$f"  # a stale uncompressed copy would be read first
done
mv -f "$src/batches.meta.txt" "$src/SHA256SUMS" "$target/"
if [[ $keep -eq 1 ]]; then mv -f "$work/cifar-10-binary.tar.gz" "$target/"; fi
echo "fetch_cifar10: CIFAR-10 is in $target"
