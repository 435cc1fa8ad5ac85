// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.hold;

import java.net.Inet4Address;
import java.net.InetAddress;
import java.nio.ByteBuffer;

/** Ethernet frames for the programs' tests: built with correct checksums, and read back. */
final class TestPackets {
  static final int FIN = 0x01;
  static final int SYN = 0x02;
  static final int RST = 0x04;
  static final int PSH = 0x08;
  static final int ACK = 0x10;

  static final byte[] CLIENT_MAC = {2, 0, 0, 0, 0, 0x0c};
  static final byte[] SERVER_MAC = {2, 0, 0, 0, 0, 0x0a};

  private TestPackets() {}

  /** NOP NOP TS(tsval, tsecr): the layout Linux puts in every segment after the handshake. */
  static byte[] timestamps(int tsval, int tsecr) {
    return ByteBuffer.allocate(12)
        .put((byte) 1)
        .put((byte) 1)
        .put((byte) 8)
        .put((byte) 10)
        .putInt(tsval)
        .putInt(tsecr)
        .array();
  }

  static byte[] tcp(
      String src,
      String dst,
      int sport,
      int dport,
      int seq,
      int ack,
      int flags,
      int window,
      byte[] options,
      byte[] payload) {
    InetAddress s = ip(src);
    InetAddress d = ip(dst);
    boolean v4 = s instanceof Inet4Address;
    int tcpLen = 20 + options.length + payload.length;
    ByteBuffer tcp = ByteBuffer.allocate(tcpLen);
    tcp.putShort((short) sport).putShort((short) dport).putInt(seq).putInt(ack);
    tcp.put((byte) (((20 + options.length) / 4) << 4)).put((byte) flags).putShort((short) window);
    tcp.putShort((short) 0).putShort((short) 0).put(options).put(payload);
    byte[] t = tcp.array();
    int sum = pseudoSum(s.getAddress(), d.getAddress(), tcpLen) + sum(t, 0, t.length);
    ByteBuffer.wrap(t).putShort(16, (short) ~fold(sum));

    ByteBuffer frame = ByteBuffer.allocate(14 + (v4 ? 20 : 40) + tcpLen);
    frame.put(SERVER_MAC).put(CLIENT_MAC).putShort((short) (v4 ? 0x0800 : 0x86dd));
    if (v4) {
      int start = frame.position();
      frame.put((byte) 0x45).put((byte) 0).putShort((short) (20 + tcpLen)).putInt(0x00004000);
      frame
          .put((byte) 64)
          .put((byte) 6)
          .putShort((short) 0)
          .put(s.getAddress())
          .put(d.getAddress());
      byte[] raw = frame.array();
      frame.putShort(start + 10, (short) ~fold(sum(raw, start, 20)));
    } else {
      frame
          .putInt(0x60000000)
          .putShort((short) tcpLen)
          .put((byte) 6)
          .put((byte) 64)
          .put(s.getAddress())
          .put(d.getAddress());
    }
    frame.put(t);
    return frame.array();
  }

  /** Swaps the frame's MACs so that it reads as leaving the server (for the egress program). */
  static byte[] fromServer(byte[] frame) {
    byte[] out = frame.clone();
    System.arraycopy(SERVER_MAC, 0, out, 6, 6);
    System.arraycopy(CLIENT_MAC, 0, out, 0, 6);
    return out;
  }

  static byte[] udp4() {
    ByteBuffer frame = ByteBuffer.allocate(14 + 20 + 8);
    frame.put(SERVER_MAC).put(CLIENT_MAC).putShort((short) 0x0800);
    frame.put((byte) 0x45).put((byte) 0).putShort((short) 28).putInt(0x00004000);
    frame
        .put((byte) 64)
        .put((byte) 17)
        .putShort((short) 0)
        .put(ip("198.18.0.1").getAddress())
        .put(ip("198.18.0.100").getAddress());
    frame.putShort((short) 40000).putShort((short) 8080).putShort((short) 8).putShort((short) 0);
    return frame.array();
  }

