#!/usr/bin/env bash
# Builds the packages of captioner (issue 25, docs/install.md):
#
#   target/debian/captioner_VERSION-1_ARCH.deb          (cargo-deb, crates/cli/Cargo.toml's
#                                                         [package.metadata.deb])
#   target/dist/captioner-VERSION-ARCH-linux.tar.gz     (bin/captioner, share/..., INSTALL)
#
# Installs cargo-deb from crates.io when it is missing (the version pinned below), checks that
# models/ holds what the package ships (it fails naming what is missing), builds the release
# binary (an incremental build in target/), then both packages. Run from anywhere:
#
#   tools/package.sh [--fast]
#
# --fast: quicker, lighter compression of the .deb (cargo deb --fast: on the 2-core CI machine
# about 30 s instead of 100 s, and a few per cent larger); tools/package-test.sh uses it.
set -euo pipefail
cd "$(dirname "$0")/.."

deb_flags=()
for arg in "$@"; do
  case "$arg" in
    --fast) deb_flags+=(--fast) ;;
    *)
      echo "usage: tools/package.sh [--fast]" >&2
      exit 2
      ;;
  esac
done

CARGO_DEB_VERSION=3.8.0
say() { echo "package: $*"; }
fail() {
  echo "package: error: $*" >&2
  exit 1
}
step_start=$(date +%s)
step() {
  local now
  now=$(date +%s)
  say "$1 ($((now - step_start)) s)"
  step_start=$now
}

# The shipped models: the package is useless without them. A clone without Git LFS or a
# partial copy holds small pointer files or nothing; say which file and what to do.
need=(
  models/efficientnet-lite0.safetensors
  models/imagenet_classes.txt
  models/imagenet_tags.txt
  models/default/config.json
  models/default/vocab.json
  models/default/weights.safetensors
)
missing=()
for f in "${need[@]}"; do
  if [ ! -s "$f" ]; then
    missing+=("$f")
  elif [[ "$f" == *.safetensors ]] && [ "$(head -c 7 "$f" | tr -d '\000')" = "version" ]; then
    missing+=("$f (a Git LFS pointer, not the weights: run git lfs pull)")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  {
    echo "package: error: models/ lacks what the package ships:"
    printf '  %s\n' "${missing[@]}"
    echo "models/ comes with the repository (see models/README.md for where each file is from);"
    echo "check out the whole repository, or restore the files with git checkout -- models/"
  } >&2
  exit 1
fi

# cargo-deb, the pinned version, from crates.io.
if [ "$(cargo deb --version 2>/dev/null | awk '{print $NF}')" != "$CARGO_DEB_VERSION" ]; then
  say "installing cargo-deb $CARGO_DEB_VERSION from crates.io"
  cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked
  step "cargo-deb installed"
fi

version=$(cargo metadata --no-deps --format-version 1 |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "captioner-cli"))')
arch=$(uname -m)
deb_arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)

cargo build --release -p captioner-cli
step "release binary built: target/release/captioner"

# The .deb; cargo-deb strips the binary it packs.
cargo deb -p captioner-cli --no-build "${deb_flags[@]}" --output target/debian/
deb=$(ls -t target/debian/captioner_"$version"-*.deb | head -n 1)
step "built $deb ($(du -h "$deb" | cut -f1))"

# The portable tar.gz: the same files under one folder, run as bin/captioner (which finds
# share/captioner/models beside it, src/paths.rs).
name="captioner-$version-$arch-linux"
stage="target/dist/$name"
rm -rf "$stage"
mkdir -p "$stage/bin" "$stage/share/captioner" "$stage/share/applications" "$stage/share/metainfo"
cp target/release/captioner "$stage/bin/"
if command -v strip >/dev/null 2>&1; then
  strip "$stage/bin/captioner"
fi
cp -r models "$stage/share/captioner/models"
cp assets/captioner.desktop "$stage/share/applications/"
cp assets/io.github.captioner.Captioner.metainfo.xml "$stage/share/metainfo/"
mkdir -p "$stage/share/icons/hicolor/scalable/apps"
cp assets/captioner.svg "$stage/share/icons/hicolor/scalable/apps/"
for png in assets/icons/captioner-*.png; do
  n=${png##*-}
  n=${n%.png}
  mkdir -p "$stage/share/icons/hicolor/${n}x$n/apps"
  cp "$png" "$stage/share/icons/hicolor/${n}x$n/apps/captioner.png"
done
cat >"$stage/INSTALL" <<EOF
captioner $version for Linux ($arch)

Run it where it is unpacked; it needs no installation and no Rust toolchain:

  tar xzf $name.tar.gz
  $name/bin/captioner                     opens the app
  $name/bin/captioner caption photo.jpg   captions a photo
  $name/bin/captioner --help              the commands

bin/captioner finds its models in share/captioner/models beside bin/ (set CAPTIONER_MODELS to
use others). Keep bin/ and share/ together: moved alone, the program cannot find its models
and says which file it misses.

To put it on your PATH and in the desktop's menu, for one user (keep the folder whole and
link to its program; do not copy share/captioner into ~/.local/share/captioner, which is
where captioner keeps each user's own trained models and caches):

  mkdir -p ~/.local/opt ~/.local/bin ~/.local/share
  mv $name ~/.local/opt/
  ln -s ~/.local/opt/$name/bin/captioner ~/.local/bin/captioner
  cp -r ~/.local/opt/$name/share/applications ~/.local/opt/$name/share/icons \\
    ~/.local/opt/$name/share/metainfo ~/.local/share/

(for all users, as root: /opt and /usr/local/bin, /usr/local/share). To remove it again:

  rm -r ~/.local/opt/$name ~/.local/bin/captioner \\
    ~/.local/share/applications/captioner.desktop \\
    ~/.local/share/metainfo/io.github.captioner.Captioner.metainfo.xml \\
    ~/.local/share/icons/hicolor/*/apps/captioner.*

The window needs OpenGL (libGL/libEGL, e.g. Mesa) and the X11 or Wayland client libraries
(on Debian or Ubuntu: libgl1 libegl1 libgl1-mesa-dri libxkbcommon-x11-0 libxcursor1 libxi6
libxrandr2); the command line needs only glibc. On Debian and Ubuntu the .deb package is
simpler: sudo apt install ./captioner_${version}-1_$deb_arch.deb
EOF
tar -C target/dist -czf "target/dist/$name.tar.gz" "$name"
step "built target/dist/$name.tar.gz ($(du -h "target/dist/$name.tar.gz" | cut -f1))"
