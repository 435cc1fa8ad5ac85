// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.service;

import dev.ferry.agent.address.PodAddresses;
import dev.ferry.agent.api.AgentApi;
import dev.ferry.agent.api.AgentIdentity;
import dev.ferry.agent.api.CallerCheck;
import dev.ferry.agent.api.KubeAgentPods;
import dev.ferry.agent.api.MutualTls;
import dev.ferry.agent.handoff.HandoffLimits;
import dev.ferry.agent.handoff.HandoffServer;
import dev.ferry.agent.hold.ConnectionHold;
import dev.ferry.agent.hold.HoldKey;
import dev.ferry.agent.migration.FaultPoints;
import dev.ferry.agent.migration.Migrations;
import dev.ferry.agent.migration.NodeParts;
import dev.ferry.agent.migration.PlanCheck;
import dev.ferry.agent.migration.PodNamespaces;
import dev.ferry.agent.migration.ReceiveBudget;
import dev.ferry.agent.move.ConnectionMover;
import dev.ferry.agent.peer.Peers;
import dev.ferry.agent.repair.CongestionSeed;
import dev.ferry.agent.spot.SpotNoticeWatcher;
import dev.ferry.agent.store.CommitRecords;
import dev.ferry.agent.store.SavedStates;
import dev.ferry.agent.tunnel.Forwarding;
import dev.ferry.api.v1alpha1.AgentProto;
import dev.ferry.api.v1alpha1.SocketStateProto;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.SyscallException;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.netty.NettyServerBuilder;
import io.micrometer.core.instrument.MeterRegistry;
import io.quarkus.runtime.ShutdownEvent;
import io.quarkus.runtime.StartupEvent;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Observes;
import jakarta.enterprise.inject.Instance;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Clock;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import java.util.logging.Logger;

/**
 * Starts the agent: the handoff socket, the hold (found again if a previous agent pinned it), the
 * saved states, the API, and (on EC2) the watch for spot notices. Stopping leaves the hold and the
 * states in place for the next agent.
 */
@ApplicationScoped
public class AgentRuntime {
  private static final Logger LOG = Logger.getLogger(AgentRuntime.class.getName());

  /**
   * Loopback moves at start: enough for the per-connection code to be compiled (HotSpot's first
   * tier compiles a method after 200 calls), few enough to take well under a second.
   */
  private static final int REHEARSED_MOVES = 200;

  /**
   * Rehearsed conversations with the agent's own API at start ({@link PeerRehearsal}): each round
   * runs the source's and the target's messaging code once per message.
   */
  private static final int REHEARSED_ROUNDS = 200;

  private HandoffServer applications;
  private ConnectionHold hold;
  private Forwarding forwarding;
  private Optional<CongestionSeed> congestion = Optional.empty();
  private Peers peers;
  private Server server;
  private ExecutorService workers;
  private SpotNoticeWatcher spotNotices;
  private SavedStates saved;
  private Migrations migrations;
  private volatile boolean ready;

