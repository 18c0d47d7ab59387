#!/usr/bin/env python3
"""Sends N sequential GET requests on one keep-alive connection and checks every status.

Used by tests/bench/callgrind.sh: the server runs under callgrind, so its instruction count per request is the
measure, not the client's speed.

Usage: drive.py URL N EXPECTED_STATUS [HEADER: VALUE ...]
"""

import http.client
import sys
import urllib.parse


def main() -> None:
    url, n, expected = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    headers = {}
    for h in sys.argv[4:]:
        k, v = h.split(":", 1)
        headers[k.strip()] = v.strip()
    u = urllib.parse.urlsplit(url)
    target = u.path + ("?" + u.query if u.query else "")
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    for i in range(n):
        conn.request("GET", target, headers=headers)
        res = conn.getresponse()
        body = res.read()
        if res.status != expected:
            sys.exit(f"request {i}: GET {url} answered {res.status}, expected {expected}: {body[:300]!r}")
        if res.getheader("connection", "").lower() == "close":
            sys.exit(f"request {i}: the server closed the connection")
    conn.close()


if __name__ == "__main__":
    main()
