#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Uploads BYTES bytes with a PUT, as fast as the socket's pacing lets it, and records how the
server acknowledges them:

    python3 http-upload.py URL BYTES PACING_BYTES_PER_SECOND SAMPLES

The body is 64 KiB chunks, each a counter and the same random block, so that no two are alike.
Pacing (SO_MAX_PACING_RATE, TCP's own pacing) keeps segments in flight all the time, as on a
long link, whatever the server's read speed: a hold that drops them always has some to keep.
Every millisecond a thread writes "UNIX_MICROS BYTES_ACKED" to SAMPLES (TCP_INFO's
tcpi_bytes_acked). Prints "received N bytes" (acknowledged) about once a second (each MiB at the
least), the server's answer
and "done N bytes crc32 X"; exits 0 only when the server counted the same bytes and CRC-32.
"""

import http.client
import random
import socket
import struct
import sys
import threading
import time
import urllib.parse
import zlib

SO_MAX_PACING_RATE = 47
TCP_INFO_BYTES_ACKED = 120  # struct tcp_info: tcpi_bytes_acked, a __u64, since Linux 4.1
CHUNK, MIB = 65536, 1 << 20


def acked(sock):
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return struct.unpack_from("=Q", info, TCP_INFO_BYTES_ACKED)[0]


def sample(sock, path, stop):
    with open(path, "w") as out:
        while not stop.is_set():
            try:
                out.write(f"{time.time_ns() // 1000} {acked(sock)}\n")
            except OSError:
                return
            time.sleep(0.001)


def main():
    url, total, pacing, samples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    conn.connect()
    sock = conn.sock
    sock.setsockopt(socket.SOL_SOCKET, SO_MAX_PACING_RATE, pacing)
    stop = threading.Event()
    sampler = threading.Thread(target=sample, args=(sock, samples, stop), daemon=True)
    sampler.start()
    conn.putrequest("PUT", u.path + ("?" + u.query if u.query else ""))
    conn.putheader("Content-Length", str(total))
    conn.endheaders()
    block = random.Random(u.query).randbytes(CHUNK - 8)
    step = max(MIB, pacing // MIB * MIB)  # about once a second
    crc, sent, k, report = 0, 0, 0, step
    while sent < total:
        chunk = (struct.pack(">Q", k) + block)[:total - sent]
        sock.sendall(chunk)
        crc = zlib.crc32(chunk, crc)
        sent, k = sent + len(chunk), k + 1
        if sent >= report:
            print(f"received {acked(sock)} bytes", flush=True)
            report += step
    r = conn.getresponse()
    answer = r.read().decode(errors="replace").strip()
    stop.set()
    sampler.join()
    print(f"status {r.status}: {answer}", flush=True)
    print(f"done {sent} bytes crc32 {crc:08x}", flush=True)
    if r.status != 200 or answer != f"uploaded {sent} bytes crc32 {crc:08x}":
        sys.exit("the server counted other bytes than were sent")


if __name__ == "__main__":
    main()
