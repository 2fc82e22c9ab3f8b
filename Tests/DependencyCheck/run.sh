#!/usr/bin/env bash
# Proves SwiftPM accepts Loupe as a remote (URL) dependency: clones the current HEAD into a
# temporary directory, points Tests/DependencyCheck at it by file:// URL and revision, and
# builds and runs the check executable. Only committed changes are tested.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(git -C "$here" rev-parse --show-toplevel)"
rev="$(git -C "$repo" rev-parse HEAD)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/loupe-depcheck.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

git clone --quiet "file://$repo" "$tmp/Loupe"
git -C "$tmp/Loupe" checkout --quiet "$rev"
mkdir -p "$tmp/check"
cp -R "$here/Package.swift" "$here/Sources" "$tmp/check/"
sed -i.bak -e "s|__LOUPE_URL__|file://$tmp/Loupe|" -e "s|__LOUPE_REVISION__|$rev|" "$tmp/check/Package.swift"
rm -f "$tmp/check/Package.swift.bak"
cd "$tmp/check"
swift build "$@"
swift run --skip-build DependencyCheck
