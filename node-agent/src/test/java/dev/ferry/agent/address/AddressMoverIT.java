// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.address;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.RtNetlink;
import dev.ferry.sys.SyscallException;
import dev.ferry.testbed.Host;
import dev.ferry.testbed.Testbed;
import java.io.IOException;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The address mover on a real LAN: a client that has just talked to node A reaches node B as soon
 * as the address moved and was announced, with nothing done to the client itself.
 */
class AddressMoverIT {
  /** No listener on this port: a refusal proves that a host owning the address answered. */
  private static final int CLOSED_PORT = 9;

  private static final long NEIGHBOUR_WAIT = TimeUnit.SECONDS.toNanos(2);

  /** The pod's server port. */
  private static final int POD_PORT = 8080;

  /** Long enough for the node's proxy ARP answer, delayed up to 0.8 s by default (proxy_delay). */
  private static final int CONNECT_TIMEOUT_MS = 3000;

  private static final int UNREACHABLE_WAIT_MS = 1000;

  @BeforeAll
  static void root() {
    Testbed.requirePrivileges();
  }

  /**
   * The announcement goes out a few milliseconds after the client resolved the address to node A,
   * well inside the client's neighbour locktime (left at the kernel default and printed): Linux
   * still takes a gratuitous ARP or an override advertisement at once.
   */
  @ParameterizedTest
  @ValueSource(strings = {"198.18.0.100/24", "fd66::100/64"})
  void clientNeighbourEntryPointsAtNodeBRightAfterTheMove(String cidr) throws Exception {
    ServiceAddress address = ServiceAddress.parse(cidr);
    String ip = address.ip().getHostAddress();
    try (Testbed bed = Testbed.create()) {
      Host client = bed.host("client", "198.18.0.1/24", "fd66::1/64");
      Host a = bed.host("node-a", "198.18.0.2/24", "fd66::2/64", cidr);
      Host b = bed.host("node-b", "198.18.0.3/24", "fd66::3/64");
      String locktime =
          client
              .run(
                  "sysctl",
                  "-n",
                  (cidr.contains(":") ? "net.ipv6" : "net.ipv4") + ".neigh.eth0.locktime")
              .trim();

      assertThat(refusedBy(client, address)).as("node A answers for %s", cidr).isTrue();
      assertThat(neighbour(client, ip)).as("client's entry before the move").contains(a.mac());
      long resolved = System.nanoTime();

      AddressMover mover = new AddressMover();
      AddressMover.Step remove;
      AddressMover.Step add;
      AddressMover.Step announce;
      try (NetNamespace aNs = NetNamespace.named(a.netns());
          NetNamespace bNs = NetNamespace.named(b.netns())) {
        remove = mover.remove(address, aNs, "eth0");
        add = mover.add(address, bNs, "eth0");
        announce = mover.announce(address, bNs, "eth0");
      }
      long announced = System.nanoTime();

      assertThat(addresses(a)).doesNotContain(" " + cidr + " ");
      assertThat(addresses(b)).contains(" " + cidr + " ");
      assertThat(remove.changed() && add.changed()).isTrue();

      String entry = neighbour(client, ip);
      while (!entry.contains(b.mac()) && System.nanoTime() - announced < NEIGHBOUR_WAIT) {
        Thread.sleep(10);
        entry = neighbour(client, ip);
      }
      long seen = System.nanoTime();
      System.out.printf(
          "%s: %s, %s, %s; announced %d ms after the client resolved it (locktime %s"
              + " ticks of 10 ms), client entry on node B %d ms later: %s%n",
          cidr,
          remove,
          add,
          announce,
          TimeUnit.NANOSECONDS.toMillis(announced - resolved),
          locktime,
          TimeUnit.NANOSECONDS.toMillis(seen - announced),
          entry);
      assertThat(entry).as("client's entry after the announcement").contains(b.mac());
      assertThat(refusedBy(client, address)).as("node B answers for %s", cidr).isTrue();
    }
  }

