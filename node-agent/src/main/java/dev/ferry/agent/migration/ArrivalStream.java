// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

import dev.ferry.agent.address.PodAddresses;
import dev.ferry.agent.address.ServiceAddress;
import dev.ferry.agent.api.AgentApi;
import dev.ferry.agent.handoff.Prestate;
import dev.ferry.agent.handoff.StateBuffer;
import dev.ferry.agent.move.Departure;
import dev.ferry.agent.repair.ClientAck;
import dev.ferry.agent.repair.InvalidSocketStateException;
import dev.ferry.agent.repair.SocketState;
import dev.ferry.agent.repair.SocketStateCodec;
import dev.ferry.agent.store.SavedStates;
import dev.ferry.api.plan.MovePlans;
import dev.ferry.api.v1alpha1.ArrivalDecision;
import dev.ferry.api.v1alpha1.ArrivalHeader;
import dev.ferry.api.v1alpha1.ArrivalMessage;
import dev.ferry.api.v1alpha1.ArrivalReply;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.MovePlan;
import dev.ferry.protocol.Connection;
import dev.ferry.sys.SyscallException;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Supplier;
import java.util.logging.Logger;

/**
 * The target's end of one move's stream (Arrive): the header (the address goes onto the target pod,
 * unrouted, so that restored sockets can bind to it), the states, END (stage every socket, answer
 * STAGED), then COMMIT (commit record, route, resume, announce, answer) or ABORT. A source told so
 * (ready, in answer to the header) sends COMMIT right behind the states, marked if_all_staged: it
 * waits here while they stage, and commits only if every connection did. A stream that ends without
 * COMMIT drops what it staged: the source still has every state.
 */
public final class ArrivalStream implements StreamObserver<ArrivalMessage> {
  private static final Logger LOG = Logger.getLogger(ArrivalStream.class.getName());

  private final NodeParts node;
  private final Migrations migrations;
  private final StreamObserver<ArrivalReply> out;
  private final long maxStateBytes;
  private final long start = System.nanoTime();
  private final List<Departure.Departed> states = new ArrayList<>();
  private ArrivalHeader header;
  private MovePlan plan;
  private final Supplier<Optional<String>> callerNode;
  private TargetMigration target;
  private ServiceAddress address;
  private boolean addressOnPod;
  private SocketState socket;

  /** This node's end of the forwarding tunnel, answered to the source; null when none. */
  private dev.ferry.agent.address.Carrier tunnelEnd;

  /** The state of the connection begun last, filled as its bytes arrive. */
  private StateBuffer app;

  /** Where the bytes this stream holds are counted, node-wide; and how many it holds. */
  private final ReceiveBudget budget;

  private long heldBytes;
  private boolean done;
  private boolean appendsToPrestate;
  private final java.util.Map<Connection, byte[]> tails = new java.util.HashMap<>();

  /** What END staged (null before it): a COMMIT with if_all_staged commits only if all did. */
  private MigrationStatus stagedAtEnd;

  /**
   * When END began to be taken: a COMMIT sent right behind the states arrived after it, but waited
   * behind the stage, so its own turn is too late a mark for the clients' timestamp clocks.
   */
  private long endArrived;

  /** Each connection's state offered ahead of its freeze, as it came, until its delta arrives. */
  private final java.util.Map<Connection, Precopied> precopied = new java.util.HashMap<>();

  /**
   * One connection's pre-copied state on the target: kept here, and handed on to the target pod's
   * application as it comes (PRESTATE) when that application speaks version 2, so that its takeover
   * carries only the tail.
   */
  private static final class Precopied {
    final List<com.google.protobuf.ByteString> chunks = new ArrayList<>();
    long bytes;
    Prestate prestate; // null: the application gets the whole state at its takeover
    long snapshotLeft = -1; // bytes of the current snapshot still to come; 0: it is whole here