  void start(
      @Observes StartupEvent ev,
      AgentSettings settings,
      MeterRegistry registry,
      Instance<KubernetesClient> kubernetes)
      throws IOException {
    // Before anything touches the node: settings that cannot work stop the agent here.
    ReceiveBudget receiving =
        ReceiveBudget.of(
            settings.maxReceiveBytes(), settings.maxStateBytes(), Runtime.getRuntime().maxMemory());
    AgentMetrics metrics = new AgentMetrics(registry);
    MutualTls tls =
        new MutualTls(
            settings.tls().cert(), settings.tls().key(), settings.tls().ca(), metrics::refused);
    Files.createDirectories(settings.handoffSocket().getParent());
    Files.deleteIfExists(settings.handoffSocket()); // a previous agent's; nobody listens on it
    applications =
        HandoffServer.start(
            settings.handoffSocket(),
            settings.answerTimeout(),
            settings.stateTimeout(),
            settings.maxStateBytes(),
            new HandoffLimits(
                settings.handoff().maxSessions(),
                settings.handoff().maxSessionsPerNamespace(),
                settings.handoff().frameTimeout()),
            metrics::handoffRefused,
            tls::proofKey);
    // Connecting needs write permission on the socket. Who can reach it at all is decided by
    // which pods mount its directory; the agent then knows each caller by its credentials, and
    // gives a pod's connections only to a process in that pod.
    Files.setPosixFilePermissions(
        settings.handoffSocket(), PosixFilePermissions.fromString(settings.handoffSocketMode()));
    hold = openHold(settings.bpfPinDir(), settings.holdInterfacesOrUplink());
    forwarding =
        settings.forwarding().enabled()
            ? Forwarding.install(
                settings.bpfPinDir().resolve("tunnel"),
                settings.holdInterfacesOrUplink(),
                NetNamespace.current(),
                settings.forwarding().limit())
            : Forwarding.off();
    congestion = settings.carryCongestion() ? CongestionSeed.register() : Optional.empty();
    workers = Executors.newFixedThreadPool(64, daemon("ferry-worker"));
    peers = new Peers(tls, settings.transferTimeout());
    PodNamespaces pods = new PodNamespaces(Path.of("/proc"));
    NodeParts node =
        new NodeParts(
            settings.nodeName(),
            new ConnectionMover(
                applications, hold, settings.holdLimit(), settings.keepClientBytes(), congestion),
            hold,
            new SavedStates(settings.stateDir()),
            new CommitRecords(settings.stateDir()),
            pods,
            new PodAddresses(pods, settings.uplink(), settings.holdInterfacesOrUplink()),
            forwarding,
            peers,
            workers,
            metrics,
            new FaultPoints(settings.faultPoints(), settings.stateDir().resolve("faults-reached")),
            new PlanCheck(tls.trust(), Clock.systemUTC()));
    saved = node.saved();
    migrations =
        new Migrations(
            node,
            settings.holdLimit(),
            settings.answerTimeout(),
            settings.stateTimeout(),
            settings.preparedLimit(),
            settings.commitWithStates());
    migrations.recover();
    metrics.connections(migrations::phases);
    metrics.holds(this::activeHolds, this::probesAnswered);
    metrics.keptClientSegments(() -> keptCounts().kept(), () -> keptCounts().notKept());
    metrics.receiving(receiving::held);
    AgentIdentity peers =
        new AgentIdentity(
            settings.peerIdentityMode(),
            settings.namespace().orElse(""),
            new KubeAgentPods(kubernetes::get));
    if (peers.mode() == AgentIdentity.Mode.OFF) {
      LOG.warning(
          "ferry.agent.peer-identity=off: any agent of the cluster may deliver the states of a"
              + " signed plan here; give each agent its own certificate (docs/security.md)");
    }
    AgentApi api = new AgentApi(node, migrations, settings.maxStateBytes(), receiving, peers);
    server =
        NettyServerBuilder.forAddress(
                new InetSocketAddress(settings.api().host(), settings.api().port()),
                tls.serverCredentials())
            .addService(ServerInterceptors.intercept(api, new CallerCheck(metrics::refused)))
            .maxInboundMessageSize(4 << 20)
            .executor(Executors.newCachedThreadPool(daemon("ferry-api")))
            .build()
            .start();
    if (settings.imds().enabled()) {
      spotNotices =
          SpotNoticeWatcher.start(
              settings.imds().endpoint(),
              settings.imds().interval(),
              kubernetes.get(),
              settings.nodeName(),
              kind -> metrics.interruptionNotice(kind.metricTag()));
    }
    ready = true;
    LOG.info(
        () ->
            "ferry node-agent on "
                + settings.nodeName()
                + ": API on "
                + settings.api().host()
                + ":"
                + server.getPort()
                + " (mTLS), handoff socket "
                + settings.handoffSocket()
                + ", hold on "
                + String.join(", ", hold.interfaces()));
    String self = selfTarget(settings.api().host(), server.getPort());
    daemon("ferry-move-rehearsal")
        .newThread(
            () ->
                rehearse(
                    settings.stateDir().resolve("rehearsal"),
                    this.peers,
                    self,
                    settings.nodeName()))
        .start();
  }

