// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.address;

import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.UnknownHostException;

/** An address with its prefix length, as it sits on an interface: 198.18.0.100/24, fd66::100/64. */
public record ServiceAddress(InetAddress ip, int prefixLength) {
  public ServiceAddress {
    int max = ip instanceof Inet4Address ? 32 : 128;
    if (prefixLength < 0 || prefixLength > max) {
      throw new IllegalArgumentException(
          "prefix length " + prefixLength + " out of range for " + ip.getHostAddress());
    }
  }

  /** Parses {@code ADDRESS/PREFIX} with a literal address; never consults DNS. */
  public static ServiceAddress parse(String cidr) {
    int slash = cidr.indexOf('/');
    if (slash < 0) {
      throw new IllegalArgumentException("not ADDRESS/PREFIX: " + cidr);
    }
    String literal = cidr.substring(0, slash);
    if (!literal.contains(":") && !literal.matches("[0-9.]+")) {
      throw new IllegalArgumentException("not a literal IP address: " + cidr);
    }
    try {
      return new ServiceAddress(
          InetAddress.getByName(literal), Integer.parseInt(cidr.substring(slash + 1)));
    } catch (UnknownHostException | NumberFormatException e) {
      throw new IllegalArgumentException("not ADDRESS/PREFIX: " + cidr, e);
    }
  }

  @Override
  public String toString() {
    return ip.getHostAddress() + "/" + prefixLength;
  }
}