    byte[] whole(byte[] tail) {
      byte[] out = new byte[Math.toIntExact(bytes + tail.length)];
      int at = 0;
      for (com.google.protobuf.ByteString c : chunks) {
        c.copyTo(out, at);
        at += c.size();
      }
      System.arraycopy(tail, 0, out, at, tail.length);
      return out;
    }
  }

  /** The target pod's network namespace, by inode: only its applications get its states. */
  private long podNetns;

  /** What the target takes over with only a tail: each connection's whole state, on demand. */
  private final java.util.Map<Connection, TargetMigration.Whole> wholes = new java.util.HashMap<>();

  /** Every prestate handed to an application, dropped if the migration rolls back. */
  private final List<Prestate> prestates = new ArrayList<>();

  public ArrivalStream(
      NodeParts node,
      Migrations migrations,
      StreamObserver<ArrivalReply> out,
      long maxStateBytes,
      ReceiveBudget budget,
      Supplier<Optional<String>> callerNode) {
    this.budget = budget;
    this.callerNode = callerNode;
    this.node = node;
    this.migrations = migrations;
    this.out = out;
    this.maxStateBytes = maxStateBytes;
  }

  @Override
  public synchronized void onNext(ArrivalMessage m) {
    if (done) {
      return;
    }
    try {
      take(m);
    } catch (Exception e) {
      if (e instanceof InterruptedException) {
        Thread.currentThread().interrupt();
      }
      String which = header == null && m.hasHeader() ? m.getHeader().getMigrationId() : id();
      LOG.warning(() -> "migration " + which + ": arrival refused: " + e.getMessage());
      dropUnlessCommitted();
      end();
      out.onError(AgentApi.statusOf(e).asRuntimeException());
    }
  }

