// SPDX-License-Identifier: Apache-2.0
package dev.ferry.cli;

import static dev.ferry.api.v1alpha1.ConnectionPhase.EXPORTED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.FAILED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.FROZEN;
import static dev.ferry.api.v1alpha1.ConnectionPhase.RELEASED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.RESUMED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.STAGED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.STAYED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.TRANSFERRED;

import dev.ferry.api.client.AgentClient;
import dev.ferry.api.v1alpha1.AddressRequest;
import dev.ferry.api.v1alpha1.ConnectionPhase;
import dev.ferry.api.v1alpha1.ConnectionStatus;
import dev.ferry.api.v1alpha1.FreezeRequest;
import dev.ferry.api.v1alpha1.MigrationRef;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.PodRef;
import dev.ferry.api.v1alpha1.StageRequest;
import dev.ferry.api.v1alpha1.TransferRequest;
import java.io.PrintStream;
import java.util.List;

/**
 * One migration between two agents, step by step as docs/architecture describes, without
 * Kubernetes: for debugging and for the agent's own tests. It keeps no state of its own: when it
 * fails halfway and cannot roll back (an agent is down), {@code ferry-agent rollback} finishes the
 * job once the agent is back, from what the agents saved.
 */
final class MigrationDriver {
  /** What to move, from where to where. */
  record Plan(
      String id,
      AgentClient source,
      PodRef sourcePod,
      AgentClient target,
      PodRef targetPod,
      List<Integer> ports,
      AddressMove address) {}

  /**
   * The L2 move of the address the clients talk to; null in a plan when the caller moves it (or the
   * test bed routes both pods).
   */
  record AddressMove(String cidr, String sourceHostInterface, String targetHostInterface) {}

  /** How far a migration got, so that a failure knows what to undo. */
  private enum Reached {
    NOTHING,
    ADDRESS_ON_TARGET_POD,
    ADDRESS_MOVED,
    RESUMED
  }

  private final PrintStream out;

  MigrationDriver(PrintStream out) {
    this.out = out;
  }

  /**
   * @return true if the connections live on the target and the source let them go; false if they
   *     were rolled back, or some step after the commit point failed (the output says which)
   * @throws AgentClient.Failed when a failure could not be rolled back either
   */
  boolean migrate(Plan p) {
    MigrationRef ref = MigrationRef.newBuilder().setMigrationId(p.id()).build();
    Reached reached = Reached.NOTHING;
    try {
      MigrationStatus frozen =
          p.source()
              .call(
                  "Freeze",
                  s ->
                      s.freeze(
                          FreezeRequest.newBuilder()
                              .setMigrationId(p.id())
                              .setPod(p.sourcePod())
                              .addAllPorts(p.ports())
                              .setTargetAgent(p.target().target)
                              .build()));
      step("freeze", frozen, FROZEN, STAYED);
      if (count(frozen, FROZEN) == 0) {
        out.println("nothing to move: no connection was frozen");
        rollBack(p, ref, reached);
        return false;
      }
      step("export", p.source().call("Export", s -> s.export(ref)), EXPORTED, STAYED);
      step(
          "transfer",
          p.source()
              .call(
                  "Transfer",
                  s ->
                      s.transfer(
                          TransferRequest.newBuilder()
                              .setMigrationId(p.id())
                              .setTargetAgent(p.target().target)
                              .build())),
          TRANSFERRED,
          STAYED);
      if (p.address() != null) {
        // On the target pod first, without the node's route: the restored sockets bind to it,
        // and no client segment reaches the target before they exist.
        p.target()
            .call("MoveAddress", s -> s.moveAddress(onTarget(p, AddressRequest.Op.ADD, false)));
        reached = Reached.ADDRESS_ON_TARGET_POD;
      }
      step(
          "stage",
          p.target()
              .call(
                  "Stage",
                  s ->
                      s.stage(
                          StageRequest.newBuilder()
                              .setMigrationId(p.id())
                              .setPod(p.targetPod())
                              .build())),
          STAGED);
      if (p.address() != null) {
        reached = Reached.ADDRESS_MOVED;
        p.source()
            .call("MoveAddress", s -> s.moveAddress(onSource(p, AddressRequest.Op.REMOVE, true)));
        p.target()
            .call("MoveAddress", s -> s.moveAddress(onTarget(p, AddressRequest.Op.ADD, true)));
      }
      MigrationStatus resumed = p.target().call("Resume", s -> s.resume(ref));
      if (count(resumed, RESUMED) > 0) {
        // Past the commit point: a connection live on the target is never rolled back, since
        // the source's saved state is older than what the client has received since.
        reached = Reached.RESUMED;
      }
      step("resume", resumed, RESUMED);
      if (p.address() != null) {
        p.target()
            .call(
                "MoveAddress", s -> s.moveAddress(onTarget(p, AddressRequest.Op.ANNOUNCE, false)));
      }
      step("release", p.source().call("Release", s -> s.release(ref)), RELEASED, STAYED);
      out.println("migration " + p.id() + " completed");
      return true;
    } catch (AgentClient.Failed | StepFailed e) {
      out.println("failed: " + e.getMessage());
      if (reached == Reached.RESUMED) {
        // The connections are live on the target; what is left is the source's cleanup.
        out.println(
            "the connections live on the target; finish with: ferry-agent release --agent "
                + p.source().target
                + " --id "
                + p.id());
        return false;
      }
      rollBack(p, ref, reached);
      return false;
    }
  }