  /**
   * Rehearses the move on loopback connections ({@link MoveRehearsal}), then a move's messages with
   * this agent's own API at {@code self} ({@link PeerRehearsal}), off the start's path: the API
   * already answers, and a move that comes meanwhile runs beside them. Best effort.
   */
  private static void rehearse(Path scratch, Peers peers, String self, String node) {
    long start = System.nanoTime();
    // The descriptors of the agent's protobuf messages are built on their first use: a message's
    // hashCode (a PodRef as a map key, at a target's first arrival) or a map field's entry (a
    // status's phase_micros, at a source's first freeze). That took 75-95 ms of CPU in each
    // agent's first move (async-profiler, make bench at 1,000 connections), beside its clients'
    // pause on a 2-core node.
    AgentProto.getDescriptor();
    SocketStateProto.getDescriptor();
    try {
      MoveRehearsal.Result r = MoveRehearsal.run(REHEARSED_MOVES, scratch);
      LOG.info(
          () ->
              "move rehearsal: "
                  + r.moves()
                  + " loopback connections exported, saved, restored and resumed, "
                  + r.bytesChecked()
                  + " bytes checked, in "
                  + (System.nanoTime() - start) / 1_000_000
                  + " ms");
      long talk = System.nanoTime();
      PeerRehearsal.Result p =
          PeerRehearsal.run(peers, self, node, REHEARSED_ROUNDS, List.of(r.sample()));
      LOG.info(
          () ->
              "peer rehearsal: "
                  + p.rounds()
                  + " moves' messages exchanged with this agent's own API at "
                  + self
                  + ", in "
                  + (System.nanoTime() - talk) / 1_000_000
                  + " ms");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } catch (IOException | RuntimeException e) {
      LOG.warning(
          "the rehearsal at start failed, so this agent's first move runs some of its code cold"
              + " (it works otherwise as before): "
              + e.getMessage());
    }
  }

  /** Where the agent reaches its own API: loopback when it listens on every address. */
  static String selfTarget(String host, int port) {
    String h =
        host == null || host.isBlank() || host.equals("0.0.0.0")
            ? "127.0.0.1"
            : host.equals("::") || host.equals("[::]") ? "::1" : host;
    return (h.contains(":") && !h.startsWith("[") ? "[" + h + "]" : h) + ":" + port;
  }

  private static ConnectionHold openHold(Path pinDir, List<String> interfaces) throws IOException {
    NetNamespace here = NetNamespace.current();
    if (ConnectionHold.pinnedUnder(pinDir)) {
      LOG.info(() -> "found the hold a previous agent pinned under " + pinDir);
      return ConnectionHold.reopen(pinDir, interfaces, here);
    }
    return ConnectionHold.install(pinDir, interfaces, here);
  }

  boolean ready() {
    return ready;
  }

  private int activeHolds() {
    if (hold == null) {
      return 0;
    }
    try {
      return hold.held().size();
    } catch (SyscallException e) {
      return -1;
    }
  }

  private dev.ferry.agent.hold.KeptBytes.Counts keptCounts() {
    try {
      return hold == null ? new dev.ferry.agent.hold.KeptBytes.Counts(0, 0) : hold.keptCounts();
    } catch (SyscallException e) {
      return new dev.ferry.agent.hold.KeptBytes.Counts(-1, -1);
    }
  }

  private long probesAnswered() {
    long n = 0;
    try {
      for (HoldKey k : hold.held()) {
        n += hold.stats(k).map(s -> s.probesAnswered()).orElse(0L);
      }
    } catch (SyscallException e) {
      return -1;
    }
    return n;
  }

  void stop(@Observes ShutdownEvent ev) throws InterruptedException {
    ready = false;
    if (spotNotices != null) {
      spotNotices.close();
    }
    if (server != null) {
      server.shutdown().awaitTermination(5, TimeUnit.SECONDS);
    }
    if (peers != null) {
      peers.close();
    }
    if (applications != null) {
      applications.close();
    }
    if (workers != null) {
      workers.shutdownNow();
    }
    if (hold != null) {
      stopHold();
    }
    if (forwarding != null) {
      forwarding.stop();
    }
    // Last: a restore still running then fails to arm its socket and is rolled back; one already
    // armed switches back all the same, since its socket keeps the congestion control alive.
    congestion.ifPresent(CongestionSeed::close);
  }

  /**
   * The hold's programs and pinned maps outlive the agent so that a restarted one finds the clients
   * it held. With no client held and no migration saved there is nothing for a next agent to find:
   * they are removed, so that uninstalling Ferry leaves nothing on the node (a next agent installs
   * them again).
   */
  private void stopHold() {
    boolean idle;
    try {
      idle = activeHolds() == 0 && saved.migrations().isEmpty() && migrations.phases().isEmpty();
    } catch (IOException e) {
      idle = false;
    }
    if (!idle) {
      LOG.info("clients held or migrations saved: the hold stays for the next agent");
      hold.close();
      return;
    }
    try {
      hold.uninstall();
      LOG.info("nothing held: the hold's programs and pinned maps are removed");
    } catch (RuntimeException | SyscallException e) {
      LOG.warning(() -> "removing the hold failed (" + e.getMessage() + "); it stays");
      hold.close();
    }
  }

  private static ThreadFactory daemon(String name) {
    return r -> {
      Thread t = new Thread(r, name);
      t.setDaemon(true);
      return t;
    };
  }
}