  private void take(ArrivalMessage m) throws Exception {
    switch (m.getPartCase()) {
      case HEADER -> {
        if (header != null) {
          throw new BadRequest("a second header");
        }
        // Before anything else: only a plan the operator (or an admin) signed opens a migration
        // here, and only for its pod, ports and address.
        plan = node.plans().verify(m.getHeader().getPlan());
        MovePlans.requireOf(plan, m.getHeader());
        requireFromThePlansSource();
        String planId = MovePlans.idOf(m.getHeader().getPlan());
        if (node.commits().wasPlanRolledBack(planId)) {
          // A plan runs once: its source may not send it again once it failed here. The
          // operator's next attempt at the migration is signed anew, and passes.
          throw new WrongPhase(
              "plan: this signed plan of migration "
                  + m.getHeader().getMigrationId()
                  + " was rolled back here, and a plan runs once: the operator signs a new one"
                  + " for each attempt");
        }
        if (!m.getHeader().getTunnelEndpoint().isEmpty()) {
          TunnelEnds.peer("header.tunnel_endpoint", m.getHeader().getTunnelEndpoint());
        }
        header = m.getHeader();
        FaultPoints.check(header.getFault());
        target = migrations.newTarget(SavedStates.checkId(header.getMigrationId()));
        target.from(header.getSourceNode());
        target.plan(planId);
        if (header.getAfterCommit()) {
          target.afterCommit();
          LOG.info(() -> "migration " + id() + ": committed here; the states come again");
        }
        try (dev.ferry.sys.NetNamespace ns = node.pods().open(header.getTargetPod(), "pod")) {
          podNetns = ns.inode();
        } catch (SyscallException e) {
          // Not the agent's fault: the pod is gone, or was never on this node.
          throw new WrongPhase(
              "target_pod: no such pod network namespace on node "
                  + node.nodeName()
                  + " ("
                  + e.getMessage()
                  + "): the pod is gone, or runs on another node");
        }
        LOG.info(() -> "migration " + id() + " arriving from " + header.getSourceNode());
        if (!header.getAddress().getCidr().isEmpty()) {
          address = PodAddresses.parse("address.cidr", header.getAddress().getCidr());
          // Another arrival to this pod may rely on the address too (a rolled-back attempt still
          // being dropped, or an earlier move): claims keep each from removing it under the other.
          node.addresses().claim(address, header.getTargetPod(), ifname(), this);
          addressOnPod = true;
        }
        node.faults().stall(header.getFault(), "target-stalls-on-header");
        if (header.getAnswerReady()) {
          // Once the header is taken: the source freezes nobody before this answer, so the work
          // above is not in the pause. It also says that this agent commits a COMMIT sent behind
          // the states only if all staged (an older one would commit regardless).
          out.onNext(ArrivalReply.newBuilder().setReady(true).build());
        }
      }
      case PRECOPY -> {
        requireHeader();
        var part = m.getPrecopy();
        Connection c = Wire.connection(part.getId(), "precopy.id");
        requireCovered(c);
        Precopied p = precopied.computeIfAbsent(c, k -> new Precopied());
        if (part.getSnapshot()) {
          p.chunks.clear();
          give(p.bytes);
          p.bytes = 0;
          p.snapshotLeft = part.getLength();
          if (p.prestate == null) {
            p.prestate = node.mover().prestate(c, podNetns);
            if (p.prestate != null) {
              prestates.add(p.prestate);
            }
          }
          if (p.prestate != null && !p.prestate.snapshot(part.getLength())) {
            p.prestate = null; // it declined, or its session went: the whole state at takeover
          }
        } else if (part.getAppend()) {
          if (p.prestate != null && !p.prestate.append(part.getLength())) {
            p.prestate = null;
          }
        }
        if (!part.getData().isEmpty()) {
          take(part.getData().size(), "state pre-copied for " + c);
          p.bytes += part.getData().size();
          if (p.bytes > maxStateBytes) {
            throw new BadRequest(
                "the state pre-copied for "
                    + c
                    + " is over this agent's limit of "
                    + maxStateBytes
                    + " bytes (ferry.agent.max-state-bytes)");
          }
          p.chunks.add(part.getData());
          if (p.prestate != null && !p.prestate.chunk(part.getData().toByteArray())) {
            p.prestate = null;
          }
          if (p.snapshotLeft > 0) {
            p.snapshotLeft -= part.getData().size();
          }
        }
        if (part.getSnapshot() || !part.getData().isEmpty()) {
          if (p.snapshotLeft == 0) {
            // Whole here, and handed to the application (its writes are done when chunk returns).
            p.snapshotLeft = -1;
            out.onNext(ArrivalReply.newBuilder().setPrecopyHeld(part.getId()).build());
          }
        }
      }
      case CONNECTION -> begin(m.getConnection());
      case STATES -> {
        for (var tc : m.getStates().getConnectionsList()) {
          begin(tc);
          var data = tc.getAppState();
          if (data.size() != app.remaining()) {
            throw new BadRequest(
                "the inline app_state of "
                    + socket.connection()
                    + " is "
                    + data.size()
                    + " bytes, "
                    + app.remaining()
                    + " announced");
          }
          app.put(data.asReadOnlyByteBuffer());
          finishConnection();
        }
      }
      case APP_STATE -> {
        if (socket == null) {
          throw new BadRequest("app_state came before its connection");
        }
        var data = m.getAppState().getData();
        if (data.size() > app.remaining()) {
          throw new BadRequest("app_state is longer than the app_state_length announced");
        }
        app.put(data.asReadOnlyByteBuffer());
      }
      case END -> {
        requireHeader();
        endArrived = System.nanoTime();
        finishConnection();
        requireAllCame(m.getEnd(), states.size());
        target.receive(List.copyOf(states), (System.nanoTime() - start) / 1000, Map.copyOf(wholes));
        states.clear();
        dropPrecopiedThatDidNotCome();
        // Within half the hold limit: the rest is the move's, inside the source's call.
        Duration holdLimit = migrations.holdLimit(Duration.ofMillis(header.getHoldLimitMs()));
        target.awaitApplications(podNetns, start + holdLimit.toNanos() / 2);
        MigrationStatus staged = target.stage(header.getTargetPod());
        stagedAtEnd = staged;
        node.faults().reach(header.getFault(), "target-after-stage", header.getMigrationId());
        if (address != null && header.getAddress().getClaimedByCaller()) {
          // The caller claims the address from the network next: the node must deliver it here.
          routeAddressHere();
        }
        ArrivalReply.Builder reply = ArrivalReply.newBuilder().setStaged(staged);
        if (address != null && !header.getTunnelEndpoint().isEmpty()) {
          // The source forwards what the network still delivers there: answer with this end.
          tunnelEnd = TunnelEnds.local(node, header.getAddress(), id()).orElse(null);
          if (tunnelEnd != null) {
            reply.setTunnelEndpoint(tunnelEnd.local().getHostAddress());
          }
        }
        out.onNext(reply.build());
      }
      case KEPT -> {
        requireHeader();
        if (stagedAtEnd != null && !allStaged()) {
          // Sent behind the states before the source knew: the COMMIT that follows is refused.
          return;
        }
        for (var k : m.getKept().getBytesList()) {
          Connection c = Wire.connection(k.getId(), "kept.bytes.id");
          take(k.getData().size(), "kept client bytes of " + c);
          target.keep(c, k.getSeq(), k.getData().toByteArray());
        }
      }
      case COMMIT -> {
        requireHeader();
        long arrived = System.nanoTime();
        if (m.getCommit().getIfAllStaged()) {
          if (stagedAtEnd == null) {
            throw new BadRequest("a COMMIT with if_all_staged came before END");
          }
          if (!allStaged()) {
            LOG.info(() -> "migration " + id() + ": not every connection staged: not committing");
            refuse();
            return;
          }
          // Sent behind the states, it waited here while they staged: the clients' clocks go on
          // from when END came, a little ahead of the truth (by the source's steps between the
          // two), which a timestamp may be; behind it may not.
          arrived = endArrived;
        }
        Map<Connection, ClientAck> acks = clientAcks(m.getCommit());
        target.commit();
        if (m.getCommit().hasMillisSinceExport()) {
          // Before the address is routed here or forwarded packets are taken: from then on the
          // client's segments reach the staged sockets, and their timestamps must be exact.
          target.continueClocks(m.getCommit().getMillisSinceExport(), arrived);
        }
        if (!acks.isEmpty()) {
          int taken = target.clientAcknowledged(acks);
          LOG.fine(
              () ->
                  "migration "
                      + header.getMigrationId()
                      + ": "
                      + taken
                      + " of "
                      + acks.size()
                      + " clients' acknowledgments from the source's hold go to their sockets");
        }
        node.faults().reach(header.getFault(), "target-after-commit", header.getMigrationId());
        if (address != null && !header.getAddress().getClaimedByCaller()) {
          long t = System.nanoTime();
          routeAddressHere();
          target.timed("route", t);
        }
        takeForwarded();
        target.resume();
        long resumedAt = SourceMove.nowMicros();
        node.faults().reach(header.getFault(), "target-after-resume", header.getMigrationId());
        if (address != null && header.getAddress().getAnnounce()) {
          long t = System.nanoTime();
          try {
            node.addresses().announce(address);
            target.timed("announce", t);
          } catch (SyscallException e) {
            // The connections are live; neighbours learn the address at their next ARP.
            LOG.warning(
                () ->
                    "migration " + id() + ": announcing " + address + " failed: " + e.getMessage());
          }
        }
        end();
        releaseAddress(true);
        out.onNext(
            ArrivalReply.newBuilder()
                .setResumed(target.status())
                .setCommitted(true)
                .setResumedUnixMicros(resumedAt)
                .build());
        out.onCompleted();
        target.markIfAllResumed();
      }
      case ABORT -> refuse();
      default -> throw new BadRequest("an empty arrival message");
    }
  }