  static byte[] arp() {
    ByteBuffer frame = ByteBuffer.allocate(14 + 28);
    frame.put(new byte[] {-1, -1, -1, -1, -1, -1}).put(CLIENT_MAC).putShort((short) 0x0806);
    frame
        .putShort((short) 1)
        .putShort((short) 0x0800)
        .put((byte) 6)
        .put((byte) 4)
        .putShort((short) 1);
    frame
        .put(CLIENT_MAC)
        .put(ip("198.18.0.1").getAddress())
        .put(new byte[6])
        .put(ip("198.18.0.100").getAddress());
    return frame.array();
  }

  /** The fields of a frame built here or by the programs. */
  record Parsed(byte[] raw, boolean v4, int l4, int tcpLen) {
    static Parsed of(byte[] raw) {
      boolean v4 = raw[12] == 0x08 && raw[13] == 0x00;
      int l4 = v4 ? 14 + (raw[14] & 0x0f) * 4 : 54;
      int ipPayload =
          v4
              ? (ByteBuffer.wrap(raw).getShort(16) & 0xffff) - (l4 - 14)
              : ByteBuffer.wrap(raw).getShort(18) & 0xffff;
      return new Parsed(raw, v4, l4, ipPayload);
    }

    ByteBuffer b() {
      return ByteBuffer.wrap(raw);
    }

    byte[] src() {
      return java.util.Arrays.copyOfRange(raw, v4 ? 26 : 22, v4 ? 30 : 38);
    }

    byte[] dst() {
      return java.util.Arrays.copyOfRange(raw, v4 ? 30 : 38, v4 ? 34 : 54);
    }

    byte[] srcMac() {
      return java.util.Arrays.copyOfRange(raw, 6, 12);
    }

    int sport() {
      return b().getShort(l4) & 0xffff;
    }

    int dport() {
      return b().getShort(l4 + 2) & 0xffff;
    }

    int seq() {
      return b().getInt(l4 + 4);
    }

    int ack() {
      return b().getInt(l4 + 8);
    }

    int headerLength() {
      return ((raw[l4 + 12] & 0xff) >> 4) * 4;
    }

    int flags() {
      return raw[l4 + 13] & 0xff;
    }

    int window() {
      return b().getShort(l4 + 14) & 0xffff;
    }

    int payloadLength() {
      return tcpLen - headerLength();
    }

    /** The TS option's TSval and TSecr, if the options are NOP NOP TS. */
    int[] timestamps() {
      if (headerLength() < 32 || raw[l4 + 20] != 1 || raw[l4 + 21] != 1 || raw[l4 + 22] != 8) {
        return null;
      }
      return new int[] {b().getInt(l4 + 24), b().getInt(l4 + 28)};
    }

    boolean checksumsValid() {
      if (v4 && fold(sum(raw, 14, 20)) != 0xffff) {
        return false;
      }
      return fold(pseudoSum(src(), dst(), tcpLen) + sum(raw, l4, tcpLen)) == 0xffff;
    }
  }

  static InetAddress ip(String s) {
    try {
      return InetAddress.getByName(s);
    } catch (java.net.UnknownHostException e) {
      throw new IllegalArgumentException(e);
    }
  }

  private static int pseudoSum(byte[] src, byte[] dst, int tcpLen) {
    return sum(src, 0, src.length) + sum(dst, 0, dst.length) + 6 + tcpLen;
  }

  private static int sum(byte[] b, int off, int len) {
    int s = 0;
    for (int i = 0; i < len; i += 2) {
      s += ((b[off + i] & 0xff) << 8) | (i + 1 < len ? b[off + i + 1] & 0xff : 0);
    }
    return s;
  }

  private static int fold(int s) {
    while ((s >>> 16) != 0) {
      s = (s & 0xffff) + (s >>> 16);
    }
    return s;
  }
}
