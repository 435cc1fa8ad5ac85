// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import static dev.ferry.api.v1alpha1.ConnectionPhase.EXPORTED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.FROZEN;
import static dev.ferry.api.v1alpha1.ConnectionPhase.RELEASED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.RESUMED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.STAGED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.STAYED;
import static dev.ferry.api.v1alpha1.ConnectionPhase.TRANSFERRED;

import dev.ferry.api.client.AgentClient;
import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.MigrationRequestStatus;
import dev.ferry.api.crd.Phase;
import dev.ferry.api.v1alpha1.FreezeRequest;
import dev.ferry.api.v1alpha1.MigrationRef;
import dev.ferry.api.v1alpha1.MigrationStatus;
import dev.ferry.api.v1alpha1.StageRequest;
import dev.ferry.api.v1alpha1.TransferRequest;
import dev.ferry.operator.address.AddressMove;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BooleanSupplier;
import java.util.logging.Logger;

/**
 * Carries one migration from the phase its status records to an end, step by step as
 * docs/architecture describes, writing the status at every phase. Every agent call is idempotent,
 * so an operator restarted in any phase repeats at most the step it was in.
 *
 * <p>Before the address moves, a failure rolls back to the source: the source agent still holds
 * every state. Once a connection is live on the target (the commit point) nothing is rolled back:
 * the source's states are older than what the client has received since.
 */
public final class MigrationRun {
  private static final Logger LOG = Logger.getLogger(MigrationRun.class.getName());
  private static final int COMMITTED_ATTEMPTS = 3;

  private final MigrationRequest mr;
  private final Plan plan;
  private final AgentClient source;
  private final AgentClient target;
  private final AddressMove address;
  private final StatusSink sink;
  private final BooleanSupplier deleted;
  private final MigrationRef ref;
  private final Outcomes outcomes = new Outcomes();
  private long phaseStart = System.nanoTime();
  private long freezeStart;

  public MigrationRun(
      MigrationRequest mr,
      Plan plan,
      AgentClient source,
      AgentClient target,
      AddressMove address,
      StatusSink sink,
      BooleanSupplier deleted) {
    this.mr = mr;
    this.plan = plan;
    this.source = source;
    this.target = target;
    this.address = address;
    this.sink = sink;
    this.deleted = deleted;
    this.ref = MigrationRef.newBuilder().setMigrationId(plan.id()).build();
  }

  private MigrationRequestStatus status() {
    return mr.getStatus();
  }

  /** Runs until the migration ends; the status says how. */
  public void run() {
    Phase at = status().getPhase();
    try {
      while (!at.finished()) {
        if (deleted.getAsBoolean() && at != Phase.Releasing) {
          rollBack(at, "the MigrationRequest was deleted");
          return;
        }
        checkDeadline(at);
        at = step(at);
      }
    } catch (Outcomes.StepFailed | RuntimeException e) {
      failed(at, e.getMessage());
    } catch (Exception e) {
      failed(at, e.toString());
    }
  }

  /**
   * Rolls the migration back from wherever it is, as a deleted request asks: nothing is rolled back
   * past the commit point.
   */
  public void abort(String why) {
    Phase at = status().getPhase();
    if (at.finished()) {
      return;
    }
    if (at == Phase.Releasing) {
      LOG.info(() -> mr.getMetadata().getName() + ": past the commit point; finishing instead");
      run();
      return;
    }
    rollBack(at, why);
  }

