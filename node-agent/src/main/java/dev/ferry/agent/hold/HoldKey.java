// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.hold;

import java.net.Inet4Address;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;

/**
 * One held connection, seen from the server: {@code struct hold_key} in bpf/hold.h (40 bytes; IPv4
 * addresses as IPv4-mapped IPv6, ports in network order).
 */
public record HoldKey(InetSocketAddress local, InetSocketAddress remote) {
  static final int SIZE = 40;

  byte[] encode() {
    ByteBuffer b = ByteBuffer.allocate(SIZE); // big-endian: ports go in network order
    b.put(mapped(local)).put(mapped(remote));
    b.putShort((short) local.getPort()).putShort((short) remote.getPort());
    return b.array();
  }

  static HoldKey decode(byte[] raw) {
    ByteBuffer b = ByteBuffer.wrap(raw);
    byte[] l = new byte[16];
    byte[] r = new byte[16];
    b.get(l).get(r);
    int lp = b.getShort() & 0xffff;
    int rp = b.getShort() & 0xffff;
    return new HoldKey(
        new InetSocketAddress(unmapped(l), lp), new InetSocketAddress(unmapped(r), rp));
  }

  private static byte[] mapped(InetSocketAddress a) {
    byte[] ip = a.getAddress().getAddress();
    if (!(a.getAddress() instanceof Inet4Address)) {
      return ip;
    }
    byte[] out = new byte[16];
    out[10] = (byte) 0xff;
    out[11] = (byte) 0xff;
    System.arraycopy(ip, 0, out, 12, 4);
    return out;
  }

  private static java.net.InetAddress unmapped(byte[] ip) {
    try {
      // InetAddress turns an IPv4-mapped address into an Inet4Address by itself.
      return java.net.InetAddress.getByAddress(ip);
    } catch (java.net.UnknownHostException impossible) {
      throw new AssertionError(impossible);
    }
  }

  @Override
  public String toString() {
    return local.getAddress().getHostAddress()
        + ":"
        + local.getPort()
        + " <- "
        + remote.getAddress().getHostAddress()
        + ":"
        + remote.getPort();
  }
}
