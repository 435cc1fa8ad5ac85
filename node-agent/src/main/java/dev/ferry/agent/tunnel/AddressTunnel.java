// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.tunnel;

import dev.ferry.agent.tunnel.TunnelEntry.Role;
import dev.ferry.sys.BpfMap;
import dev.ferry.sys.BpfObject;
import dev.ferry.sys.Interfaces;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcAttachment;
import dev.ferry.sys.TcAttachment.Direction;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.Inet4Address;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The forwarding tunnel of moved addresses on one node (bpf/tunnel_tc.bpf.c): while the VPC still
 * delivers an address to the node it left, that node sends the address's packets on to the node
 * that has it now, and that node's replies come back the same way, until its first direct segment
 * says the VPC has switched. Its classifiers sit on the interfaces that carry the addresses'
 * traffic, after the hold's on egress so that they carry the hold's rewrites; its map is pinned
 * under {@code pinDir}.
 */
public final class AddressTunnel implements AutoCloseable {
  static final String OBJECT = "bpf/tunnel_tc.bpf.o";
  static final String INGRESS_PROGRAM = "tunnel_in";
  static final String EGRESS_PROGRAM = "tunnel_out";
  static final String TUNNELS = "ferry_tunnels";
  static final String COUNTERS = "ferry_tunnel_cnt";

  /** The programs' decisions, per CPU: enum tunnel_counter in bpf/tunnel.h. */
  public enum Counter {
    ENCAPSULATED,
    DECAPSULATED,
    SWITCHED,
    EXPIRED,
    TOO_BIG,
    FOREIGN,
    FAILED
  }

  private final Path pinDir;
  private final List<String> interfaceNames;
  private final NetNamespace namespace;
  private final BpfObject object;
  private final BpfMap tunnels;
  private final BpfMap counters;

  private AddressTunnel(
      Path pinDir,
      List<String> interfaceNames,
      NetNamespace namespace,
      BpfObject object,
      BpfMap tunnels,
      BpfMap counters) {
    this.pinDir = pinDir;
    this.interfaceNames = List.copyOf(interfaceNames);
    this.namespace = namespace;
    this.object = object;
    this.tunnels = tunnels;
    this.counters = counters;
  }

  /**
   * Loads the programs (the map pinned under {@code pinDir}, or the pinned one reused) and attaches
   * them to each interface, in {@code namespace}; detaches from those done so far when one fails.
   */
  public static AddressTunnel install(
      Path pinDir, List<String> interfaceNames, NetNamespace namespace) throws IOException {
    if (interfaceNames.isEmpty()) {
      throw new IllegalArgumentException("the tunnel needs at least one interface");
    }
    Files.createDirectories(pinDir);
    BpfObject object = BpfObject.loadResource(AddressTunnel.class, OBJECT, pinDir);
    List<String> done = new ArrayList<>();
    try {
      int in = object.programFd(INGRESS_PROGRAM);
      int out = object.programFd(EGRESS_PROGRAM);
      for (String name : interfaceNames) {
        namespace.call(
            () -> {
              TcAttachment.attach(name, Direction.INGRESS, in, TcAttachment.TUNNEL);
              TcAttachment.attach(name, Direction.EGRESS, out, TcAttachment.TUNNEL);
              return null;
            });
        done.add(name);
      }
      return new AddressTunnel(
          pinDir, interfaceNames, namespace, object, object.map(TUNNELS), object.map(COUNTERS));
    } catch (IOException | RuntimeException e) {
      for (String name : done) {
        try {
          detach(name, namespace);
        } catch (SyscallException | RuntimeException suppressed) {
          e.addSuppressed(suppressed);
        }
      }
      object.close();
      throw e;
    }
  }

  /**
   * On the node the address left: sends the address's packets to {@code peer} (the target node's
   * address on {@code interfaceName}'s link), and the replies that come back out to the clients,
   * through {@code gateway} or, when empty, to the clients directly on the link.
   */
  public void forward(
      Inet4Address address,
      String interfaceName,
      Inet4Address local,
      Inet4Address peer,
      Optional<Inet4Address> gateway,
      long deadlineNanos)
      throws SyscallException {
    put(address, Role.SOURCE, interfaceName, local, peer, gateway, deadlineNanos);
  }

  /**
   * On the node the address moved to: takes the packets {@code peer} forwards, and sends the
   * replies back through it until a client's segment arrives here directly.
   */
  public void receive(
      Inet4Address address,
      String interfaceName,
      Inet4Address local,
      Inet4Address peer,
      long deadlineNanos)
      throws SyscallException {
    put(address, Role.TARGET, interfaceName, local, peer, Optional.empty(), deadlineNanos);
  }

  private void put(
      Inet4Address address,
      Role role,
      String interfaceName,
      Inet4Address local,
      Inet4Address peer,
      Optional<Inet4Address> gateway,
      long deadlineNanos)
      throws SyscallException {
    if (!interfaceNames.contains(interfaceName)) {
      throw new IllegalArgumentException(
          "the tunnel is not on "
              + interfaceName
              + " (it is on "
              + interfaceNames
              + "): list the interface that carries "
              + address.getHostAddress()
              + " among the agent's hold interfaces");
    }
    int ifindex = namespace.call(() -> Interfaces.index(interfaceName));
    TunnelEntry entry = TunnelEntry.of(role, local, peer, gateway, ifindex, deadlineNanos);
    tunnels.update(TunnelEntry.key(address), entry.encode(), BpfMap.BPF_ANY);
  }

  /** The address's entry as the programs see it now: counters, and for a target, the switch. */
  public Optional<TunnelEntry> entry(Inet4Address address) throws SyscallException {
    return tunnels.lookup(TunnelEntry.key(address), TunnelEntry.SIZE).map(TunnelEntry::decode);
  }

  /** Every address with an entry, whoever put it there (an agent before a restart, too). */
  public List<Inet4Address> addresses() throws SyscallException {
    List<Inet4Address> all = new ArrayList<>();
    for (byte[] key : tunnels.keys(4)) {
      try {
        all.add((Inet4Address) java.net.InetAddress.getByAddress(key));
      } catch (java.net.UnknownHostException e) {
        throw new AssertionError("four bytes are always an address", e);
      }
    }
    return all;
  }

  /** Ends the address's forwarding; false when there was none. */
  public boolean end(Inet4Address address) throws SyscallException {
    return tunnels.delete(TunnelEntry.key(address));
  }

  /** One of the programs' counters, summed over the CPUs. */
  public long count(Counter counter) throws SyscallException {
    return counters.sumPerCpu(counter.ordinal());
  }

  /** Detaches the programs from every interface and removes the pinned maps. */
  public void uninstall() throws SyscallException {
    try {
      for (String name : interfaceNames) {
        detach(name, namespace);
      }
    } finally {
      close();
    }
    try {
      Files.deleteIfExists(pinDir.resolve(TUNNELS));
      Files.deleteIfExists(pinDir.resolve(COUNTERS));
      Files.deleteIfExists(pinDir);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot remove pinned maps under " + pinDir, e);
    }
  }

  private static void detach(String name, NetNamespace namespace) throws SyscallException {
    namespace.call(
        () -> {
          TcAttachment.existing(name, Direction.INGRESS, TcAttachment.TUNNEL).detach();
          TcAttachment.existing(name, Direction.EGRESS, TcAttachment.TUNNEL).detach();
          return null;
        });
  }

  /** Lets go of this process's handles; attached programs and pinned maps stay. */
  @Override
  public void close() {
    tunnels.close();
    counters.close();
    object.close();
  }
}