  private Phase step(Phase at) throws Exception {
    switch (at) {
      case Pending, Preparing -> {
        return enter(Phase.Freezing, "moving the connections of " + plan.source().getName());
      }
      case Freezing -> {
        freezeStart = System.nanoTime();
        MigrationStatus s =
            source.call(
                "Freeze",
                a ->
                    a.freeze(
                        FreezeRequest.newBuilder()
                            .setMigrationId(plan.id())
                            .setPod(plan.source())
                            .addAllPorts(plan.ports())
                            .setTargetAgent(plan.targetAgent())
                            .setHoldLimitMs(
                                (int) Math.min(Integer.MAX_VALUE, plan.holdLimit().toMillis()))
                            .build()));
        read(s);
        Outcomes.expect("freeze", s, FROZEN, STAYED);
        if (Outcomes.count(s, FROZEN) == 0 && Outcomes.count(s, STAYED) > 0) {
          // Moving the address would cut off the connections their applications kept.
          return nothingToMove(s);
        }
        refuseIfPartial("freeze", s);
        return enter(Phase.Exporting, Outcomes.count(s, FROZEN) + " connection(s) frozen");
      }
      case Exporting -> {
        MigrationStatus s = source.call("Export", a -> a.export(ref));
        read(s);
        Outcomes.expect("export", s, EXPORTED, STAYED);
        refuseIfPartial("export", s);
        return enter(Phase.Transferring, "states saved on " + plan.sourceNode());
      }
      case Transferring -> {
        TransferRequest t =
            TransferRequest.newBuilder()
                .setMigrationId(plan.id())
                .setTargetAgent(plan.targetAgent())
                .build();
        MigrationStatus s = source.call("Transfer", a -> a.transfer(t));
        read(s);
        Outcomes.expect("transfer", s, TRANSFERRED, STAYED);
        return enter(Phase.Restoring, "states on " + plan.targetNode());
      }
      case Restoring -> {
        address.prepareTarget();
        StageRequest r =
            StageRequest.newBuilder().setMigrationId(plan.id()).setPod(plan.target()).build();
        MigrationStatus s = target.call("Stage", a -> a.stage(r));
        read(s);
        Outcomes.expect("stage", s, STAGED);
        return enter(Phase.MovingAddress, "sockets rebuilt in " + plan.target().getName());
      }
      case MovingAddress -> {
        address.switchToTarget();
        outcomes.addressLeft();
        MigrationStatus s = resume();
        sink.addressMoved(plan);
        address.announceOnTarget();
        if (freezeStart != 0) {
          status().setPauseMillis(round((System.nanoTime() - freezeStart) / 1e6));
        }
        read(s);
        return enter(Phase.Releasing, "live on " + plan.targetNode());
      }
      case Releasing -> {
        release();
        return finish(
            Phase.Completed,
            "Completed",
            "every connection that could move lives on " + plan.targetNode());
      }
      default -> {
        return at;
      }
    }
  }

  /** Resumes on the target, retrying once past the commit point. */
  private MigrationStatus resume() throws Outcomes.StepFailed {
    MigrationStatus s = target.call("Resume", a -> a.resume(ref));
    for (int attempt = 1;
        Outcomes.count(s, RESUMED) > 0 && attempt < COMMITTED_ATTEMPTS;
        attempt++) {
      if (Outcomes.count(s, RESUMED) == s.getConnectionsCount()) {
        return s;
      }
      s = target.call("Resume", a -> a.resume(ref));
    }
    if (Outcomes.count(s, RESUMED) > 0 && Outcomes.count(s, RESUMED) < s.getConnectionsCount()) {
      // Committed with some connections lost on the way: report them, never roll back the rest.
      read(s);
      LOG.warning(() -> mr.getMetadata().getName() + ": some connections did not resume");
      return s;
    }
    Outcomes.expect("resume", s, RESUMED);
    return s;
  }

  private void release() {
    MigrationStatus s = source.call("Release", a -> a.release(ref));
    try {
      Outcomes.expect("release", s, RELEASED, STAYED);
    } catch (Outcomes.StepFailed e) {
      // The connections live on the target; what the source still holds expires at its limit.
      sink.event(mr, "Warning", "ReleaseIncomplete", e.getMessage());
    }
    read(s);
    read(target.call("Status", a -> a.status(ref)));
  }

  private Phase nothingToMove(MigrationStatus frozen) {
    rollBackSource();
    return finish(
        Phase.Failed,
        "NothingFrozen",
        "no connection could be frozen, so the address stays: each is kept by its application"
            + " (see connectionDetails)");
  }

  private void failed(Phase at, String why) {
    LOG.warning(() -> mr.getMetadata().getName() + " failed in " + at + ": " + why);
    if (at == Phase.Releasing || at.finished()) {
      finish(
          Phase.Completed,
          "Completed",
          "live on " + plan.targetNode() + "; releasing the source failed: " + why);
      return;
    }
    rollBack(at, why);
  }

