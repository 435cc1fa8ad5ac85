#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Downloads a URL with the standard library's http.client into a file, as a script would:

    python3 http-download.py URL OUT

No Range request and no second attempt: if the connection breaks, the download fails. Prints
"received N bytes" after each MiB and "done N bytes of LENGTH" at the end; exits 0 only when
the body is as long as the response's Content-Length said.
"""

import http.client
import sys
import urllib.parse

MIB = 1 << 20


def main():
    url, out = sys.argv[1:3]
    u = urllib.parse.urlsplit(url)
    # A generous timeout per read: a moved connection is held for a moment, not for minutes.
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    conn.request("GET", u.path + ("?" + u.query if u.query else ""))
    r = conn.getresponse()
    length = int(r.getheader("Content-Length", "-1"))
    print(f"status {r.status}, Content-Length {length}", flush=True)
    if r.status != 200:
        sys.exit(f"expected 200, got {r.status} {r.reason}")
    n, report = 0, MIB
    with open(out, "wb") as f:
        while True:
            # http.client ends a Content-Length body quietly if the connection closes early:
            # the length is checked below. A reset raises ConnectionResetError.
            chunk = r.read(65536)
            if not chunk:
                break
            f.write(chunk)
            n += len(chunk)
            if n >= report:
                print(f"received {n} bytes", flush=True)
                report = (n // MIB + 1) * MIB
    print(f"done {n} bytes of {length}", flush=True)
    conn.close()
    if n != length:
        sys.exit(f"the body ended after {n} of {length} bytes")


if __name__ == "__main__":
    main()
