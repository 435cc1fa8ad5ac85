// SPDX-License-Identifier: Apache-2.0
package dev.ferry.testbed;

import java.util.ArrayList;
import java.util.List;

/** A machine made of one network namespace with one interface, eth0, on the testbed's LAN. */
public final class Host {
  private final String netns;
  private final String role;
  private final String lanPort;

  Host(String netns, String role, String lanPort) {
    this.netns = netns;
    this.role = role;
    this.lanPort = lanPort;
  }

  /** The namespace's name, as {@code ip netns} knows it. */
  public String netns() {
    return netns;
  }

  public String role() {
    return role;
  }

  String lanPort() {
    return lanPort;
  }

  /** For a pod: the name of its veth's end on the node (the host interface of the node's route). */
  public String podPort() {
    return lanPort;
  }

  /** On a node: routes {@code ip} to the pod behind {@code pod}'s veth, as the CNI does. */
  public void routeToPod(String ip, Host pod) {
    Shell.run("ip", "-n", netns, "route", "add", ip, "dev", pod.podPort(), "scope", "link");
  }

  /** Adds an address to eth0: "198.18.0.100/24" or "fd66::100/64" (IPv6 without DAD). */
  public void addAddress(String cidr) {
    addAddress("eth0", cidr);
  }

  /** Adds an address to {@code ifname}, IPv6 without DAD. */
  public void addAddress(String ifname, String cidr) {
    List<String> cmd =
        new ArrayList<>(List.of("ip", "-n", netns, "addr", "add", cidr, "dev", ifname));
    if (cidr.contains(":")) {
      cmd.add("nodad");
    }
    Shell.run(cmd);
  }

  public void removeAddress(String cidr) {
    removeAddress("eth0", cidr);
  }

  public void removeAddress(String ifname, String cidr) {
    Shell.run("ip", "-n", netns, "addr", "del", cidr, "dev", ifname);
  }

  /** eth0's MAC address. */
  public String mac() {
    return mac("eth0");
  }

  /** The MAC address of {@code ifname}. */
  public String mac(String ifname) {
    return Shell.run("ip", "-n", netns, "-br", "link", "show", ifname).trim().split("\\s+")[2];
  }

  /**
   * Points this host's neighbour entry for {@code ip} at {@code mac}, as a gratuitous ARP would.
   */
  public void setNeighbour(String ip, String mac) {
    neighbour(ip, mac, "reachable");
  }

  /**
   * Points this host's neighbour entry for {@code ip} at {@code mac} for good: no ARP changes it.
   * As a VPC's router delivers an address to the interface EC2 has it on, whoever answers ARP.
   */
  public void pinNeighbour(String ip, String mac) {
    neighbour(ip, mac, "permanent");
  }

  private void neighbour(String ip, String mac, String state) {
    Shell.run(
        "ip", "-n", netns, "neigh", "replace", ip, "lladdr", mac, "dev", "eth0", "nud", state);
  }

  /** Runs a command inside this host and returns its output. */
  public String run(String... command) {
    List<String> cmd = new ArrayList<>(List.of("ip", "netns", "exec", netns));
    cmd.addAll(List.of(command));
    return Shell.run(cmd);
  }

  /** A process builder for a command inside this host (for long-running clients like curl). */
  public ProcessBuilder process(String... command) {
    List<String> cmd = new ArrayList<>(List.of("ip", "netns", "exec", netns));
    cmd.addAll(List.of(command));
    return new ProcessBuilder(cmd);
  }

  @Override
  public String toString() {
    return role + " (netns " + netns + ")";
  }
}
