#!/usr/bin/env bash
# Unpacks CPython VERSION (e.g. 3.14) from Debian unstable's binary packages into
# PREFIX, for hosts whose own release does not ship it. Nothing is installed
# system-wide: apt runs with a private configuration (its own sources, lists and
# cache in a temporary directory), `apt-get download` fetches the .debs and
# `dpkg -x` unpacks them. The interpreter needs unstable's glibc, so it is
# patched (patchelf) to use the unpacked loader and libraries.
#
# Usage: install-debian-python.sh VERSION PREFIX
# Result: PREFIX/usr/bin/pythonVERSION (+ pythonVERSIONd, debug symbols, headers).
set -euo pipefail

fail() { echo "install-debian-python: $*" >&2; exit 1; }

[ $# -eq 2 ] || fail "usage: install-debian-python.sh VERSION PREFIX"
version=$1
prefix=$(realpath -m "$2")
[[ $version =~ ^3\.[0-9]+$ ]] || fail "VERSION must look like 3.14, got '$version'"
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -r "$keyring" ] || fail "$keyring is missing (apt-get install debian-archive-keyring)"
command -v patchelf >/dev/null || fail "patchelf is missing (apt-get install patchelf)"

case "$(dpkg --print-architecture)" in
    amd64) triplet=x86_64-linux-gnu;  loader=ld-linux-x86-64.so.2 ;;
    arm64) triplet=aarch64-linux-gnu; loader=ld-linux-aarch64.so.1 ;;
    *) fail "unsupported architecture $(dpkg --print-architecture)" ;;
esac

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# A private apt that only knows Debian unstable.
mkdir -p "$scratch/lists/partial" "$scratch/cache/archives/partial" "$scratch/sources" "$scratch/debs"
printf 'Types: deb\nURIs: %s\nSuites: sid\nComponents: main\nSigned-By: %s\n' \
    "$mirror" "$keyring" > "$scratch/sources/sid.sources"
cat > "$scratch/apt.conf" <<CONF
Dir::Etc::sourcelist "/dev/null";
Dir::Etc::sourceparts "$scratch/sources";
Dir::Etc::preferencesparts "$scratch/none";
Dir::State::Lists "$scratch/lists";
Dir::Cache "$scratch/cache";
Acquire::Languages "none";
APT::Sandbox::User "root";
CONF
export APT_CONFIG=$scratch/apt.conf
echo "reading Debian unstable's package index"
apt-get update -qq

# The interpreter and the unstable runtime libraries it links against.
packages=(
    "python$version-minimal" "libpython$version-minimal" "libpython$version-stdlib" "libpython$version"
    libc6 libexpat1 zlib1g libssl3t64 libffi8 libzstd1 liblzma5 libbz2-1.0
)
cd "$scratch/debs"
echo "downloading ${packages[*]}"
apt-get download -qq "${packages[@]}"
# The debug interpreter, its symbols and the headers help frame-walking work.
apt-get download -qq "python$version-dbg" "libpython$version-dev" ||
    echo "note: python$version-dbg / libpython$version-dev unavailable, continuing without" >&2

mkdir -p "$prefix"
for deb in ./*.deb; do
    dpkg -x "$deb" "$prefix"
done

unpacked_loader=$prefix/usr/lib/$triplet/$loader
[ -e "$unpacked_loader" ] || unpacked_loader=$prefix/lib/$triplet/$loader
[ -e "$unpacked_loader" ] || fail "the loader $loader was not unpacked"
for exe in "$prefix/usr/bin/python$version" "$prefix/usr/bin/python${version}d"; do
    [ -f "$exe" ] && [ ! -L "$exe" ] || continue
    [ -e "$exe.orig" ] || cp -p "$exe" "$exe.orig"
    # A forced DT_RPATH (not RUNPATH) also applies to extension modules' dependencies.
    patchelf --set-interpreter "$unpacked_loader" \
        --force-rpath --set-rpath "$prefix/usr/lib/$triplet:$prefix/lib/$triplet" "$exe"
done

"$prefix/usr/bin/python$version" -c 'import sys, ssl, json, ctypes; print(sys.version)'
echo "installed $prefix/usr/bin/python$version"
