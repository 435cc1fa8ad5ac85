"""Checks of byte_streams.py (stdlib only):

    python3 -m unittest examples/python/test_byte_streams.py
"""

import hashlib
import struct
import unittest
import zlib

import byte_streams as bs


def wire(state):
    out = bytearray()
    while not state.finished():
        out += state.next_event()
    return bytes(out + state.last())


class ContentTest(unittest.TestCase):
    def test_content_is_sha256_blocks_in_counter_order(self):
        whole = b"".join(hashlib.sha256(b"x" + struct.pack(">Q", k)).digest() for k in range(4))
        self.assertEqual(bs.content("x", 0, 128), whole)
        self.assertEqual(bs.content("x", 5, 70), whole[5:75])

    def test_accept_key_is_rfc_6455s_example(self):
        self.assertEqual(bs.accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")


class HandoverTest(unittest.TestCase):
    def test_a_websocket_stream_handed_over_mid_frame_goes_on_with_the_frame_s_next_byte(self):
        whole = wire(bs.WebSocketState("n", 7, 70000, 1, 1000))
        for chunks in (1, 69, 70, 300):
            s = bs.WebSocketState("n", 7, 70000, 1, 1000)
            head = b"".join(s.next_event() for _ in range(chunks))
            moved = bs.decode(s.encode())
            self.assertEqual((moved.next, moved.written), (s.next, s.written))
            self.assertEqual(head + wire(moved), whole, f"after {chunks} chunks")
        header = bytes([0x82, 127]) + struct.pack(">Q", 70000)
        for i in range(7):
            frame = whole[i * 70010:(i + 1) * 70010]
            self.assertEqual(frame, header + bs.content("n", i * 70000, 70000), f"frame {i}")
        self.assertEqual(whole[-4:], bs.CLOSE_NORMAL)

    def test_a_download_handed_over_goes_on_from_its_offset(self):
        s = bs.DownloadState("n", 100_003, 1, 1000)
        head = b"".join(s.next_event() for _ in range(42))
        self.assertEqual(head + wire(bs.decode(s.encode())), bs.content("n", 0, 100_003))

    def test_an_upload_handed_over_counts_on_from_its_bytes_and_crc(self):
        body = bytes(range(256)) * 40
        s = bs.UploadState("n", len(body))
        s.take(body[:1000])
        moved = bs.decode(s.encode())
        moved.take(body[1000:])
        self.assertTrue(moved.finished())
        self.assertIn(f"uploaded {len(body)} bytes crc32 {zlib.crc32(body):08x}".encode(),
                      moved.answer())
        with self.assertRaisesRegex(ValueError, "past its Content-Length"):
            moved.take(b"x")
        with self.assertRaisesRegex(ValueError, "impossible"):
            bs.decode(bs.UploadState("n", 10, received=11).encode())

    def test_a_damaged_state_is_declined_with_the_reason(self):
        blob = bytearray(bs.DownloadState("n", 10, 1, 1).encode())
        blob[10] ^= 1
        with self.assertRaisesRegex(ValueError, "checksum"):
            bs.decode(bytes(blob))
        past = bs.DownloadState("n", 10, 1, 1, offset=11).encode()
        with self.assertRaisesRegex(ValueError, "impossible"):
            bs.decode(past)
        self.assertIsNone(bs.decode(b"FTS1"))


if __name__ == "__main__":
    unittest.main()
