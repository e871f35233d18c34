# Sourced by tools/screenshot_batch.sh and tools/screenshot_sizes.sh (not run on its own).
#
# xvfb_shot NAME WIDTH HEIGHT WAIT DATA_DIR ARGS...
#   Starts a private Xvfb, opens `captioner app ARGS...` in it with XDG_DATA_HOME=DATA_DIR,
#   resizes the window to WIDTHxHEIGHT with xdotool, waits WAIT seconds and writes the window
#   to screenshots/NAME.png. Needs xvfb, xdotool, x11-apps (xwd) and imagemagick (convert).
xvfb_shot() {
  local name=$1 w=$2 h=$3 wait=$4 data=$5
  shift 5
  local display=:$((90 + RANDOM % 9))
  Xvfb "$display" -screen 0 "$((w + 40))x$((h + 40))x24" >/dev/null 2>&1 &
  local xvfb=$!
  sleep 2
  XDG_DATA_HOME=$data DISPLAY=$display ./target/release/captioner app "$@" &
  local app=$!
  local wid=""
  for _ in $(seq 1 50); do
    wid=$(DISPLAY=$display xdotool search --name 'captioner$' 2>/dev/null | head -1 || true)
    [ -n "$wid" ] && break
    sleep 0.2
  done
  DISPLAY=$display xdotool windowsize "$wid" "$w" "$h"
  sleep "$wait"
  DISPLAY=$display xwd -id "$wid" -silent | convert xwd:- "screenshots/$name.png"
  kill $app 2>/dev/null || true
  wait $app 2>/dev/null || true
  kill $xvfb 2>/dev/null || true
  echo "wrote screenshots/$name.png"
}
