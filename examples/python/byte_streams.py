"""The Python streamer's other streams (examples/README.md, "A WebSocket stream and a large
download"): a WebSocket (RFC 6455) carrying binary messages, and a plain HTTP/1.1 download with a
Content-Length. Both carry the same deterministic content, so a client can check every byte it
got, and both are written in paced chunks whose position is the whole state to hand over. And
the other way, an upload (a PUT's body) read as fast as it comes, whose count and CRC-32 are the
state: the server answers them at the end, for the client to compare with its own.
"""

import base64
import hashlib
import socket
import struct
import zlib

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3
WS_MAGIC, FILE_MAGIC, UPLOAD_MAGIC = b"FWS1", b"FDL1", b"FUP1"
CLOSE_NORMAL = b"\x88\x02\x03\xe8"  # a close frame, FIN set, unmasked, status 1000
MAX_MESSAGES, MAX_SIZE, MAX_FILE = 1_000_000, 16 << 20, 1 << 40


def content(name, offset, n):
    """Bytes offset .. offset+n-1 of the content named name: SHA-256(name || u64 k), k = 0, 1, ..."""
    seed = name.encode()
    first, last = offset // 32, (offset + n + 31) // 32
    blocks = b"".join(hashlib.sha256(seed + struct.pack(">Q", k)).digest()
                      for k in range(first, last))
    start = offset - first * 32
    return blocks[start:start + n]


def accept_key(key):
    """Sec-WebSocket-Accept for a client's Sec-WebSocket-Key (RFC 6455, section 4.2.2)."""
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def ws_header(size):
    """A binary frame's header, FIN set, unmasked (a server never masks), for a payload of size."""
    if size < 126:
        return bytes([0x82, size])
    if size < 1 << 16:
        return bytes([0x82, 126]) + struct.pack(">H", size)
    return bytes([0x82, 127]) + struct.pack(">Q", size)


class _Checked:
    """A state blob's reader: fields in order, then the SHA-256 of all of them."""

    def __init__(self, blob, magic, what):
        if len(blob) < 36 or blob[:4] != magic:
            raise ValueError(f"state does not start with {magic.decode()}: not a {what}")
        if hashlib.sha256(blob[:-32]).digest() != blob[-32:]:
            raise ValueError(f"{what} state checksum (SHA-256) does not match")
        self.blob, self.off, self.end = blob, 4, len(blob) - 32

    def take(self, fmt):
        n = struct.calcsize(fmt)
        if self.off + n > self.end:
            raise ValueError(f"state is cut short at {len(self.blob)} bytes")
        self.off += n
        return struct.unpack(fmt, self.blob[self.off - n:self.off])

    def text(self):
        (n,) = self.take(">H")
        self.take(f"{n}s")
        return self.blob[self.off - n:self.off].decode(errors="replace")

    def done(self):
        if self.off != self.end:
            raise ValueError(f"state has {self.end - self.off} bytes more than its fields")


def _sealed(*parts):
    body = b"".join(parts)
    return body + hashlib.sha256(body).digest()


def _name(name):
    raw = name.encode()
    return struct.pack(">H", len(raw)) + raw


class _Paced:
    """A stream of wire bytes written chunk after chunk at rate bytes per second."""

    offers = False  # a state of a few bytes goes whole at the freeze: nothing to pre-copy

    def __init__(self, rate, chunk):
        self.rate, self.chunk = rate, chunk

    def pace(self):
        return self.chunk / self.rate

    def after_last(self, sock):
        pass


class WebSocketState(_Paced):
    """messages binary messages of size bytes each, message i carrying content bytes i*size ..
    (i+1)*size-1, one frame each; then a close frame. The position is the next message and how
    many bytes of its frame went out (the partial frame): the rest is computed again."""

    def __init__(self, name, messages, size, rate, chunk, next_message=0, written=0):
        super().__init__(rate, chunk)
        self.name, self.messages, self.size = name, messages, size
        self.next, self.written = next_message, written
        self.header = ws_header(size)
        self.frame = len(self.header) + size

    def finished(self):
        return self.next >= self.messages

    def next_event(self):
        """Up to chunk bytes of the frames from where the stream is, across frame boundaries."""
        out, want = [], self.chunk
        while want > 0 and self.next < self.messages:
            frame_start = self.written
            n = min(want, self.frame - frame_start)
            h = len(self.header)
            if frame_start < h:
                out.append(self.header[frame_start:min(h, frame_start + n)])
            lo, hi = max(frame_start, h) - h, frame_start + n - h
            if hi > lo:
                out.append(content(self.name, self.next * self.size + lo, hi - lo))
            self.written += n
            want -= n
            if self.written == self.frame:
                self.next, self.written = self.next + 1, 0
        return b"".join(out)

    def last(self):
        return CLOSE_NORMAL

    def after_last(self, sock):
        """RFC 6455, section 7.1.1: the server closes the TCP connection after it has both sent
        and received a close frame. Waits for the client's (or its end), so that closing drops
        no unread byte, which would send the client a reset."""
        sock.settimeout(30)
        while True:
            head = _read(sock, 2)
            if len(head) < 2:
                return
            n = head[1] & 0x7F
            if n == 126:
                n = struct.unpack(">H", _read(sock, 2))[0]
            elif n == 127:
                n = struct.unpack(">Q", _read(sock, 8))[0]
            _read(sock, n + (4 if head[1] & 0x80 else 0))
            if head[0] & 0x0F == 8:
                return

    def encode(self):
        return _sealed(WS_MAGIC, _name(self.name),
                       struct.pack(">IIIIII", self.messages, self.size, self.rate, self.chunk,
                                   self.next, self.written))

    @classmethod
    def decode(cls, blob):
        r = _Checked(blob, WS_MAGIC, "WebSocket stream")
        name = r.text()
        messages, size, rate, chunk, next_message, written = r.take(">IIIIII")
        r.done()
        state = cls(name, messages, size, rate, chunk, next_message, written)
        if not (1 <= messages <= MAX_MESSAGES and 1 <= size <= MAX_SIZE and rate >= 1
                and chunk >= 1 and next_message <= messages and written < state.frame
                and (next_message < messages or written == 0)):
            raise ValueError(f"position is impossible: {state}")
        return state

    def __str__(self):
        return (f"message {self.next} of {self.messages}, {self.written} of its {self.frame}"
                " frame bytes written")


