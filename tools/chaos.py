#!/usr/bin/env python3
"""Random input for the real app window (run by tools/chaos.sh, not on its own).

chaos.py DISPLAY WINDOW_ID PID SECONDS SEED RSS_LOG

Sends random clicks, double clicks, scrolls, keys (arrows, Enter, F2, Escape, Tab, digits,
Ctrl+Z, Ctrl+Y, Ctrl+S, Ctrl+A, Delete, Backspace), short typed words and window resizes to
the window with xdotool, for SECONDS seconds, with the random seed SEED (the same seed sends
the same events). Every second it writes the app's resident memory (kB, from /proc/PID/status)
to RSS_LOG. Stops early, with exit status 3, when the app process is gone.
"""

import os
import random
import subprocess
import sys
import time

KEYS = [
    "Left", "Right", "Up", "Down", "Return", "F2", "Escape", "Tab", "shift+Tab", "Prior",
    "Next", "Home", "End", "1", "2", "3", "9", "ctrl+z", "ctrl+y", "ctrl+s", "ctrl+a",
    "Delete", "BackSpace", "space",
]
WORDS = ["a dog", "cat", "on the beach", "zz", "é", "猫", "\t", "two people", "x" * 40]


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def main():
    display, wid, pid, seconds, seed, rss_log = sys.argv[1:7]
    pid, seconds = int(pid), float(seconds)
    rng = random.Random(int(seed))
    env = dict(os.environ, DISPLAY=display)

    def xdo(*args):
        subprocess.run(["xdotool", *args], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=10, check=False)

    w, h = 1280, 800
    xdo("windowsize", wid, str(w), str(h))
    xdo("windowfocus", wid)
    start = time.monotonic()
    next_sample = start
    events = 0
    with open(rss_log, "w") as log:
        while time.monotonic() - start < seconds:
            now = time.monotonic()
            if now >= next_sample:
                kb = rss_kb(pid)
                if kb is None:
                    print(f"chaos: the app (pid {pid}) is gone after {events} events")
                    return 3
                log.write(f"{now - start:.1f} {kb}\n")
                log.flush()
                next_sample += 1.0
            r = rng.random()
            if r < 0.40:
                xdo("mousemove", "--window", wid, str(rng.randrange(w)), str(rng.randrange(h)),
                    "click", "1")
            elif r < 0.44:
                xdo("mousemove", "--window", wid, str(rng.randrange(w)), str(rng.randrange(h)),
                    "click", "--repeat", "2", "1")
            elif r < 0.49:
                xdo("click", rng.choice(["4", "5"]))
            elif r < 0.80:
                xdo("key", "--clearmodifiers", rng.choice(KEYS))
            elif r < 0.95:
                xdo("type", "--delay", "5", rng.choice(WORDS))
            else:
                w, h = rng.randrange(640, 1600), rng.randrange(400, 1000)
                xdo("windowsize", wid, str(w), str(h))
            events += 1
            if events % 40 == 0:
                xdo("windowfocus", wid)
            time.sleep(rng.uniform(0.02, 0.08))
    print(f"chaos: {events} events in {seconds:.0f} s (seed {seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
