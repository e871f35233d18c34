#!/usr/bin/env bash
# Chaos test of the real app: random clicks, keys and resizes in its window, then checks that
# nothing was lost or broken.
#
# Usage: tools/chaos.sh [SECONDS] [SEED]     (default 60 s, seed from the clock; CI runs 60 s)
# Needs: xvfb, xdotool, python3 (.ci/apt-packages.txt) and a built target/release/captioner
# (built if missing; CAPTIONER_BIN=PATH uses another binary).
#
# A folder of 100 photos (tests/fixtures/everyday and unfamiliar), half of them with a .txt
# caption (one with Windows line ends and a second line, one that is not UTF-8), is opened in
# the Batch panel with `--run` (captioning starts at once), in a private Xvfb at 1280x800, with
# its own HOME and data folder. tools/chaos.py then sends random input for SECONDS seconds:
# clicks anywhere (every tab, button, menu and dialog can be hit), double clicks, scrolls,
# arrows, Enter, F2, Escape, Tab, digits, Ctrl+Z, Ctrl+Y, Ctrl+S, Ctrl+A, typed words
# (accents, Chinese, tabs) and window resizes between 640x400 and 1600x1000.
#
# It fails when, afterwards:
# - the app is not running any more, or its output has "panicked";
# - a photo (any file of the folder that is not a .txt or .xmp sidecar) changed or is gone;
# - a file appeared in the folder that is not the sidecar of one of its photos;
# - more .txt sidecars changed than the app's log (its status messages, on stderr) reports
#   saved ("saved N captions"), or one it wrote is not UTF-8 text;
# - the resident memory ever exceeded CHAOS_RSS_MB (default 3000 MB).
# The seed is printed, so a failure can be replayed: tools/chaos.sh 60 SEED.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
seed=${2:-$(date +%s)}
rss_limit_mb=${CHAOS_RSS_MB:-3000}
bin=${CAPTIONER_BIN:-target/release/captioner}
if [ ! -x "$bin" ]; then
  cargo build --release --quiet -p captioner-cli
fi
bin=$(realpath "$bin")
for tool in Xvfb xdotool python3; do
  command -v "$tool" >/dev/null || { echo "chaos: $tool is missing (see .ci/apt-packages.txt)"; exit 2; }
done

work=$(mktemp -d)
xvfb=""
app=""
cleanup() {
  [ -n "$app" ] && kill "$app" 2>/dev/null || true
  [ -n "$xvfb" ] && kill "$xvfb" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ -n "${CHAOS_KEEP:-}" ]; then echo "chaos: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

photos=$work/photos
mkdir -p "$photos" "$work/home" "$work/cwd"
python3 - "$photos" <<'EOF'
import os, shutil, sys
out = sys.argv[1]
refs = {}
for folder in ["tests/fixtures/everyday", "tests/fixtures/unfamiliar"]:
    for line in open(os.path.join(folder, "captions.txt"), encoding="utf-8"):
        if line.startswith("#") or "\t" not in line:
            continue
        name, cap = line.rstrip("\n").split("\t", 1)
        refs.setdefault(os.path.join(folder, name), cap)
names = sorted(p for p in refs if os.path.exists(p))[:100]
for i, p in enumerate(names):
    dst = os.path.join(out, os.path.basename(p))
    shutil.copyfile(p, dst)
    stem = os.path.splitext(dst)[0]
    if i == 1:
        open(stem + ".txt", "wb").write(b"two lines\r\na second caption, kept\r\n")
    elif i == 3:
        open(stem + ".txt", "wb").write(b"caf\xe9 au lait\n")
    elif i % 2 == 1:
        open(stem + ".txt", "w", encoding="utf-8").write(refs[p] + "\n")