  @Test
  void netlinkErrorNamesTheAddressAndTheInterface() throws Exception {
    try (Testbed bed = Testbed.create()) {
      Host a = bed.host("node-a", "198.18.0.2/24");
      ServiceAddress absent = ServiceAddress.parse("198.18.0.200/24");
      try (NetNamespace ns = NetNamespace.named(a.netns())) {
        assertThatThrownBy(
                () ->
                    ns.call(
                        () -> {
                          try (RtNetlink rt = RtNetlink.open()) {
                            rt.removeAddress("eth0", absent.ip(), absent.prefixLength());
                          }
                          return null;
                        }))
            .isInstanceOf(SyscallException.class)
            .hasMessageStartingWith("RTM_DELADDR(198.18.0.200/24 dev eth0) failed: EADDRNOTAVAIL");

        AddressMover mover = new AddressMover();
        assertThat(mover.remove(absent, ns, "eth0").changed()).isFalse();
        assertThat(mover.add(absent, ns, "eth0").changed()).isTrue();
        assertThat(mover.add(absent, ns, "eth0").changed()).isFalse();
        assertThat(addresses(a)).contains(" 198.18.0.200/24 ");
      }
    }
  }

  /**
   * The L3 half, wired as the AWS VPC CNI wires a pod: the address on the pod's eth0, a host route
   * to it through the pod's veth on the node. A client on the LAN reaches a server in the pod
   * through the node (IPv4: the node's proxy ARP; IPv6: the client's route via the node) until the
   * route and the address go; repeating any step changes nothing.
   */
  @ParameterizedTest
  @ValueSource(strings = {"198.18.0.100/32", "fd66::100/128"})
  void podAddressIsReachableThroughTheNodesHostRouteUntilBothGo(String cidr) throws Exception {
    ServiceAddress address = ServiceAddress.parse(cidr);
    String ip = cidr.substring(0, cidr.indexOf('/')); // as ip prints it, not Java's long form
    boolean v6 = cidr.contains(":");
    try (Testbed bed = Testbed.create()) {
      Host client = bed.host("client", "198.18.0.1/24", "fd66::1/64");
      Host node = bed.host("node", "198.18.0.2/24", "fd66::2/64");
      Host pod = bed.pod(node, "pod");
      if (v6) {
        routeIpv6ThroughNode(client, node, pod, ip);
      }
      String route = ip + " dev " + pod.podPort() + " proto static";

      AddressMover mover = new AddressMover();
      try (NetNamespace nodeNs = NetNamespace.named(node.netns());
          NetNamespace podNs = NetNamespace.named(pod.netns())) {
        assertThat(mover.add(address, podNs, "eth0").changed()).isTrue();
        AddressMover.Step addRoute = mover.addRoute(address, nodeNs, pod.podPort());
        assertThat(addRoute.changed()).isTrue();
        assertThat(routes(node, v6)).contains(route + (v6 ? " " : " scope link"));

        try (ServerSocket server = listen(podNs, address)) {
          assertThat(echoes(client, server, CONNECT_TIMEOUT_MS))
              .as("client reaches the pod's server at %s through the node", ip)
              .isTrue();

          assertThat(mover.addRoute(address, nodeNs, pod.podPort()).changed()).isFalse();
          assertThat(mover.add(address, podNs, "eth0").changed()).isFalse();

          AddressMover.Step removeRoute = mover.removeRoute(address, nodeNs, pod.podPort());
          AddressMover.Step remove = mover.remove(address, podNs, "eth0");
          System.out.printf("%s: %s, %s, %s%n", cidr, addRoute, removeRoute, remove);
          assertThat(removeRoute.changed() && remove.changed()).isTrue();
          assertThat(mover.removeRoute(address, nodeNs, pod.podPort()).changed()).isFalse();
          assertThat(mover.remove(address, podNs, "eth0").changed()).isFalse();
          assertThat(routes(node, v6)).doesNotContain(ip + " dev ");

          assertThat(echoes(client, server, UNREACHABLE_WAIT_MS))
              .as("client reaches %s after the route and the address went", ip)
              .isFalse();
          assertThat(pod.run("ip", v6 ? "-6" : "-4", "route", "show", "default"))
              .as("the pod keeps its default route when its only address goes")
              .contains("default via");
          assertThat(pod.run("ip", "neigh", "show", "dev", "eth0"))
              .as("and its gateway's permanent neighbour entry")
              .contains(v6 ? "" : "169.254.1.1");

          mover.add(address, podNs, "eth0");
          mover.addRoute(address, nodeNs, pod.podPort());
          boolean back = echoes(client, server, CONNECT_TIMEOUT_MS);
          assertThat(back)
              .as(
                  "with the address back, as on a rollback, the pod answers its clients again%s",
                  back ? "" : stateOf(client, node, pod, v6))
              .isTrue();
          assertThat(pod.run("ip", "-4", "addr", "show", "dev", "eth0"))
              .as("the placeholder goes when an address comes back")
              .doesNotContain(AddressMover.PLACEHOLDER.getHostAddress());
          mover.removeRoute(address, nodeNs, pod.podPort());
          mover.remove(address, podNs, "eth0");
        }

        // A route the CNI made (`ip route add`: proto boot) is the same route to both steps.
        node.routeToPod(ip, pod);
        assertThat(mover.addRoute(address, nodeNs, pod.podPort()).changed()).isFalse();
        assertThat(mover.removeRoute(address, nodeNs, pod.podPort()).changed()).isTrue();
        assertThat(routes(node, v6)).doesNotContain(ip + " dev ");

        assertThatThrownBy(
                () ->
                    nodeNs.call(
                        () -> {
                          try (RtNetlink rt = RtNetlink.open()) {
                            rt.removeRoute(pod.podPort(), address.ip(), v6 ? 128 : 32);
                          }
                          return null;
                        }))
            .isInstanceOf(SyscallException.class)
            .hasMessageStartingWith(
                "RTM_DELROUTE("
                    + address.ip().getHostAddress()
                    + (v6 ? "/128" : "/32")
                    + " dev "
                    + pod.podPort()
                    + ") failed: ESRCH");
      }
    }
  }

