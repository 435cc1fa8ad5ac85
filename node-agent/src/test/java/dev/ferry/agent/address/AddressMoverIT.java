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
import java.net.Socket;
import java.util.concurrent.TimeUnit;
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
