// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.tunnel;

import dev.ferry.agent.address.Carrier;
import dev.ferry.agent.tunnel.TunnelEntry.Role;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.SyscallException;
import java.io.IOException;
import java.net.Inet4Address;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

/**
 * A node's part in moves whose address the network (EC2) delivers late (docs/aws.md, "Forwarding
 * while the VPC switches"). The node an address left forwards its packets to the node it moved to,
 * from the moment the address leaves its pod; the node it moved to takes them, and sends its
 * replies back the same way, from just before it resumes. The target's programs see the first
 * client segment that arrives directly, and tunnel nothing more from then; a sweep here removes its
 * entry a while later (tunnelled segments may still be on their way), and every entry at the
 * forwarding limit, whatever put it there: the entries live in a pinned map, so an agent that
 * restarts finds them and ends them the same way. The programs themselves ignore an entry past its
 * deadline, agent or not.
 *
 * <p>Off ({@link #off}) where the network delivers an address wherever it is announced (an L2 LAN):
 * nothing is installed, and moves do not offer to forward.
 */
public final class Forwarding implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(Forwarding.class.getName());

  /**
   * How long the target keeps taking tunnelled segments once a direct one came: the source may
   * still have some in flight, and a client's segment the VPC delivered before it switched.
   */
  static final Duration LINGER = Duration.ofSeconds(5);

  private static final Duration SWEEP = Duration.ofSeconds(1);

  private final AddressTunnel tunnel;
  private final Duration limit;
  private final ScheduledExecutorService sweeper;

  private Forwarding(AddressTunnel tunnel, Duration limit) {
    this.tunnel = tunnel;
    this.limit = limit;
    if (tunnel == null) {
      sweeper = null;
      return;
    }
    sweeper =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "forwarding-sweep");
              t.setDaemon(true);
              return t;
            });
    sweeper.scheduleWithFixedDelay(this::sweepLogged, 0, SWEEP.toMillis(), TimeUnit.MILLISECONDS);
  }

  /** No forwarding on this node. */
  public static Forwarding off() {
    return new Forwarding(null, Duration.ZERO);
  }

  /**
   * The tunnel's programs on {@code interfaces} (the hold's: those that carry service addresses),
   * its map pinned under {@code pinDir} (a previous agent's reused, with its entries).
   *
   * @param limit how long an address is forwarded at most: the source node is gone within EC2's two
   *     minutes of notice anyway, and the VPC switches within seconds
   */
  public static Forwarding install(
      Path pinDir, List<String> interfaces, NetNamespace namespace, Duration limit)
      throws IOException {
    return new Forwarding(AddressTunnel.install(pinDir, interfaces, namespace), limit);
  }

  public boolean on() {
    return tunnel != null;
  }

  /**
   * The node the address left: from now its packets go on to {@code peer} through {@code carrier},
   * and the replies that come back through the tunnel go out to the clients.
   */
  public void forward(Inet4Address address, Carrier carrier, Inet4Address peer)
      throws SyscallException {
    requireOn();
    tunnel.forward(address, carrier.ifname(), carrier.local(), peer, Optional.empty(), deadline());
    LOG.info(
        () ->
            "forwarding "
                + address.getHostAddress()
                + " to "
                + peer.getHostAddress()
                + " on "
                + carrier.ifname()
                + " until the network delivers it there, "
                + limit.toSeconds()
                + " s at most");
  }

  /** The node the address moved to: takes what {@code peer} forwards, replies through it. */
  public void receive(Inet4Address address, Carrier carrier, Inet4Address peer)
      throws SyscallException {
    requireOn();
    tunnel.receive(address, carrier.ifname(), carrier.local(), peer, deadline());
    LOG.info(
        () ->
            "taking "
                + address.getHostAddress()
                + "'s packets from "
                + peer.getHostAddress()
                + " on "
                + carrier.ifname()
                + " until a client's segment arrives directly");
  }

  /** Ends the address's forwarding here, if any: the address came back (a rollback). */
  public void end(Inet4Address address, String why) throws SyscallException {
    if (tunnel == null) {
      return;
    }
    Optional<TunnelEntry> was = tunnel.entry(address);
    if (tunnel.end(address)) {
      LOG.info(() -> ended(address, was.orElse(null), why));
    }
  }

  /** The address's entry, for the tests and the status: empty when none, or when off. */
  public Optional<TunnelEntry> entry(Inet4Address address) throws SyscallException {
    return tunnel == null ? Optional.empty() : tunnel.entry(address);
  }

  /** Ends what is over: every entry past its deadline, and a target's once it switched. */
  void sweep() throws SyscallException {
    long now = System.nanoTime();
    for (Inet4Address address : tunnel.addresses()) {
      Optional<TunnelEntry> e = tunnel.entry(address);
      if (e.isEmpty()) {
        continue;
      }
      TunnelEntry entry = e.get();
      if (now - entry.deadlineNanos() >= 0) {
        end(address, "the forwarding limit passed");
      } else if (entry.role() == Role.TARGET
          && entry.switched()
          && now - entry.switchedNanos() >= LINGER.toNanos()) {
        end(address, "a client's segment came here directly: the network delivers it here now");
      }
    }
  }

  private void sweepLogged() {
    try {
      sweep();
    } catch (SyscallException | RuntimeException e) {
      LOG.warning(() -> "looking over the forwarded addresses failed: " + e.getMessage());
    }
  }

  private long deadline() {
    return System.nanoTime() + limit.toNanos();
  }

  private void requireOn() {
    if (tunnel == null) {
      throw new IllegalStateException(
          "this agent does not forward (ferry.agent.forwarding.enabled is false)");
    }
  }

  private static String ended(Inet4Address address, TunnelEntry e, String why) {
    String counts =
        e == null
            ? ""
            : " ("
                + e.role().name().toLowerCase(java.util.Locale.ROOT)
                + ": "
                + e.forwarded()
                + " packets into the tunnel, "
                + e.received()
                + " out of it)";
    return "forwarding of " + address.getHostAddress() + " ended" + counts + ": " + why;
  }

  /**
   * The agent stops: with an address still forwarded, the programs and the map stay (the forwarding
   * goes on while the agent restarts, and the next one ends it); with none, they are removed, so
   * that uninstalling Ferry leaves nothing on the node.
   */
  public void stop() {
    if (tunnel == null) {
      return;
    }
    sweeper.shutdownNow();
    List<Inet4Address> forwarded;
    try {
      forwarded = tunnel.addresses();
    } catch (SyscallException | RuntimeException e) {
      LOG.warning(() -> "reading the forwarded addresses failed (" + e.getMessage() + "): kept");
      tunnel.close();
      return;
    }
    if (!forwarded.isEmpty()) {
      List<Inet4Address> still = forwarded;
      LOG.info(() -> still + " still forwarded: the tunnel stays for the next agent");
      tunnel.close();
      return;
    }
    try {
      tunnel.uninstall(); // lets go of the handles whatever happens
      LOG.info("nothing forwarded: the tunnel's programs and pinned map are removed");
    } catch (SyscallException | RuntimeException e) {
      LOG.warning(() -> "removing the tunnel failed (" + e.getMessage() + "); it stays");
    }
  }

  /** Stops the sweep and lets go of the programs' handles; the programs and the map stay. */
  @Override
  public void close() {
    if (tunnel == null) {
      return;
    }
    sweeper.shutdownNow();
    tunnel.close();
  }
}