  /** Drops what is staged, unless committed, and answers which it was; the stream ends. */
  private void refuse() {
    MigrationStatus s = dropUnlessCommitted();
    end();
    out.onNext(
        ArrivalReply.newBuilder()
            .setResumed(s == null ? MigrationStatus.getDefaultInstance() : s)
            .setCommitted(s != null && s.getCommitted())
            .build());
    out.onCompleted();
  }

  /** Whether END staged every connection, by the rule the source applies to STAGED. */
  private boolean allStaged() {
    return allStaged(stagedAtEnd, stagedAtEnd.getConnectionsCount() == 0 && address != null);
  }

  /**
   * Refuses an END that counts other connections than came before it: a state lost or added on the
   * way. The rehearsal's target ({@link ArrivalRehearsal}) refuses the same.
   */
  static void requireAllCame(dev.ferry.api.v1alpha1.StatesEnd end, int came) {
    if (end.getConnections() != came) {
      throw new BadRequest("END says " + end.getConnections() + " connections, " + came + " came");
    }
  }

  /**
   * The one rule both ends commit by: every connection of {@code staged} is STAGED, and there is at
   * least one unless the move carries the address alone. The source rolls back what fails it; the
   * target refuses a COMMIT sent behind the states for the same.
   */
  static boolean allStaged(MigrationStatus staged, boolean addressOnly) {
    return staged.getConnectionsList().stream()
            .allMatch(c -> c.getPhase() == dev.ferry.api.v1alpha1.ConnectionPhase.STAGED)
        && (staged.getConnectionsCount() > 0 || addressOnly);
  }

