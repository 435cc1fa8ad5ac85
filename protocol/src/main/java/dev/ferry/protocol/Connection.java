// SPDX-License-Identifier: Apache-2.0
package dev.ferry.protocol;

import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;

/** A TCP connection seen from the application's side: its own address, then the client's. */
public record Connection(InetSocketAddress local, InetSocketAddress remote) {

  /** u8 family (4 or 6), local address, u16 port, remote address, u16 port. */
  public void writeTo(ByteBuffer b) {
    b.put((byte) (local.getAddress() instanceof Inet4Address ? 4 : 6));
    b.put(local.getAddress().getAddress()).putShort((short) local.getPort());
    b.put(remote.getAddress().getAddress()).putShort((short) remote.getPort());
  }

  public int encodedSize() {
    return 1 + 2 * (local.getAddress().getAddress().length + 2);
  }

  public static Connection readFrom(ByteBuffer b) throws ProtocolException {
    int family = b.get();
    int len = family == 4 ? 4 : family == 6 ? 16 : -1;
    if (len < 0 || b.remaining() < 2 * (len + 2)) {
      throw new ProtocolException(Frame.ERR_MALFORMED, "bad connection (family " + family + ")");
    }
    return new Connection(endpoint(b, len), endpoint(b, len));
  }

  private static InetSocketAddress endpoint(ByteBuffer b, int len) {
    byte[] ip = new byte[len];
    b.get(ip);
    try {
      return new InetSocketAddress(InetAddress.getByAddress(ip), b.getShort() & 0xffff);
    } catch (UnknownHostException impossible) {
      throw new AssertionError(impossible);
    }
  }

  // Written out rather than left to the record: the generated ones are bootstrapped through
  // invokedynamic (java.lang.runtime.ObjectMethods) on first use, which cost 20-30 ms on the first
  // freeze of every process, agent and application alike, measured.
  @Override
  public boolean equals(Object o) {
    return o instanceof Connection c && local.equals(c.local) && remote.equals(c.remote);
  }

  @Override
  public int hashCode() {
    return 31 * local.hashCode() + remote.hashCode();
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
