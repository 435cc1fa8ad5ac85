// SPDX-License-Identifier: Apache-2.0
package dev.ferry.testbed;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * EC2's source/destination check on the testbed's LAN, for the hosts it is enforced on: the switch
 * drops an IPv4 packet a host sends from an address that is not assigned to it, and one sent to a
 * host for an address that is not assigned to it. Assigning an address here is what the VPC does
 * when EC2's assignment takes effect; pointing clients at the new owner is {@link
 * Host#setNeighbour} (the VPC's delivery). nftables' bridge family, in the LAN's namespace; IPv6
 * and ARP pass.
 */
public final class SourceDestinationCheck {
  private static final String TABLE = "ferry_vpc";
  private static final Pattern PACKETS = Pattern.compile("counter packets (\\d+)");

  private final String lan;

  SourceDestinationCheck(String lan) {
    this.lan = lan;
    nft("add", "table", "bridge", TABLE);
    nft(
        "add",
        "chain",
        "bridge",
        TABLE,
        "forward",
        "{ type filter hook forward priority 0 ; policy accept ; }");
  }

  /** Enforces the check on {@code host}'s cable (its eth0), with these addresses assigned to it. */
  public void enforce(Host host, String... addresses) {
    enforce(host.lanPort(), addresses);
  }

  /**
   * Enforces the check on the switch's {@code port} (one ENI: {@link Testbed#secondInterface}
   * returns its port), with these addresses assigned to it.
   */
  public void enforce(String port, String... addresses) {
    String set = set(port);
    nft("add", "set", "bridge", TABLE, set, "{ type ipv4_addr ; }");
    for (String a : addresses) {
      assign(port, a);
    }
    String quoted = "\"" + port + "\"";
    nft(
        "add", "rule", "bridge", TABLE, "forward", "iifname", quoted, "ether", "type", "ip", "ip",
        "saddr", "!=", "@" + set, "counter", "drop");
    nft(
        "add", "rule", "bridge", TABLE, "forward", "oifname", quoted, "ether", "type", "ip", "ip",
        "daddr", "!=", "@" + set, "counter", "drop");
  }

  /** Lets {@code host} send from and receive for {@code address}, as EC2's assignment does. */
  public void assign(Host host, String address) {
    assign(host.lanPort(), address);
  }

  /** As {@link #assign(Host, String)}, on the switch's {@code port}. */
  public void assign(String port, String address) {
    nft("add", "element", "bridge", TABLE, set(port), "{ " + address + " }");
  }

  /** Takes {@code address} away from {@code host}. */
  public void unassign(Host host, String address) {
    unassign(host.lanPort(), address);
  }

  /** As {@link #unassign(Host, String)}, on the switch's {@code port}. */
  public void unassign(String port, String address) {
    nft("delete", "element", "bridge", TABLE, set(port), "{ " + address + " }");
  }

  /** Packets the check has dropped so far, on every host it is enforced on. */
  public long dropped() {
    Matcher m = PACKETS.matcher(nft("list", "chain", "bridge", TABLE, "forward"));
    long sum = 0;
    while (m.find()) {
      sum += Long.parseLong(m.group(1));
    }
    return sum;
  }

  private static String set(String port) {
    return "assigned_" + port.replaceAll("[^A-Za-z0-9_]", "_");
  }

  private String nft(String... args) {
    List<String> cmd = new ArrayList<>(List.of("ip", "netns", "exec", lan, "nft"));
    cmd.addAll(List.of(args));
    return Shell.run(cmd);
  }
}
