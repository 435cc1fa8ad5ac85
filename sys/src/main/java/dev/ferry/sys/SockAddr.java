// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;

/** Encodes and decodes {@code struct sockaddr_in} and {@code struct sockaddr_in6}. */
final class SockAddr {
  /** sizeof(struct sockaddr_in6), the larger of the two. */
  static final int MAX_LENGTH = 28;

  private SockAddr() {}

  static int family(InetAddress address) {
    return address instanceof Inet4Address ? Native.AF_INET : Native.AF_INET6;
  }

  static byte[] encode(InetSocketAddress address) {
    InetAddress ip = address.getAddress();
    if (ip == null) {
      throw new IllegalArgumentException("unresolved address " + address);
    }
    byte[] raw = ip.getAddress();
    // struct sockaddr_in: family (host order), port (network order), 4 address bytes, zero[8].
    // struct sockaddr_in6: family, port, flowinfo, 16 address bytes, scope_id.
    byte[] out = new byte[ip instanceof Inet4Address ? 16 : MAX_LENGTH];
    int family = family(ip);
    out[0] = (byte) family;
    out[1] = (byte) (family >> 8);
    out[2] = (byte) (address.getPort() >> 8);
    out[3] = (byte) address.getPort();
    if (ip instanceof Inet4Address) {
      System.arraycopy(raw, 0, out, 4, 4);
    } else {
      System.arraycopy(raw, 0, out, 8, 16);
      int scope = ((Inet6Address) ip).getScopeId();
      out[24] = (byte) scope;
      out[25] = (byte) (scope >> 8);
      out[26] = (byte) (scope >> 16);
      out[27] = (byte) (scope >> 24);
    }
    return out;
  }

  static InetSocketAddress decode(byte[] raw, int length) {
    int family = (raw[0] & 0xff) | (raw[1] & 0xff) << 8;
    int port = (raw[2] & 0xff) << 8 | (raw[3] & 0xff);
    byte[] ip;
    if (family == Native.AF_INET && length >= 8) {
      ip = new byte[4];
      System.arraycopy(raw, 4, ip, 0, 4);
    } else if (family == Native.AF_INET6 && length >= 24) {
      ip = new byte[16];
      System.arraycopy(raw, 8, ip, 0, 16);
    } else {
      throw new IllegalArgumentException(
          "not an IP socket address (family " + family + ", length " + length + ")");
    }
    try {
      return new InetSocketAddress(InetAddress.getByAddress(ip), port);
    } catch (UnknownHostException impossible) {
      throw new AssertionError(impossible);
    }
  }
}