  /**
   * A connection's state begins: its socket, and room for its whole application state (the
   * pre-copied part put in already, unless the target application holds it).
   */
  private void begin(dev.ferry.api.v1alpha1.TransferredConnection tc)
      throws InvalidSocketStateException {
    requireHeader();
    finishConnection();
    socket = SocketStateCodec.fromMessage(tc.getSocket());
    Connection c = new Connection(socket.local(), socket.remote());
    requireCovered(c);
    Precopied before = precopied.remove(c);
    if (!tc.getAppendsToPrecopy()) {
      if (before != null) {
        give(before.bytes); // what was offered ahead is not part of this state
      }
      before = null;
    }
    long tail = tc.getAppStateLength();
    long length = (before == null ? 0 : before.bytes) + tail;
    if (length > maxStateBytes) {
      throw new BadRequest(
          "app_state_length "
              + length
              + " is over this agent's limit of "
              + maxStateBytes
              + " bytes (ferry.agent.max-state-bytes)");
    }
    if (before != null && before.prestate != null && before.prestate.held()) {
      // The application holds the pre-copied state already: its takeover carries the tail.
      Precopied held = before;
      appendsToPrestate = true;
      take(tail, "app_state of " + c);
      app = new StateBuffer(tail);
      wholes.put(c, new TargetMigration.Whole(length, () -> held.whole(appState(c))));
    } else {
      // The whole state: what was pre-copied (when the delta appends to it), then the delta.
      appendsToPrestate = false;
      take(tail, "app_state of " + c); // the pre-copied part is counted already
      app = new StateBuffer(length);
      if (before != null) {
        for (com.google.protobuf.ByteString chunk : before.chunks) {
          app.put(chunk.asReadOnlyByteBuffer());
        }
      }
    }
  }

  /**
   * A connection pre-copied here whose state did not follow (it closed, or its application kept it,
   * after its pre-copy; or a prepared move took its inventory again minutes later) will not come:
   * its application lets go of what it was handed ahead now, not when its session ends.
   */
  private void dropPrecopiedThatDidNotCome() {
    for (Precopied p : precopied.values()) {
      if (p.prestate != null) {
        p.prestate.drop();
        prestates.remove(p.prestate);
      }
    }
    precopied.clear();
  }