print(f"chaos: {len(names)} photos, {sum(1 for f in os.listdir(out) if f.endswith('.txt'))} with a caption")
EOF
(cd "$photos" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$work/before.sha"

display=:$((70 + RANDOM % 19))
Xvfb "$display" -screen 0 1700x1100x24 >/dev/null 2>&1 &
xvfb=$!
sleep 2
(cd "$work/cwd" && HOME=$work/home XDG_DATA_HOME=$work/data XDG_CONFIG_HOME=$work/config \
  DISPLAY=$display exec "$bin" app "$photos" --tab batch --run) >"$work/app.log" 2>&1 &
app=$!
wid=""
for _ in $(seq 1 150); do
  wid=$(DISPLAY=$display xdotool search --name 'captioner$' 2>/dev/null | head -1 || true)
  [ -n "$wid" ] && break
  kill -0 "$app" 2>/dev/null || break
  sleep 0.2
done
if [ -z "$wid" ]; then
  echo "chaos: FAIL: the app window did not appear"
  cat "$work/app.log"
  exit 1
fi
echo "chaos: seed $seed, $seconds s"
set +e
python3 tools/chaos.py "$display" "$wid" "$app" "$seconds" "$seed" "$work/rss.log"
chaos=$?
set -e

fail=0
if [ "$chaos" = 3 ] || ! kill -0 "$app" 2>/dev/null; then
  echo "chaos: FAIL: the app is not running any more"
  fail=1
fi
if grep -q "panicked" "$work/app.log"; then
  echo "chaos: FAIL: the app panicked"
  fail=1
fi
# Stop the app before reading the folder, so no save is half-way.
kill "$app" 2>/dev/null || true
wait "$app" 2>/dev/null || true
app=""
python3 - "$photos" "$work/before.sha" "$work/app.log" "$work/rss.log" "$rss_limit_mb" <<'EOF' || fail=1
import hashlib, os, sys
photos, before_file, log_file, rss_file, limit_mb = sys.argv[1:6]
before = {}
for line in open(before_file):
    digest, name = line.rstrip("\n").split("  ", 1)
    before[os.path.normpath(name)] = digest
after = {}
for root, _, files in os.walk(photos):
    for f in files:
        p = os.path.join(root, f)
        after[os.path.normpath(os.path.relpath(p, photos))] = hashlib.sha256(open(p, "rb").read()).hexdigest()
bad = []
stems = {os.path.splitext(n)[0] for n in before if not n.endswith((".txt", ".xmp"))}
for name, digest in before.items():
    if name.endswith((".txt", ".xmp")):
        continue
    if after.get(name) != digest:
        bad.append(f"photo changed or gone: {name}")
changed = []
for name, digest in after.items():
    if name in before:
        if digest != before[name]:
            changed.append(name)
        continue
    stem, ext = os.path.splitext(name)
    if ext in (".txt", ".xmp") and stem in stems:
        changed.append(name)
    else:
        bad.append(f"a file appeared that is no photo's sidecar: {name}")
import re
log = open(log_file, encoding="utf-8", errors="replace").read()
saved = sum(int(n) for n in re.findall(r"saved (\d+) captions", log))
for name in changed:
    if name.endswith(".txt"):
        try:
            open(os.path.join(photos, name), encoding="utf-8").read()
        except UnicodeDecodeError:
            bad.append(f"a sidecar was written that is not UTF-8 text: {name}")
txt = [n for n in changed if n.endswith(".txt")]
if len(txt) > saved:
    bad.append(f"{len(txt)} .txt sidecars changed, the app's log reports {saved} saved: {txt[:5]}")
rss = [int(l.split()[1]) for l in open(rss_file) if l.strip()]
peak = max(rss, default=0) // 1024
if peak > int(limit_mb):
    bad.append(f"resident memory reached {peak} MB (limit {limit_mb} MB)")
print(f"chaos: {len(changed)} sidecars written ({saved} saves logged), resident memory peak {peak} MB, last {rss[-1] // 1024 if rss else 0} MB")
for b in bad:
    print("chaos: FAIL:", b)
sys.exit(1 if bad else 0)
EOF
if [ "$fail" != 0 ]; then
  echo "chaos: FAILED (seed $seed); the app's output:"
  tail -40 "$work/app.log"
  exit 1
fi
echo "chaos: passed (seed $seed)"
