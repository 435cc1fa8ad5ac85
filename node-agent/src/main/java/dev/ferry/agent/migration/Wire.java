// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

import com.google.protobuf.ByteString;
import dev.ferry.api.v1alpha1.ConnectionId;
import dev.ferry.api.v1alpha1.Endpoint;
import dev.ferry.protocol.Connection;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;

/** Connections between their API form and the agent's. */
public final class Wire {
  private Wire() {}

  public static ConnectionId id(Connection c) {
    return ConnectionId.newBuilder()
        .setLocal(endpoint(c.local()))
        .setRemote(endpoint(c.remote()))
        .build();
  }

  public static Endpoint endpoint(InetSocketAddress a) {
    return Endpoint.newBuilder()
        .setIp(ByteString.copyFrom(a.getAddress().getAddress()))
        .setPort(a.getPort())
        .build();
  }

  /**
   * @throws BadRequest naming {@code field} if an address is not 4 or 16 bytes or a port is out of
   *     range
   */
  public static Connection connection(ConnectionId id, String field) {
    return new Connection(
        address(id.getLocal(), field + ".local"), address(id.getRemote(), field + ".remote"));
  }

  private static InetSocketAddress address(Endpoint e, String field) {
    int n = e.getIp().size();
    if (n != 4 && n != 16) {
      throw new BadRequest(field + ".ip must be 4 (IPv4) or 16 (IPv6) bytes, got " + n);
    }
    if (e.getPort() < 1 || e.getPort() > 65535) {
      throw new BadRequest(field + ".port must be 1..65535, got " + e.getPort());
    }
    try {
      return new InetSocketAddress(InetAddress.getByAddress(e.getIp().toByteArray()), e.getPort());
    } catch (UnknownHostException impossible) {
      throw new AssertionError(impossible); // only thrown for a wrong length, checked above
    }
  }

  /** A connection as people read it, for messages; never fails. */
  public static String format(ConnectionId id) {
    try {
      return connection(id, "id").toString();
    } catch (RuntimeException e) {
      return "(unreadable connection id)";
    }
  }
}