  /** Drops what is staged, and the address from the pod, unless the migration committed. */
  private MigrationStatus dropUnlessCommitted() {
    if (target == null) {
      return null;
    }
    MigrationStatus s = target.rollback();
    if (!s.getCommitted()) {
      prestates.forEach(Prestate::drop);
    }
    releaseAddress(s.getCommitted());
    return s;
  }

  /**
   * This arrival no longer needs the address on the pod: committed, it stays the pod's; rolled
   * back, it goes unless another arrival relies on it or the pod had it before.
   */
  private void releaseAddress(boolean committed) {
    if (!addressOnPod) {
      return;
    }
    addressOnPod = false;
    try {
      boolean removed =
          node.addresses()
              .release(
                  address,
                  header.getTargetPod(),
                  ifname(),
                  header.getAddress().getTargetHostInterface(),
                  header.getAddress().getHostRoute(),
                  this,
                  committed);
      if (!committed && !removed) {
        LOG.info(
            () ->
                "migration "
                    + id()
                    + ": "
                    + address
                    + " stays on the target pod: it had it before, or another arrival relies"
                    + " on it");
      }
    } catch (SyscallException | RuntimeException e) {
      LOG.warning(
          () ->
              "migration "
                  + id()
                  + ": taking "
                  + address
                  + " off the target pod failed: "
                  + e.getMessage());
    }
  }

  /**
   * Before the resume, when the source forwards: what it forwards is taken out of the tunnel here,
   * and the replies go back through it (the network would drop them from this node until it
   * delivers the address here). Arming that fails leaves the connections waiting for the network.
   */
  private void takeForwarded() {
    if (tunnelEnd == null) {
      endForwardingHere();
      return;
    }
    try {
      node.forwarding()
          .receive(
              TunnelEnds.address(header.getAddress()),
              tunnelEnd,
              TunnelEnds.peer("header.tunnel_endpoint", header.getTunnelEndpoint()));
    } catch (SyscallException | RuntimeException e) {
      LOG.warning(
          () ->
              "migration "
                  + id()
                  + ": taking the forwarded packets failed ("
                  + e.getMessage()
                  + "): the clients wait for the network to deliver the address here");
    }
  }

  /**
   * The address lives here from now, delivered by the network: an entry an earlier move of it left
   * on this node (as its source, forwarding for up to the forwarding limit) would send its packets
   * away again, so it goes.
   */
  private void endForwardingHere() {
    if (address == null || !(address.ip() instanceof java.net.Inet4Address v4)) {
      return;
    }
    try {
      node.forwarding().end(v4, "migration " + id() + " brought the address here");
    } catch (SyscallException | RuntimeException e) {
      LOG.warning(
          () ->
              "migration "
                  + id()
                  + ": ending an earlier forwarding of "
                  + address
                  + " failed: "
                  + e.getMessage());
    }
  }

  /** The address on the target pod (already there) and the node's route to it. */
  /**
   * The clients' acknowledgments COMMIT carries, read before the commit point: a malformed one is
   * passed over (its socket waits for its client's answer to the resume), never a reason to fail a
   * commit.
   */
  private Map<Connection, ClientAck> clientAcks(ArrivalDecision commit) {
    Map<Connection, ClientAck> acks = new LinkedHashMap<>();
    for (var a : commit.getClientAcksList()) {
      try {
        acks.put(
            Wire.connection(a.getId(), "commit.client_acks.id"),
            new ClientAck(a.getAck(), a.getWindow(), a.getTsval()));
      } catch (BadRequest e) {
        LOG.warning(
            () -> "migration " + header.getMigrationId() + ": passed over: " + e.getMessage());
      }
    }
    return acks;
  }

