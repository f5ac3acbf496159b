#!/usr/bin/env python3
"""The resident memory of one reload, sampled every 10 ms (issue 28).

Starts BINARY on CONFIG (a file gen_config.py wrote: it listens on 127.0.0.1:18184
and its clients' secret is bench-secret), asks one client-credentials token (so the
secret cache and the request path are warm), sends SIGHUP, and prints each change of
VmRSS in the 4 s after it as "ms MiB", then the peak (VmHWM, reset just before the
SIGHUP) and the RSS before and after. No load: what the reload itself holds.

    python3 bench/curves/reload_rss.py target/release/gatehouse /tmp/c100k/gatehouse.toml
"""

import os
import signal
import subprocess
import sys
import time
import urllib.request

BASE = "http://127.0.0.1:18184"


def status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) // 1024
    raise KeyError(field)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: reload_rss.py BINARY CONFIG")
    binary, config = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    log = open(os.devnull, "w")
    server = subprocess.Popen(
        [binary, "serve", "--config", config],
        cwd=os.path.dirname(config), stdout=log, stderr=log,
    )
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(BASE + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit("the server did not answer /healthz")
        subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-u", "svc-0:bench-secret",
             "-d", "grant_type=client_credentials", BASE + "/token"],
            check=True,
        )
        time.sleep(1)
        before = status(server.pid, "VmRSS")
        with open(f"/proc/{server.pid}/clear_refs", "w") as f:
            f.write("5")
        start = time.monotonic()
        server.send_signal(signal.SIGHUP)
        last = None
        while time.monotonic() - start < 4:
            rss = status(server.pid, "VmRSS")
            if rss != last:
                print(int((time.monotonic() - start) * 1000), rss)
                last = rss
            time.sleep(0.01)
        peak = status(server.pid, "VmHWM")
        print(f"before {before} MiB, peak {peak} MiB, after {status(server.pid, 'VmRSS')} MiB")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