  /**
   * Everything back on the source; the status says connection by connection where each lives. The
   * target's part is best effort (its agent may be the thing that failed); the source's is what
   * puts the connections back, and decides the outcome.
   */
  private void rollBack(Phase at, String why) {
    sink.event(mr, "Warning", "RollingBack", "in " + at + ": " + why);
    List<String> problems = new ArrayList<>();
    attempt(
        problems,
        "the target's rollback",
        () -> {
          try {
            read(target.call("Rollback", a -> a.rollback(ref)));
          } catch (AgentClient.Failed e) {
            if (!e.notFound()) {
              throw e;
            }
          }
        });
    if (at == Phase.Restoring) {
      attempt(problems, "taking the address off the target pod", address::unprepareTarget);
    }
    try {
      if (at == Phase.MovingAddress) {
        address.switchBack(problems);
      }
      rollBackSource();
    } catch (Exception e) {
      finish(
          Phase.Failed,
          "RollbackFailed",
          "in "
              + at
              + ": "
              + why
              + "; rolling back failed too: "
              + e.getMessage()
              + ". The source agent keeps the states and holds the clients until spec.holdLimit;"
              + " retry with: ferry-agent rollback --id "
              + plan.id());
      return;
    }
    boolean whole = outcomes.counts().getFailed() == 0;
    finish(
        whole ? Phase.RolledBack : Phase.Failed,
        whole ? "RolledBack" : "RollbackIncomplete",
        "in "
            + at
            + ": "
            + why
            + (problems.isEmpty() ? "" : "; on the way back: " + String.join("; ", problems)));
  }

  /**
   * Some connections stayed with their application: the address cannot move without cutting them
   * off, so unless the request allows that, the step fails and every connection goes back.
   */
  private void refuseIfPartial(String step, MigrationStatus s) throws Outcomes.StepFailed {
    List<String> stayed =
        s.getConnectionsList().stream()
            .filter(c -> c.getPhase() == STAYED)
            .map(c -> Outcomes.format(c.getId()) + " (" + c.getReason() + ")")
            .toList();
    if (!stayed.isEmpty() && !mr.getSpec().isAllowPartial()) {
      throw new Outcomes.StepFailed(
          step
              + " on "
              + s.getNode()
              + ": "
              + stayed.size()
              + " connection(s) stayed with their application: "
              + String.join("; ", stayed)
              + ". Moving the address would cut them off, so every connection goes back; set"
              + " spec.allowPartial to move the others anyway");
    }
  }

  private static void attempt(List<String> problems, String what, Runnable step) {
    try {
      step.run();
    } catch (RuntimeException e) {
      problems.add(what + " failed: " + e.getMessage());
    }
  }

  private void rollBackSource() {
    try {
      read(source.call("Rollback", a -> a.rollback(ref)));
    } catch (AgentClient.Failed e) {
      if (!e.notFound()) {
        throw e;
      }
    }
  }

  private void checkDeadline(Phase at) throws Outcomes.StepFailed {
    String start = status().getStartTime();
    if (start != null && Instant.now().isAfter(Instant.parse(start).plus(plan.deadline()))) {
      throw new Outcomes.StepFailed(
          "spec.deadline (" + mr.getSpec().getDeadline() + ") passed in phase " + at);
    }
  }

  private void read(MigrationStatus s) {
    outcomes.read(s);
    status().setConnections(outcomes.counts());
    status().setConnectionDetails(outcomes.details());
  }

  /** Closes the current phase's clock, records the next, saves the status and tells of it. */
  private Phase enter(Phase next, String message) {
    record(next, message);
    sink.event(mr, "Normal", next.name(), message);
    return next;
  }

  private void record(Phase next, String message) {
    Phase was = status().getPhase();
    Map<String, Double> millis =
        status().getPhaseMillis() == null
            ? new HashMap<>()
            : new HashMap<>(status().getPhaseMillis());
    millis.merge(was.name(), round((System.nanoTime() - phaseStart) / 1e6), Double::sum);
    status().setPhaseMillis(millis);
    phaseStart = System.nanoTime();
    status().setPhase(next);
    status().setMessage(message);
    sink.save(mr);
  }

  private Phase finish(Phase end, String reason, String message) {
    status().setCompletionTime(Instant.now().toString());
    if (status().getConnections() == null) {
      status().setConnections(outcomes.counts());
    }
    Conditions.set(status(), end, reason, message, mr.getMetadata().getGeneration());
    record(end, message);
    sink.event(
        mr,
        end == Phase.Completed ? "Normal" : "Warning",
        reason,
        message
            + " ("
            + status().getConnections().getMigrated()
            + " of "
            + status().getConnections().getTotal()
            + " migrated)");
    return end;
  }

  private static double round(double ms) {
    return Math.round(ms * 10) / 10.0;
  }
}
