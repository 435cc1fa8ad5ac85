// SPDX-License-Identifier: Apache-2.0
package dev.ferry.testbed;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * A WAN link between a router on the LAN and a client behind it ({@link Testbed#behind}): a fixed
 * delay each way through two {@link DelayLine}s, and a rate limit (tbf) on the way to the client,
 * where a download's bytes go. Everything the router forwards between the two crosses it.
 *
 * <p>In the router, what arrives from the LAN for the client's subnet is routed (table 100) into
 * the downstream delay line, which writes it back out of its other device, from where the main
 * table forwards it to the client; the upstream direction likewise (table 101). Reverse-path
 * filtering is off, since the packets come back on a device they were not routed to.
 */
public final class SlowLink implements AutoCloseable {
  private final DelayLine down;
  private final DelayLine up;

  private SlowLink(DelayLine down, DelayLine up) {
    this.down = down;
    this.up = up;
  }

  /**
   * @param router a host on the LAN (its eth0) with the client behind it
   * @param client the client, made by {@link Testbed#behind}
   * @param lanSubnet e.g. "10.88.0.0/24"
   * @param clientSubnet e.g. "10.88.1.0/24"
   * @param oneWay the delay each way: the round trip is twice it, plus the serialisation
   * @param megabitsPerSecond the rate toward the client
   */
  public static SlowLink insert(
      Host router,
      Host client,
      String lanSubnet,
      String clientSubnet,
      Duration oneWay,
      int megabitsPerSecond)
      throws IOException {
    String ns = router.netns();
    String toClient = client.lanPort();
    router.run(
        "sysctl",
        "-q",
        "-w",
        "net.ipv4.ip_forward=1",
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.default.rp_filter=0");
    List<DelayLine> started = new ArrayList<>();
    try {
      DelayLine down = DelayLine.start(router, "dl-down-in", "dl-down-out", oneWay);
      started.add(down);
      DelayLine up = DelayLine.start(router, "dl-up-in", "dl-up-out", oneWay);
      started.add(up);
      for (String dev : List.of("dl-down-in", "dl-down-out", "dl-up-in", "dl-up-out")) {
        Shell.run("ip", "-n", ns, "link", "set", dev, "up");
        router.run("sysctl", "-q", "-w", "net.ipv4.conf." + dev + ".rp_filter=0");
      }
      Shell.run("ip", "-n", ns, "route", "add", clientSubnet, "dev", "dl-down-in", "table", "100");
      Shell.run("ip", "-n", ns, "rule", "add", "iif", "eth0", "lookup", "100");
      Shell.run("ip", "-n", ns, "route", "add", lanSubnet, "dev", "dl-up-in", "table", "101");
      Shell.run("ip", "-n", ns, "rule", "add", "iif", toClient, "lookup", "101");
      // A queue of one bandwidth-delay product: a window's burst fits, and it adds at most one
      // round trip of queueing.
      long bdpBytes =
          (long) megabitsPerSecond * 1_000_000 / 8 * oneWay.toNanos() * 2 / 1_000_000_000;
      Shell.run(
          "tc",
          "-n",
          ns,
          "qdisc",
          "add",
          "dev",
          toClient,
          "root",
          "tbf",
          "rate",
          megabitsPerSecond + "mbit",
          "burst",
          "32kb",
          "limit",
          String.valueOf(Math.max(bdpBytes, 64 * 1024)));
      return new SlowLink(down, up);
    } catch (IOException | RuntimeException e) {
      started.forEach(DelayLine::close);
      throw e;
    }
  }

  /** Stops both delay lines; their figures: how far off the nominal delay they were. */
  public List<DelayLine.Figures> stop() throws IOException {
    return List.of(down.stop(), up.stop());
  }

  @Override
  public void close() {
    down.close();
    up.close();
  }
}