  /**
   * The VPC CNI's wiring on a LAN: the address lives only in the pod's namespace, and its node
   * routes it to the pod's veth and answers the LAN's ARP (proxy ARP, on for the interface) or
   * neighbour solicitations (proxy NDP, an entry per address: PodAddresses adds it with the route)
   * for it. After the move the node, which does not hold the address, announces it from its eth0 as
   * the agent does (PodAddresses.announce): the client's entry, resolved to node A a moment before,
   * points at node B at once, the client reaches the pod there, and still does once its entry has
   * been probed again (node B answers the probe).
   */
  @ParameterizedTest
  @ValueSource(strings = {"198.18.0.100/32", "fd66::100/128"})
  void nodeAnnouncesAnAddressOnlyItsPodHoldsAndTheClientsEntryMovesToIt(String cidr)
      throws Exception {
    ServiceAddress address = ServiceAddress.parse(cidr);
    String ip = cidr.substring(0, cidr.indexOf('/'));
    boolean v6 = cidr.contains(":");
    try (Testbed bed = Testbed.create()) {
      Host client = bed.host("client", "198.18.0.1/24", "fd66::1/64");
      Host a = bed.host("node-a", "198.18.0.2/24", "fd66::2/64");
      Host b = bed.host("node-b", "198.18.0.3/24", "fd66::3/64");
      Host podA = bed.pod(a, "pod-a");
      Host podB = bed.pod(b, "pod-b");
      if (v6) {
        for (Host[] nodeAndPod : new Host[][] {{a, podA}, {b, podB}}) {
          nodeAndPod[0].run(
              "sysctl",
              "-q",
              "-w",
              "net.ipv6.conf.all.forwarding=1",
              // all, not eth0: with eth0's alone the client's unicast probe goes unanswered.
              "net.ipv6.conf.all.proxy_ndp=1");
          String gateway = linkLocal(nodeAndPod[0], nodeAndPod[1].podPort());
          nodeAndPod[1].run("ip", "-6", "route", "add", "default", "via", gateway, "dev", "eth0");
        }
      }

      AddressMover mover = new AddressMover();
      try (NetNamespace aNs = NetNamespace.named(a.netns());
          NetNamespace bNs = NetNamespace.named(b.netns());
          NetNamespace podANs = NetNamespace.named(podA.netns());
          NetNamespace podBNs = NetNamespace.named(podB.netns())) {
        // What PodAddresses.add does with a host route: address, route, proxy entry (IPv6).
        mover.add(address, podANs, "eth0");
        mover.addRoute(address, aNs, podA.podPort());
        mover.addProxy(address, aNs, "eth0");
        try (ServerSocket server = listen(podANs, address)) {
          assertThat(echoes(client, server, CONNECT_TIMEOUT_MS))
              .as("client reaches pod A's server at %s", ip)
              .isTrue();
        }
        assertThat(neighbour(client, ip)).as("client's entry before the move").contains(a.mac());
        assertThat(addresses(b)).as("node B never holds the address").doesNotContain(ip + "/");

        assertThat(mover.removeProxy(address, aNs, "eth0").changed()).isEqualTo(v6);
        mover.removeRoute(address, aNs, podA.podPort());
        mover.remove(address, podANs, "eth0");
        mover.add(address, podBNs, "eth0");
        mover.addRoute(address, bNs, podB.podPort());
        assertThat(mover.addProxy(address, bNs, "eth0").changed()).isEqualTo(v6);
        mover.addProxy(address, bNs, "eth0"); // again: the kernel keeps the one entry
        AddressMover.Step announce = mover.announce(address, bNs, "eth0");
        long announced = System.nanoTime();

        String entry = neighbour(client, ip);
        while (!entry.contains(b.mac()) && System.nanoTime() - announced < NEIGHBOUR_WAIT) {
          Thread.sleep(10);
          entry = neighbour(client, ip);
        }
        System.out.printf(
            "%s from node B, which holds no such address: %s; client's entry %d ms later: %s%n",
            cidr, announce, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - announced), entry);
        assertThat(entry).as("client's entry after node B's announcement").contains(b.mac());
        try (ServerSocket server = listen(podBNs, address)) {
          assertThat(echoes(client, server, CONNECT_TIMEOUT_MS))
              .as("client reaches pod B's server at %s through node B", ip)
              .isTrue();
          // The announced entry is STALE: used, it is probed (unicast, to node B) after
          // delay_first_probe_time (5 s); unanswered it would fail and the client lose the address.
          long probing = System.nanoTime();
          String settled = neighbour(client, ip);
          while (!settled.matches(".*(REACHABLE|FAILED|INCOMPLETE)$")
              && System.nanoTime() - probing < TimeUnit.SECONDS.toNanos(20)) {
            Thread.sleep(100);
            settled = neighbour(client, ip);
          }
          System.out.printf(
              "%s: client's entry %d ms after its use: %s%n",
              cidr, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - probing), settled);
          assertThat(settled)
              .as("client's entry once probed")
              .contains(b.mac())
              .endsWith("REACHABLE");
          assertThat(echoes(client, server, CONNECT_TIMEOUT_MS))
              .as("client still reaches pod B's server at %s", ip)
              .isTrue();
        }
        assertThat(mover.removeProxy(address, bNs, "eth0").changed()).isEqualTo(v6);
        assertThat(mover.removeProxy(address, bNs, "eth0").changed()).isFalse();
      }
    }
  }

  /**
   * The testbed's pod has an IPv4 default route only. Give it the CNI's IPv6 one (through the node
   * end's link-local address), let the node forward, and route the client to the address through
   * the node: there is no proxy NDP for every address, as there is proxy ARP.
   */
  private static void routeIpv6ThroughNode(Host client, Host node, Host pod, String ip)
      throws InterruptedException {
    node.run("sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1");
    String gateway = linkLocal(node, pod.podPort());
    pod.run("ip", "-6", "route", "add", "default", "via", gateway, "dev", "eth0");
    client.run("ip", "-6", "route", "add", ip + "/128", "via", "fd66::2", "dev", "eth0");
    // While the node has no route to the pod it forwards the address's packets back out the LAN,
    // where fd66::/64 is on-link, and sends the client an ICMPv6 redirect: the client would then
    // send on-link, to a neighbour nobody answers here, until that fails (3 s), and the rollback
    // step's reach failed so now and then. This test is the node's route through the client's own
    // route; answering the LAN (the proxy entry PodAddresses adds) is the test below.
    client.run(
        "sysctl",
        "-q",
        "-w",
        "net.ipv6.conf.all.accept_redirects=0",
        "net.ipv6.conf.eth0.accept_redirects=0");
  }

  /** The link-local address of {@code ifname}, which appears as the link comes up. */
  private static String linkLocal(Host host, String ifname) throws InterruptedException {
    Pattern ll = Pattern.compile("inet6 (fe80::[0-9a-f:]+)/64");
    long start = System.nanoTime();
    while (true) {
      String out = host.run("ip", "-6", "-o", "addr", "show", "dev", ifname, "scope", "link");
      Matcher m = ll.matcher(out);
      if (m.find()) {
        return m.group(1);
      }
      if (System.nanoTime() - start > NEIGHBOUR_WAIT) {
        throw new AssertionError(ifname + " on " + host + " has no link-local address: " + out);
      }
      Thread.sleep(10);
    }
  }

  /** A server on the address in the pod: a socket made inside a namespace stays in it. */
  private static ServerSocket listen(NetNamespace podNs, ServiceAddress address) throws Exception {
    return podNs.call(
        () -> {
          ServerSocket server = new ServerSocket();
          server.bind(new InetSocketAddress(address.ip(), POD_PORT));
          server.setSoTimeout(CONNECT_TIMEOUT_MS);
          return server;
        });
  }

  /**
   * Connects from the client to the pod's server and has a byte go each way; false if the
   * connection does not open within {@code timeoutMs}.
   */
  private static boolean echoes(Host client, ServerSocket server, int timeoutMs) throws Exception {
    InetSocketAddress target = new InetSocketAddress(server.getInetAddress(), POD_PORT);
    Socket socket;
    try (NetNamespace ns = NetNamespace.named(client.netns())) {
      socket =
          ns.call(
              () -> {
                Socket s = new Socket();
                try {
                  s.connect(target, timeoutMs);
                  return s;
                } catch (IOException unreachable) {
                  s.close();
                  return null;
                }
              });
    }
    if (socket == null) {
      return false;
    }
    try (Socket c = socket;
        Socket accepted = server.accept()) {
      assertThat(accepted.getRemoteSocketAddress()).isEqualTo(c.getLocalSocketAddress());
      c.setSoTimeout(CONNECT_TIMEOUT_MS);
      c.getOutputStream().write(42);
      accepted.getOutputStream().write(accepted.getInputStream().read() + 1);
      assertThat(c.getInputStream().read()).isEqualTo(43);
      return true;
    }
  }

  /**
   * What a failed reach leaves to look at: each side's addresses, routes, cached routes and
   * neighbours. The cache shows what the table does not: a route learned from an ICMPv6 redirect,
   * which the node sends the client while it forwards the address's packets back out the LAN (no
   * route to the pod) and which the client keeps after the route is back.
   */
  private static String stateOf(Host client, Host node, Host pod, boolean v6) {
    String family = v6 ? "-6" : "-4";
    StringBuilder b = new StringBuilder();
    for (Host h : List.of(client, node, pod)) {
      b.append("\n").append(h).append(":\n");
      b.append(h.run("ip", family, "addr", "show")).append(h.run("ip", family, "route", "show"));
      b.append(h.run("ip", family, "route", "show", "cache"));
      b.append(h.run("ip", family, "neigh", "show"));
    }
    return b.toString();
  }

  /** The node's IPv4 or IPv6 main table, as {@code ip route} prints it. */
  private static String routes(Host node, boolean v6) {
    return node.run("ip", v6 ? "-6" : "-4", "route", "show");
  }

  /** Connects from the client to a closed port and says whether the owner refused at once. */
  private static boolean refusedBy(Host client, ServiceAddress address) throws Exception {
    try (NetNamespace ns = NetNamespace.named(client.netns())) {
      return ns.call(
          () -> {
            try (Socket s = new Socket()) {
              s.connect(new InetSocketAddress(address.ip(), CLOSED_PORT), 2000);
              return false;
            } catch (ConnectException refused) {
              return true;
            } catch (IOException timedOut) {
              return false;
            }
          });
    }
  }

  private static String neighbour(Host client, String ip) {
    return client.run("ip", "neigh", "show", ip, "dev", "eth0").trim();
  }

  /** eth0's addresses, one per line as {@code ip -o addr} prints them. */
  private static String addresses(Host host) {
    return host.run("ip", "-o", "addr", "show", "dev", "eth0");
  }
}