class DownloadState(_Paced):
    """length bytes of content, the body of one HTTP/1.1 response; the position is the offset."""

    def __init__(self, name, length, rate, chunk, offset=0):
        super().__init__(rate, chunk)
        self.name, self.length, self.offset = name, length, offset

    def finished(self):
        return self.offset >= self.length

    def next_event(self):
        n = min(self.chunk, self.length - self.offset)
        out = content(self.name, self.offset, n)
        self.offset += n
        return out

    def last(self):
        return b""

    def encode(self):
        return _sealed(FILE_MAGIC, _name(self.name),
                       struct.pack(">QIIQ", self.length, self.rate, self.chunk, self.offset))

    @classmethod
    def decode(cls, blob):
        r = _Checked(blob, FILE_MAGIC, "download")
        name = r.text()
        length, rate, chunk, offset = r.take(">QIIQ")
        r.done()
        state = cls(name, length, rate, chunk, offset)
        if not (1 <= length <= MAX_FILE and rate >= 1 and chunk >= 1 and offset <= length):
            raise ValueError(f"position is impossible: {state}")
        return state

    def __str__(self):
        return f"byte {self.offset} of {self.length}"


class UploadState:
    """length bytes a client sends (a PUT's body), read as they come; the position is how many
    arrived and their CRC-32, which the answer reports."""

    offers = False

    def __init__(self, name, length, received=0, crc=0):
        self.name, self.length, self.received, self.crc = name, length, received, crc

    def finished(self):
        return self.received >= self.length

    def take(self, data):
        """Counts bytes read from the client; more than the body's length is an error."""
        if self.received + len(data) > self.length:
            raise ValueError(f"the body goes past its Content-Length {self.length}")
        self.received += len(data)
        self.crc = zlib.crc32(data, self.crc)

    def answer(self):
        body = f"uploaded {self.received} bytes crc32 {self.crc:08x}\n".encode()
        return (f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n").encode() + body

    def encode(self):
        return _sealed(UPLOAD_MAGIC, _name(self.name),
                       struct.pack(">QQI", self.length, self.received, self.crc))

    @classmethod
    def decode(cls, blob):
        r = _Checked(blob, UPLOAD_MAGIC, "upload")
        name = r.text()
        length, received, crc = r.take(">QQI")
        r.done()
        state = cls(name, length, received, crc)
        if not (1 <= length <= MAX_FILE and received <= length):
            raise ValueError(f"position is impossible: {state}")
        return state

    def __str__(self):
        return f"byte {self.received} of {self.length} uploaded"


def download_head(length):
    # No Accept-Ranges: this server answers every request whole, Range or not.
    return (f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {length}\r\nConnection: close\r\n\r\n").encode()


def ws_handshake(headers):
    """The 101 answer to a WebSocket opening handshake; ValueError says what the request lacks.
    No extension is accepted (permessage-deflate would make frames depend on history)."""
    if "websocket" not in headers.get("upgrade", "").lower():
        raise ValueError("expected a WebSocket handshake (Upgrade: websocket)")
    if headers.get("sec-websocket-version") != "13":
        raise ValueError("expected Sec-WebSocket-Version: 13")
    key = headers.get("sec-websocket-key", "")
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            raise ValueError
    except ValueError:
        raise ValueError("Sec-WebSocket-Key must be 16 bytes in base64") from None
    return ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n").encode()


def decode(blob):
    """A handed-over WebSocket, download or upload state, or None when the blob is none."""
    if blob[:4] == WS_MAGIC:
        return WebSocketState.decode(blob)
    if blob[:4] == FILE_MAGIC:
        return DownloadState.decode(blob)
    if blob[:4] == UPLOAD_MAGIC:
        return UploadState.decode(blob)
    return None


def _read(sock, n):
    out = bytearray()
    while len(out) < n:
        try:
            b = sock.recv(n - len(out))
        except socket.timeout:
            return bytes(out)
        if not b:
            break
        out += b
    return bytes(out)
