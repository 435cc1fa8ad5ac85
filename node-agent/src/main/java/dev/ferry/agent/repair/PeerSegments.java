// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.PeerSegment;
import dev.ferry.sys.SyscallException;
import java.net.Inet4Address;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.logging.Logger;

/**
 * The raw sockets, one per address family, from which the restored sockets of one network namespace
 * are handed their peers' segments ({@link PeerSegment}): one pair for a whole resume, not one per
 * connection.
 */
public final class PeerSegments implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(PeerSegments.class.getName());

  /** No raw socket: every segment is left out. */
  public static final PeerSegments NONE = new PeerSegments(null, null);

  private final PeerSegment ipv4;
  private final PeerSegment ipv6;

  private PeerSegments(PeerSegment ipv4, PeerSegment ipv6) {
    this.ipv4 = ipv4;
    this.ipv6 = ipv6;
  }

  /**
   * Opens, inside {@code namespace}, a raw socket for each family among {@code locals} (the
   * restored sockets' own addresses).
   */
  public static PeerSegments open(NetNamespace namespace, List<InetSocketAddress> locals)
      throws SyscallException {
    InetSocketAddress v4 = first(locals, true);
    InetSocketAddress v6 = first(locals, false);
    PeerSegment ipv4 = v4 == null ? null : namespace.call(() -> PeerSegment.open(v4));
    try {
      PeerSegment ipv6 = v6 == null ? null : namespace.call(() -> PeerSegment.open(v6));
      return new PeerSegments(ipv4, ipv6);
    } catch (SyscallException | RuntimeException e) {
      if (ipv4 != null) {
        ipv4.close();
      }
      throw e;
    }
  }

  /**
   * {@link #open}, or {@link #NONE} where that fails, logged as about {@code what}: best effort, as
   * a socket left without its peer's acknowledgment only waits for the peer's answer to its resume.
   */
  public static PeerSegments openOrNone(
      NetNamespace namespace, List<InetSocketAddress> locals, String what) {
    try {
      return open(namespace, locals);
    } catch (SyscallException | RuntimeException e) {
      LOG.warning(
          () ->
              what
                  + ": no raw socket in "
                  + namespace
                  + " for the clients' acknowledgments; each socket waits for its client's"
                  + " answer to the resume: "
                  + e.getMessage());
      return NONE;
    }
  }

  private static InetSocketAddress first(List<InetSocketAddress> locals, boolean ipv4) {
    return locals.stream()
        .filter(a -> (a.getAddress() instanceof Inet4Address) == ipv4)
        .findFirst()
        .orElse(null);
  }

  /** The raw socket for {@code local}'s family; null when there is none. */
  public PeerSegment forAddress(InetSocketAddress local) {
    return local.getAddress() instanceof Inet4Address ? ipv4 : ipv6;
  }

  @Override
  public void close() {
    if (ipv4 != null) {
      ipv4.close();
    }
    if (ipv6 != null) {
      ipv6.close();
    }
  }
}