  private void routeAddressHere() throws SyscallException {
    if (addressOnPod) {
      // The header's claim put it on the pod: only the node's route is left to add.
      node.addresses()
          .route(
              address,
              header.getTargetPod(),
              ifname(),
              header.getAddress().getTargetHostInterface(),
              header.getAddress().getHostRoute());
      return;
    }
    node.addresses()
        .add(
            address,
            header.getTargetPod(),
            ifname(),
            header.getAddress().getTargetHostInterface(),
            header.getAddress().getHostRoute());
  }

  private byte[] appState(Connection c) {
    return tails.get(c);
  }

  /**
   * A plan that names its target node is for that node only: a pod reference by netns path means
   * something on every node. Where peers have identities, a plan must name both nodes, and the
   * caller must be the source's agent.
   */
  private void requireFromThePlansSource() {
    if (!plan.getTargetNode().isEmpty() && !plan.getTargetNode().equals(node.nodeName())) {
      throw new MovePlans.Refused(
          "plan: its target is node "
              + plan.getTargetNode()
              + ", and this is the agent of node "
              + node.nodeName());
    }
    Optional<String> from = callerNode.get();
    if (from.isEmpty()) {
      return; // peer identities off, or the operator or an admin calling
    }
    if (plan.getSourceNode().isEmpty() || plan.getTargetNode().isEmpty()) {
      throw new MovePlans.Refused(
          "plan: names no source_node or no target_node, and this agent takes states only from"
              + " the agent of a named source (ferry.agent.peer-identity=required): sign the"
              + " MoveRequest with source_node and target_node set");
    }
    if (!plan.getSourceNode().equals(from.get())) {
      throw new MovePlans.Refused(
          "plan: its source is node "
              + plan.getSourceNode()
              + ", and the states come from the agent of node "
              + from.get());
    }
  }

  /** A state may enter the pod only on the plan's ports and address. */
  private void requireCovered(Connection c) {
    if (!MovePlans.covers(plan, c.local())) {
      throw new MovePlans.Refused(
          "plan: "
              + c
              + " is not on the planned ports "
              + plan.getPortsList()
              + (plan.getAddressCidr().isEmpty() ? "" : " and address " + plan.getAddressCidr()));
    }
  }

  private void requireHeader() {
    if (header == null) {
      throw new BadRequest("an arrival must begin with its header");
    }
  }

  private void finishConnection() {
    if (socket == null) {
      return;
    }
    if (!app.whole()) {
      throw new BadRequest(
          "app_state of "
              + socket.connection()
              + " is "
              + app.filled()
              + " bytes, "
              + app.length()
              + " announced");
    }
    Connection c = new Connection(socket.local(), socket.remote());
    byte[] bytes = app.bytes();
    states.add(new Departure.Departed(c, socket, bytes, appendsToPrestate));
    if (appendsToPrestate) {
      tails.put(c, bytes);
    }
    socket = null;
    app = null;
  }

  private String ifname() {
    String i = header.getAddress().getInterface();
    return i.isEmpty() ? "eth0" : i;
  }

  /** Counts {@code n} more bytes held for this arrival, or refuses them (RESOURCE_EXHAUSTED). */
  private void take(long n, String what) {
    budget.take(n, what);
    heldBytes += n;
  }

  private void give(long n) {
    budget.give(n);
    heldBytes -= n;
  }

  /** The stream is over, whatever its end: what it held is no longer counted. */
  private void end() {
    done = true;
    budget.give(heldBytes);
    heldBytes = 0;
  }

  private String id() {
    return header == null ? "?" : header.getMigrationId();
  }

  @Override
  public synchronized void onError(Throwable t) {
    if (!done) {
      end();
      LOG.warning(() -> "migration " + id() + ": the stream broke off: " + t.getMessage());
      dropUnlessCommitted();
    }
  }

  @Override
  public synchronized void onCompleted() {
    if (!done) {
      end();
      LOG.warning(
          () -> "migration " + id() + ": the source ended it without a decision: dropping it");
      dropUnlessCommitted();
      out.onCompleted();
    }
  }
}
