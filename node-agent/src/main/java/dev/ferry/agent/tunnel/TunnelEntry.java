// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.tunnel;

import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Optional;

/**
 * One moved address in the forwarding tunnel: {@code struct tunnel_entry} in bpf/tunnel.h (64
 * bytes; addresses in network order, the rest in host order).
 *
 * @param role what this node does for the address
 * @param local this node's address on {@code ifindex}: the tunnel's outer source
 * @param peer the other node's address on the same link: the outer destination
 * @param gateway SOURCE: the next hop towards the clients; empty when they are on the link
 * @param ifindex the interface that carries the address's traffic
 * @param deadlineNanos CLOCK_MONOTONIC ({@code System.nanoTime()}) time past which the programs let
 *     every packet be
 * @param switchedNanos TARGET: when the first segment reached this node directly, 0 before; written
 *     by the program
 * @param forwarded packets this node put into the tunnel
 * @param received packets this node took out of it
 * @param tooBig packets dropped because the outer header took them over the interface's MTU
 */
public record TunnelEntry(
    Role role,
    Inet4Address local,
    Inet4Address peer,
    Optional<Inet4Address> gateway,
    int ifindex,
    long deadlineNanos,
    long switchedNanos,
    long forwarded,
    long received,
    long tooBig) {
  static final int SIZE = 64;

  /** TUNNEL_SOURCE and TUNNEL_TARGET. */
  public enum Role {
    /** The VPC still delivers the address here: its packets go on to the peer. */
    SOURCE(1),
    /** The address lives here: its replies go back through the peer until the VPC switches. */
    TARGET(2);

    final int code;

    Role(int code) {
      this.code = code;
    }

    static Role of(int code) {
      for (Role r : values()) {
        if (r.code == code) {
          return r;
        }
      }
      throw new IllegalArgumentException("no tunnel role " + code + " (bpf/tunnel.h)");
    }
  }

  /** A fresh entry: no switch seen, no packet counted. */
  static TunnelEntry of(
      Role role,
      Inet4Address local,
      Inet4Address peer,
      Optional<Inet4Address> gateway,
      int ifindex,
      long deadlineNanos) {
    return new TunnelEntry(role, local, peer, gateway, ifindex, deadlineNanos, 0, 0, 0, 0);
  }

  /** Whether the VPC delivers the address to the target now (seen there, TARGET only). */
  public boolean switched() {
    return switchedNanos != 0;
  }

  byte[] encode() {
    ByteBuffer b = ByteBuffer.allocate(SIZE).order(ByteOrder.nativeOrder());
    b.putInt(role.code);
    b.put(local.getAddress());
    b.put(peer.getAddress());
    b.put(gateway.map(InetAddress::getAddress).orElse(new byte[4]));
    b.putInt(ifindex);
    b.putInt(0);
    b.putLong(deadlineNanos);
    b.putLong(switchedNanos);
    b.putLong(forwarded);
    b.putLong(received);
    b.putLong(tooBig);
    return b.array();
  }

  static TunnelEntry decode(byte[] raw) {
    ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.nativeOrder());
    return new TunnelEntry(
        Role.of(b.getInt(0)),
        address(raw, 4),
        address(raw, 8),
        b.getInt(12) == 0 ? Optional.empty() : Optional.of(address(raw, 12)),
        b.getInt(16),
        b.getLong(24),
        b.getLong(32),
        b.getLong(40),
        b.getLong(48),
        b.getLong(56));
  }

  static byte[] key(Inet4Address address) {
    return address.getAddress();
  }

  private static Inet4Address address(byte[] raw, int offset) {
    byte[] a = new byte[4];
    System.arraycopy(raw, offset, a, 0, 4);
    try {
      return (Inet4Address) InetAddress.getByAddress(a);
    } catch (UnknownHostException e) {
      throw new AssertionError("four bytes are always an address", e);
    }
  }
}
