// SPDX-License-Identifier: Apache-2.0
package dev.ferry.testbed;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Hosts on one Ethernet LAN, built from network namespaces: a bridge in a namespace of its own and
 * one veth per host. Everything it makes carries this process's pid in its name and is removed by
 * {@link #close()}, by a shutdown hook if the JVM exits early, and by the next testbed if this
 * process was killed.
 */
public final class Testbed implements AutoCloseable {
  private static final Pattern OURS = Pattern.compile("fy(\\d+)-\\d+-.*");
  private static final AtomicInteger SEQUENCE = new AtomicInteger();

  private final String prefix;
  private final String lan;
  private final List<String> namespaces = new ArrayList<>();
  private boolean serviceSegment;
  private SourceDestinationCheck sourceDestinationCheck;
  private final Thread cleanup = new Thread(this::deleteNamespaces, "testbed-cleanup");

  private Testbed() {
    prefix = "fy" + ProcessHandle.current().pid() + "-" + SEQUENCE.incrementAndGet() + "-";
    Runtime.getRuntime().addShutdownHook(cleanup);
    lan = namespace("lan");
    Shell.run("ip", "-n", lan, "link", "add", "br0", "type", "bridge");
    Shell.run("ip", "-n", lan, "link", "set", "br0", "up");
  }

  /**
   * A new empty LAN.
   *
   * @throws IllegalStateException when not root or iproute2 is missing: these tests need both and
   *     must not pass without them
   */
  public static Testbed create() {
    requirePrivileges();
    sweepStale();
    return new Testbed();
  }

  /** Fails loudly unless this process can build namespaces. */
  public static void requirePrivileges() {
    String user = System.getProperty("user.name");
    if (!"root".equals(user)) {
      throw new IllegalStateException(
          "this test builds network namespaces and uses TCP_REPAIR: it must run as root "
              + "(CI does; locally run `sudo make test`), but runs as "
              + user);
    }
    if (Stream.of("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip")
        .noneMatch(p -> Files.isExecutable(Path.of(p)))) {
      throw new IllegalStateException("iproute2's `ip` is missing: `apt-get install iproute2`");
    }
  }

  /** A fresh directory in the BPF filesystem for this testbed's pins. */
  /** What the names of this bed's namespaces and pins start with. */
  public String prefix() {
    return prefix;
  }

  public Path bpfPinDir(String name) {
    return mountBpfFs().resolve(prefix + name);
  }

  /**
   * Makes sure a BPF filesystem is mounted at /sys/fs/bpf (minimal VMs and containers often lack
   * one) and returns it.
   */
  public static Path mountBpfFs() {
    requirePrivileges();
    Path root = Path.of("/sys/fs/bpf");
    try {
      boolean mounted =
          Files.readAllLines(Path.of("/proc/self/mounts")).stream()
              .map(l -> l.split(" "))
              .anyMatch(f -> f.length > 2 && f[1].equals(root.toString()) && f[2].equals("bpf"));
      if (!mounted) {
        Shell.run("mount", "-t", "bpf", "bpf", root.toString());
      }
    } catch (java.io.IOException e) {
      throw new IllegalStateException("cannot read /proc/self/mounts", e);
    }
    return root;
  }

  /** Adds a host with the given addresses on its eth0 ("198.18.0.1/24", "fd66::1/64"). */
  public Host host(String role, String... addresses) {
    if (role.length() > 10) {
      throw new IllegalArgumentException("role name must be at most 10 characters: " + role);
    }
    String ns = namespace(role);
    String port = "p-" + role;
    Shell.run(
        "ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", lan);
    Shell.run("ip", "-n", lan, "link", "set", port, "master", "br0", "up");
    Shell.run("ip", "-n", ns, "link", "set", "eth0", "up");
    Host host = new Host(ns, role, port);
    for (String address : addresses) {
      host.addAddress(address);
    }
    return host;
  }

  /**
   * Gives {@code host} a second LAN-facing interface, {@code ifname}, on a second segment of its
   * own (a bridge apart from the first), with the given addresses: the {@code no_manage} ENI that
   * docs/aws.md has users attach for service addresses, in a subnet of its own. Traffic between two
   * hosts' interfaces on this segment never crosses their eth0; a client reaches an address there
   * only through an interface of its own on the segment.
   */
  public void serviceInterface(Host host, String ifname, String... addresses) {
    if (!serviceSegment) {
      Shell.run("ip", "-n", lan, "link", "add", "br1", "type", "bridge");
      Shell.run("ip", "-n", lan, "link", "set", "br1", "up");
      serviceSegment = true;
    }
    plug(host, ifname, "s-" + host.role(), "br1", addresses);
  }

  /**
   * Gives {@code host} a second interface, {@code ifname}, on the same LAN as its eth0, with the
   * given addresses (in a subnet of their own): a second ENI attached to an instance, as the {@code
   * no_manage} ENI of docs/aws.md that carries service addresses. The VPC is one fabric, so both
   * interfaces reach every host; which one a packet takes is the host's routing. Returns the
   * interface's port on the switch, where {@link SourceDestinationCheck#enforce(String, String...)}
   * checks it as EC2 checks each ENI.
   */
  public String secondInterface(Host host, String ifname, String... addresses) {
    String port = "e-" + host.role();
    plug(host, ifname, port, "br0", addresses);
    return port;
  }

  /** A veth from {@code host}'s {@code ifname} to {@code port} on the switch's {@code bridge}. */
  private void plug(Host host, String ifname, String port, String bridge, String... addresses) {
    Shell.run(
        "ip",
        "-n",
        host.netns(),
        "link",
        "add",
        ifname,
        "type",
        "veth",
        "peer",
        "name",
        port,
        "netns",
        lan);
    Shell.run("ip", "-n", lan, "link", "set", port, "master", bridge, "up");
    Shell.run("ip", "-n", host.netns(), "link", "set", ifname, "up");
    for (String address : addresses) {
      host.addAddress(ifname, address);
    }
  }

  /** As {@link #mtu(Host, int)}, for {@code host}'s {@code ifname} on the switch's {@code port}. */
  public void mtu(Host host, String ifname, String port, int mtu) {
    Shell.run("ip", "-n", lan, "link", "set", port, "mtu", String.valueOf(mtu));
    Shell.run("ip", "-n", host.netns(), "link", "set", ifname, "mtu", String.valueOf(mtu));
  }

  /**
   * Adds a pod on {@code node}, wired as the AWS VPC CNI wires one: a veth whose pod end is eth0
   * with a link-scope default route through 169.254.1.1 (a permanent neighbour: the node end's
   * MAC), and whose node end is {@link Host#podPort}. The node forwards and answers ARP for the
   * addresses it routes to its pods (proxy ARP), so a pod address is reachable from the LAN once
   * the node has its /32 route: add one with {@link Host#routeToPod}.
   */
  public Host pod(Host node, String role) {
    if (role.length() > 10) {
      throw new IllegalArgumentException("role name must be at most 10 characters: " + role);
    }
    String nodeEnd = "v-" + role;
    String ns = cabledTo(node, role, nodeEnd);
    Shell.run("ip", "-n", ns, "link", "set", "eth0", "up");
    String nodeMac =
        Shell.run("ip", "-n", node.netns(), "-br", "link", "show", nodeEnd).trim().split("\\s+")[2];
    Shell.run("ip", "-n", ns, "route", "add", "169.254.1.1", "dev", "eth0", "scope", "link");
    Shell.run("ip", "-n", ns, "route", "add", "default", "via", "169.254.1.1", "dev", "eth0");
    Shell.run(
        "ip",
        "-n",
        ns,
        "neigh",
        "add",
        "169.254.1.1",
        "lladdr",
        nodeMac,
        "dev",
        "eth0",
        "nud",
        "permanent");
    Shell.run(
        "ip",
        "netns",
        "exec",
        node.netns(),
        "sysctl",
        "-q",
        "-w",
        "net.ipv4.ip_forward=1",
        "net.ipv4.conf.eth0.proxy_arp=1",
        "net.ipv4.conf." + nodeEnd + ".proxy_arp=1");
    return new Host(ns, role, nodeEnd);
  }

  /**
   * Adds a host that is not on the LAN but behind {@code router}, on a cable of its own: {@code
   * clientCidr} on its eth0, {@code routerCidr} on the router's end, {@code "c-" + role}, and a
   * default route through the router. For a client on the far side of a WAN link ({@link
   * SlowLink}).
   */
  public Host behind(Host router, String role, String routerCidr, String clientCidr) {
    if (role.length() > 10) {
      throw new IllegalArgumentException("role name must be at most 10 characters: " + role);
    }
    String routerEnd = "c-" + role;
    String ns = cabledTo(router, role, routerEnd);
    Shell.run("ip", "-n", router.netns(), "addr", "add", routerCidr, "dev", routerEnd);
    Shell.run("ip", "-n", ns, "link", "set", "eth0", "up");
    Host host = new Host(ns, role, routerEnd);
    host.addAddress(clientCidr);
    Shell.run(
        "ip",
        "-n",
        ns,
        "route",
        "add",
        "default",
        "via",
        routerCidr.substring(0, routerCidr.indexOf('/')));
    return host;
  }

  /**
   * A new namespace for {@code role} whose eth0 is cabled to {@code other}'s {@code otherEnd}, up.
   */
  private String cabledTo(Host other, String role, String otherEnd) {
    String ns = namespace(role);
    Shell.run(
        "ip",
        "-n",
        ns,
        "link",
        "add",
        "eth0",
        "type",
        "veth",
        "peer",
        "name",
        otherEnd,
        "netns",
        other.netns());
    Shell.run("ip", "-n", other.netns(), "link", "set", otherEnd, "up");
    return ns;
  }

  /**
   * Plugs the machine's own namespace into the LAN with {@code cidr}, as the control plane that
   * reaches every node: a test process can then call the nodes' agents directly. The cable goes
   * when the LAN does (a veth dies with its peer), even if the test process is killed.
   */
  public void joinLan(String cidr) {
    String root = "fyc" + ProcessHandle.current().pid() % 100000 + "x" + SEQUENCE.get();
    String port = "p-" + root.substring(3);
    Shell.run("ip", "link", "add", root, "type", "veth", "peer", "name", port, "netns", lan);
    Shell.run("ip", "-n", lan, "link", "set", port, "master", "br0", "up");
    Shell.run("ip", "addr", "add", cidr, "dev", root);
    Shell.run("ip", "link", "set", root, "up");
  }

  /**
   * EC2's source/destination check on this LAN (made on first use): enforce it on the hosts that
   * stand for EC2 instances.
   */
  public synchronized SourceDestinationCheck sourceDestinationCheck() {
    if (sourceDestinationCheck == null) {
      sourceDestinationCheck = new SourceDestinationCheck(lan);
    }
    return sourceDestinationCheck;
  }

  /**
   * Sets the MTU of {@code host}'s eth0 and of its port on the switch, as on EC2, where instances'
   * interfaces take 9001-byte frames while clients on the internet send 1500-byte ones.
   */
  public void mtu(Host host, int mtu) {
    Shell.run("ip", "-n", lan, "link", "set", host.lanPort(), "mtu", String.valueOf(mtu));
    Shell.run("ip", "-n", host.netns(), "link", "set", "eth0", "mtu", String.valueOf(mtu));
  }

  /** Disconnects the host's cable at the switch: nothing reaches it or leaves it. */
  public void unplug(Host host) {
    Shell.run("ip", "-n", lan, "link", "set", host.lanPort(), "down");
  }

  public void plug(Host host) {
    Shell.run("ip", "-n", lan, "link", "set", host.lanPort(), "up");
  }

  /**
   * Moves an address from one host to another. Neighbours still send to the old owner until {@link
   * #announce}: stage the connections on the new owner first, or its kernel resets any client
   * segment that arrives before their sockets exist.
   */
  public void moveAddress(String cidr, Host from, Host to) {
    from.removeAddress(cidr);
    to.addAddress(cidr);
  }

  /**
   * Points every listed host's neighbour entry for the address at its owner, as the L2 address
   * mover's gratuitous ARP / unsolicited neighbour advertisement would.
   */
  public void announce(String cidr, Host owner, Host... neighbours) {
    String ip = cidr.substring(0, cidr.indexOf('/'));
    String mac = owner.mac();
    for (Host n : neighbours) {
      n.setNeighbour(ip, mac);
    }
  }

  private String namespace(String role) {
    String name = prefix + role;
    Shell.run("ip", "netns", "add", name);
    namespaces.add(name);
    Shell.run("ip", "-n", name, "link", "set", "lo", "up");
    // Addresses must be usable at once: no duplicate address detection anywhere here.
    Shell.run(
        "ip",
        "netns",
        "exec",
        name,
        "sysctl",
        "-q",
        "-w",
        "net.ipv6.conf.all.accept_dad=0",
        "net.ipv6.conf.default.accept_dad=0");
    return name;
  }

  @Override
  public void close() {
    deleteNamespaces();
    try {
      Runtime.getRuntime().removeShutdownHook(cleanup);
    } catch (IllegalStateException shuttingDown) {
      // The hook is already running; it does the same.
    }
  }

  private synchronized void deleteNamespaces() {
    for (int i = namespaces.size() - 1; i >= 0; i--) {
      Shell.attempt(List.of("ip", "netns", "del", namespaces.get(i)));
    }
    namespaces.clear();
  }

  /**
   * Deletes what testbeds whose process no longer exists left behind: their namespaces, and the BPF
   * pins made under {@link #bpfPinDir} (a test removes its own when it ends or fails, but not when
   * its process is killed).
   */
  private static void sweepStale() {
    sweep(Path.of("/run/netns"), name -> Shell.attempt(List.of("ip", "netns", "del", name)));
    sweep(
        Path.of("/sys/fs/bpf"),
        name -> Shell.attempt(List.of("rm", "-rf", Path.of("/sys/fs/bpf", name).toString())));
  }

  /** Runs {@code delete} on each entry of {@code dir} named as ours by a process now gone. */
  private static void sweep(Path dir, java.util.function.Consumer<String> delete) {
    if (!Files.isDirectory(dir)) {
      return;
    }
    try (Stream<Path> entries = Files.list(dir)) {
      entries
          .map(p -> p.getFileName().toString())
          .forEach(
              name -> {
                Matcher m = OURS.matcher(name);
                if (m.matches() && ProcessHandle.of(Long.parseLong(m.group(1))).isEmpty()) {
                  delete.accept(name);
                }
              });
    } catch (java.io.IOException e) {
      // Sweeping is best effort: a stale namespace or pin costs a little memory, nothing more.
    }
  }
}
