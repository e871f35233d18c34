#!/usr/bin/env bash
# The packages of tools/package.sh, installed and run as a user would (issue 25,
# docs/install.md): builds them, validates the desktop entry and the AppStream metainfo,
# installs the .deb with apt-get, runs /usr/bin/captioner caption on a fixture photo and
# /usr/bin/captioner models from a folder outside the checkout with an empty HOME and no
# CAPTIONER_MODELS, checks that a broken /usr/share/captioner/models is reported by file name,
# does the same with the unpacked .tar.gz's bin/captioner, removes the package and checks
# that /usr/bin/captioner is gone.
#
# Skipped (exit 0, saying why) when not run as root or without dpkg and apt-get. Needs
# desktop-file-utils and appstream (.ci/apt-packages.txt). Leaves no package installed,
# whatever happens.
#
#   tools/package-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

say() { echo "package-test: $*"; }
fail() {
  say "FAILED: $*"
  exit 1
}

if [ "$(id -u)" != 0 ]; then
  say "skipped: needs root (it installs and removes the captioner package)"
  exit 0
fi
for prog in dpkg apt-get; do
  if ! command -v "$prog" >/dev/null 2>&1; then
    say "skipped: $prog is missing (not a Debian or Ubuntu machine)"
    exit 0
  fi
done
if dpkg -s captioner >/dev/null 2>&1; then
  fail "a captioner package is installed already; remove it first (apt-get remove captioner)"
fi
for prog in desktop-file-validate appstreamcli; do
  command -v "$prog" >/dev/null 2>&1 ||
    fail "$prog is missing (apt-get install desktop-file-utils appstream, see .ci/apt-packages.txt)"
done

# A photo the shipped model describes in a sentence ("a white bird in the water").
photo="$repo/tests/fixtures/everyday/duck.jpg"
[ -f "$photo" ] || fail "the fixture photo $photo is missing"

work=$(mktemp -d /tmp/captioner-package-test.XXXXXX)
installed=0
cleanup() {
  if [ "$installed" = 1 ] && dpkg -s captioner >/dev/null 2>&1; then
    say "removing the package"
    # Put back what the broken-installation check moved aside.
    if [ -d "$work/models-aside" ]; then
      rm -rf /usr/share/captioner/models
      mv "$work/models-aside" /usr/share/captioner/models
    fi
    DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq captioner >/dev/null || dpkg -r captioner
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# 1. Build.
start=$(date +%s)
tools/package.sh --fast
say "tools/package.sh --fast took $(($(date +%s) - start)) s"
version=$(cargo metadata --no-deps --format-version 1 |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "captioner-cli"))')
deb=$(ls -t target/debian/captioner_"$version"-*.deb | head -n 1)
tarball="target/dist/captioner-$version-$(uname -m)-linux.tar.gz"
[ -f "$deb" ] || fail "tools/package.sh made no .deb in target/debian/"
[ -f "$tarball" ] || fail "tools/package.sh made no $tarball"
say "$deb: $(stat -c %s "$deb") bytes; $tarball: $(stat -c %s "$tarball") bytes"

# 2. The desktop entry and the metainfo, as shipped in the package.
dpkg-deb -x "$deb" "$work/deb"
desktop="$work/deb/usr/share/applications/captioner.desktop"
metainfo="$work/deb/usr/share/metainfo/io.github.captioner.Captioner.metainfo.xml"
[ -f "$desktop" ] || fail "the package has no usr/share/applications/captioner.desktop"
[ -f "$metainfo" ] || fail "the package has no usr/share/metainfo/io.github.captioner.Captioner.metainfo.xml"
desktop-file-validate "$desktop" || fail "desktop-file-validate refused $desktop"
appstreamcli validate --no-net "$metainfo" || fail "appstreamcli validate refused $metainfo"
for f in usr/bin/captioner usr/share/captioner/models/efficientnet-lite0.safetensors \
  usr/share/captioner/models/default/weights.safetensors usr/share/captioner/models/merge/config.json \
  usr/share/icons/hicolor/scalable/apps/captioner.svg usr/share/icons/hicolor/256x256/apps/captioner.png; do
  [ -f "$work/deb/$f" ] || fail "the package has no $f"
done

# 3. Install it as a user would.
installed=1
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "./$deb" >/dev/null ||
  fail "apt-get install ./$deb failed"
[ -x /usr/bin/captioner ] || fail "/usr/bin/captioner is not there after installing"

# Runs a captioner from a temporary folder outside the checkout, with an empty HOME and no
# CAPTIONER_MODELS (so that nothing of the checkout or of this user can help it).
run_outside() {
  local home
  home=$(mktemp -d "$work/home.XXXXXX")
  (cd "$home" && env -u CAPTIONER_MODELS -u XDG_DATA_HOME -u XDG_CACHE_HOME HOME="$home" "$@")
}

