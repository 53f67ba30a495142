#!/usr/bin/env bash
# Builds labgate's Debian packages with debhelper: labgate_VERSION_ARCH.deb for this machine's
# architecture and, cross-built with Debian multiarch, for the others named (default: amd64 and
# arm64). Each package is checked with lintian (no errors allowed) and copied to dist/.
#
#   packaging/build-deb.sh [--arch amd64,arm64] [--out DIR] [--quick]
#
# --quick builds without optimisation (DEB_BUILD_OPTIONS=noopt): what CI uses to check the
# packaging in less time. Release packages are built without it.
# Installs what it needs on Debian 12 (as root, or with sudo): debhelper, lintian, the cross
# compilers and the :ARCH development libraries.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD

arches="amd64,arm64"
out="$src/dist"
quick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arches="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --quick) quick=1; shift ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-deb.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
native=$(dpkg --print-architecture)
IFS=, read -ra wanted <<<"$arches"

version=$(sed -n 's/^project(labgate VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
changelog_version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version 2>/dev/null || true)
if [ -z "$version" ]; then echo "build-deb.sh: no version in CMakeLists.txt" >&2; exit 1; fi
if [ -n "$changelog_version" ] && [ "$changelog_version" != "$version" ]; then
  echo "build-deb.sh: packaging/debian/changelog is at $changelog_version but CMakeLists.txt at $version;" \
       "add a changelog entry (dch -v $version)" >&2
  exit 1
fi

# ---- build dependencies, only what is missing ----
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
libs=(libboost-dev libboost-filesystem-dev libre2-dev libspdlog-dev libssh-dev libssl-dev libtomlplusplus-dev)
packages=(debhelper dpkg-dev fakeroot lintian cmake ninja-build pkgconf nlohmann-json3-dev "${libs[@]}")
for arch in "${wanted[@]}"; do
  [ "$arch" = "$native" ] && continue
  if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
    echo "build-deb.sh: adding the $arch architecture to dpkg (multiarch)" >&2
    $sudo dpkg --add-architecture "$arch"
    added_arch=1
  fi
  packages+=("crossbuild-essential-$arch" "pkgconf:$arch")
  for lib in "${libs[@]}"; do packages+=("$lib:$arch"); done
done
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "build-deb.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
: "${added_arch:=0}"

# ---- one build per architecture, each in its own copy of the sources ----
work=$(mktemp -d /tmp/labgate-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"
export DEB_BUILD_OPTIONS="nocheck parallel=${LABGATE_JOBS:-2}${DEB_BUILD_OPTIONS:+ $DEB_BUILD_OPTIONS}"
[ "$quick" -eq 1 ] && DEB_BUILD_OPTIONS="$DEB_BUILD_OPTIONS noopt"

# Native first: a cross build runs the native labgate to print the man page and completions.
ordered=()
for arch in "${wanted[@]}"; do [ "$arch" = "$native" ] && ordered+=("$arch"); done
for arch in "${wanted[@]}"; do [ "$arch" != "$native" ] && ordered+=("$arch"); done
help_binary="${LABGATE_HELP_BINARY:-}"

for arch in "${ordered[@]}"; do
  tree="$work/$arch/labgate-$version"
  mkdir -p "$tree"
  # The files git knows (tracked, or new and not ignored): no build directories, no node_modules.
  git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$tree"
  cp -r packaging/debian "$tree/debian"
  started=$SECONDS
  echo "== labgate $version for $arch (DEB_BUILD_OPTIONS=$DEB_BUILD_OPTIONS)" >&2
  if [ "$arch" = "$native" ]; then
    (cd "$tree" && dpkg-buildpackage -b -us -uc >"$work/$arch.log" 2>&1) ||
      { tail -n 60 "$work/$arch.log" >&2; exit 1; }
    help_binary="$tree/obj-$(dpkg-architecture -qDEB_HOST_GNU_TYPE)/labgate"
    # Kept for the cross builds after this one (the tree is removed at exit).
    cp "$help_binary" "$work/labgate-native"
    help_binary="$work/labgate-native"
  else
    if [ -z "$help_binary" ]; then
      scripts/build.sh labgate >/dev/null
      help_binary="$src/build/labgate"
    fi
    (cd "$tree" && LABGATE_HELP_BINARY="$help_binary" dpkg-buildpackage -b -us -uc -a"$arch" >"$work/$arch.log" 2>&1) ||
      { tail -n 60 "$work/$arch.log" >&2; exit 1; }
  fi
  deb="$work/$arch/labgate_${version}_${arch}.deb"
  echo "built $(basename "$deb") in $((SECONDS - started)) s" >&2
  lintian --fail-on error "$deb" >&2
  cp "$deb" "$out/"
  ls "$work/$arch"/labgate-dbgsym_*"_$arch".*deb >/dev/null 2>&1 && cp "$work/$arch"/labgate-dbgsym_*"_$arch".*deb "$out/"
done
if [ "$added_arch" -eq 1 ]; then
  echo "build-deb.sh: note: dpkg now also has the foreign architecture(s) added above" >&2
fi
ls -l "$out"