  /** Puts everything back on the source. Throws when an agent cannot be reached to do it. */
  private void rollBack(Plan p, MigrationRef ref, Reached reached) {
    out.println("rolling back " + p.id());
    if (reached == Reached.ADDRESS_MOVED) {
      p.target()
          .call("MoveAddress", s -> s.moveAddress(onTarget(p, AddressRequest.Op.REMOVE, true)));
      p.source().call("MoveAddress", s -> s.moveAddress(onSource(p, AddressRequest.Op.ADD, true)));
      p.source()
          .call("MoveAddress", s -> s.moveAddress(onSource(p, AddressRequest.Op.ANNOUNCE, false)));
    } else if (reached == Reached.ADDRESS_ON_TARGET_POD) {
      p.target()
          .call("MoveAddress", s -> s.moveAddress(onTarget(p, AddressRequest.Op.REMOVE, false)));
    }
    rollBack(p.id(), List.of(p.target(), p.source()));
  }

  /**
   * Rolls {@code id} back on each agent, target first so that the source is the only live copy. An
   * agent that does not know the migration has nothing to undo.
   */
  boolean rollBack(String id, List<AgentClient> agents) {
    MigrationRef ref = MigrationRef.newBuilder().setMigrationId(id).build();
    boolean whole = true;
    for (AgentClient agent : agents) {
      try {
        MigrationStatus s = agent.call("Rollback", a -> a.rollback(ref));
        step("rollback", s);
        whole &= count(s, FAILED) == 0;
      } catch (AgentClient.Failed e) {
        if (!e.notFound()) {
          throw e;
        }
        out.println("rollback: the agent at " + agent.target + " has nothing of " + id);
      }
    }
    return whole;
  }

  private void step(String name, MigrationStatus s) {
    out.print(name + ": ");
    out.print(StatusTable.of(s));
  }

  /**
   * Prints a step's status; fails it unless every connection reached one of {@code expected}. An
   * agent answers a step with a status, not an error, when some connections failed it: going on
   * would release a source whose connections the target does not have.
   */
  private void step(String name, MigrationStatus s, ConnectionPhase... expected) {
    step(name, s);
    List<ConnectionPhase> ok = List.of(expected);
    List<String> wrong =
        s.getConnectionsList().stream()
            .filter(c -> !ok.contains(c.getPhase()))
            .map(c -> StatusTable.format(c.getId()) + " is " + c.getPhase() + ": " + c.getReason())
            .toList();
    if (!wrong.isEmpty()) {
      throw new StepFailed(name + " on " + s.getNode() + ": " + String.join("; ", wrong));
    }
  }

  /** A step some connections did not make. */
  private static final class StepFailed extends RuntimeException {
    StepFailed(String message) {
      super(message);
    }
  }

  private static long count(MigrationStatus s, ConnectionPhase phase) {
    return s.getConnectionsList().stream()
        .map(ConnectionStatus::getPhase)
        .filter(phase::equals)
        .count();
  }

  private static AddressRequest onSource(Plan p, AddressRequest.Op op, boolean withRoute) {
    return address(p, op, p.sourcePod(), withRoute ? p.address().sourceHostInterface() : "");
  }

  private static AddressRequest onTarget(Plan p, AddressRequest.Op op, boolean withRoute) {
    return address(p, op, p.targetPod(), withRoute ? p.address().targetHostInterface() : "");
  }

  private static AddressRequest address(
      Plan p, AddressRequest.Op op, PodRef pod, String hostInterface) {
    return AddressRequest.newBuilder()
        .setOp(op)
        .setAddress(p.address().cidr())
        .setPod(pod)
        .setHostInterface(hostInterface)
        .build();
  }
}