check_caption() {
  local what=$1 exe=$2 out
  out=$(run_outside "$exe" caption "$photo" 2>"$work/err") ||
    fail "$what caption $photo failed: $(cat "$work/err")"
  # The first line is the caption: a few words.
  local caption
  caption=$(printf '%s\n' "$out" | head -n 1)
  [ "$(printf '%s\n' "$caption" | wc -w)" -ge 3 ] ||
    fail "$what caption printed no caption: $out"
  say "$what caption: $caption"
}

check_models() {
  local what=$1 exe=$2 dir=$3 out
  out=$(run_outside "$exe" models 2>"$work/err") || fail "$what models failed: $(cat "$work/err")"
  printf '%s\n' "$out" | grep -q "default" || fail "$what models does not list the shipped default model: $out"
  printf '%s\n' "$out" | grep -q "merge" || fail "$what models does not list the shipped merge model: $out"
  printf '%s\n' "$out" | grep -q "$dir" || fail "$what models does not show them in $dir: $out"
  say "$what models lists the shipped models in $dir"
}

check_caption /usr/bin/captioner /usr/bin/captioner
check_models /usr/bin/captioner /usr/bin/captioner /usr/share/captioner/models

# 4. A broken installation says which file is wrong and what to do: the models folder moved
# away, then the encoder weights cut short, then the default model's.
mv /usr/share/captioner/models "$work/models-aside"
if run_outside /usr/bin/captioner caption "$photo" >/dev/null 2>"$work/err"; then
  fail "captioner caption worked without /usr/share/captioner/models"
fi
grep -q "/usr/share/captioner/models" "$work/err" ||
  fail "a missing models folder is not named: $(cat "$work/err")"
grep -qi "reinstall" "$work/err" || fail "a missing models folder does not say what to do: $(cat "$work/err")"
say "with no models folder: $(tail -n 1 "$work/err")"
cp -a "$work/models-aside" /usr/share/captioner/models
head -c 100000 "$work/models-aside/efficientnet-lite0.safetensors" \
  >/usr/share/captioner/models/efficientnet-lite0.safetensors
if run_outside /usr/bin/captioner caption "$photo" >/dev/null 2>"$work/err"; then
  fail "captioner caption worked with truncated encoder weights"
fi
grep -q "/usr/share/captioner/models/efficientnet-lite0.safetensors" "$work/err" ||
  fail "truncated encoder weights are not named: $(cat "$work/err")"
say "with truncated weights: $(tail -n 1 "$work/err")"
cp "$work/models-aside/efficientnet-lite0.safetensors" /usr/share/captioner/models/
head -c 100000 "$work/models-aside/default/weights.safetensors" \
  >/usr/share/captioner/models/default/weights.safetensors
if run_outside /usr/bin/captioner caption "$photo" >/dev/null 2>"$work/err"; then
  fail "captioner caption worked with the default model's weights truncated"
fi
grep -q "/usr/share/captioner/models/default/weights.safetensors" "$work/err" ||
  fail "the default model's truncated weights are not named: $(cat "$work/err")"
grep -qi "reinstall" "$work/err" || fail "a damaged default model does not say what to do: $(cat "$work/err")"
say "with the default model's weights truncated: $(tail -n 1 "$work/err")"
rm -rf /usr/share/captioner/models
mv "$work/models-aside" /usr/share/captioner/models
check_caption "/usr/bin/captioner (models restored)" /usr/bin/captioner

# 5. The portable tar.gz, unpacked anywhere, run as bin/captioner.
mkdir "$work/tar"
tar -C "$work/tar" -xzf "$tarball"
top="$work/tar/$(basename "$tarball" .tar.gz)"
[ -f "$top/INSTALL" ] || fail "the tar.gz has no INSTALL"
check_caption "tar.gz bin/captioner" "$top/bin/captioner"
check_models "tar.gz bin/captioner" "$top/bin/captioner" "$top/share/captioner/models"
# As INSTALL has it: a link on the PATH to bin/captioner in the unpacked folder.
mkdir "$work/linkbin"
ln -s "$top/bin/captioner" "$work/linkbin/captioner"
check_models "a link to the tar.gz's bin/captioner" "$work/linkbin/captioner" "$top/share/captioner/models"

# 6. Remove the package.
DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq captioner >/dev/null ||
  fail "apt-get remove captioner failed"
installed=0
[ ! -e /usr/bin/captioner ] || fail "/usr/bin/captioner is still there after removing the package"
[ ! -e /usr/share/captioner ] || fail "/usr/share/captioner is still there after removing the package"
say "passed"
