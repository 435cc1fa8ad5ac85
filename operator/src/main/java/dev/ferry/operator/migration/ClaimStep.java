// SPDX-License-Identifier: Apache-2.0
package dev.ferry.operator.migration;

import dev.ferry.api.crd.MigrationRequest;
import dev.ferry.api.crd.Phase;
import dev.ferry.api.v1alpha1.MoveOutcome;
import dev.ferry.operator.address.Fabric;
import dev.ferry.operator.migration.MoveCalls.Flight;
import dev.ferry.operator.migration.MoveCalls.Kind;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.logging.Logger;

/**
 * Moving, where the operator claims the service address itself ({@link Fabric#claimsBeforeCommit},
 * EC2): once everything is staged on the target, the claim and then the agents' Commit; or, when
 * the source node forwarded the address's packets and the agents committed without waiting, the
 * claim that commit owes, made again until spec.deadline if it fails, never rolled back. A claim
 * that fails before the commit is {@link Failed}, and {@link MoveStep} rolls the move back.
 */
final class ClaimStep {
  private static final Logger LOG = Logger.getLogger(ClaimStep.class.getName());

  private final Agents agents;
  private final Supplier<Fabric> fabric;
  private final MoveCalls calls;

  ClaimStep(Agents agents, Supplier<Fabric> fabric, MoveCalls calls) {
    this.agents = agents;
    this.fabric = fabric;
    this.calls = calls;
  }

  /**
   * Everything is staged on the target: the operator claims the address, then commits. When the
   * source node forwards the address's packets to the target ({@code forwarding}), the network
   * having accepted the claim is enough: the clients' pause does not wait for it to deliver.
   */
  StepOutcome thenCommit(Flight move, boolean forwarding, Runnable wake) {
    Plan plan = move.plan();
    Agent source = agents.agent(plan.sourceAgent());
    Fabric network = fabric.get();
    calls.start(
        Kind.COMMIT,
        plan,
        move.reason(),
        move.note(),
        () -> {
          claim(
              () -> {
                if (forwarding) {
                  network.claimAccepted(MoveStep.bare(plan.address()), plan.targetNode());
                } else {
                  network.claim(MoveStep.bare(plan.address()), plan.targetNode());
                }
              },
              Failed::new);
          return source.commit(plan.id());
        },
        wake);
    return StepOutcome.wait(
        Reasons.CLAIMING_ADDRESS,
        "staged on "
            + plan.targetNode()
            + "; claiming "
            + plan.address()
            + " for it"
            + (forwarding ? " (" + plan.sourceNode() + " forwards it there meanwhile)" : ""),
        MoveStep.POLL);
  }

  /** A claim with the fabric on a call's thread; what it throws comes out as {@code failed}'s. */
  private static void claim(ClaimCall call, Function<Exception, RuntimeException> failed) {
    try {
      call.run();
    } catch (Exception e) {
      if (e instanceof InterruptedException) {
        Thread.currentThread().interrupt();
      }
      throw failed.apply(e);
    }
  }

  private interface ClaimCall {
    void run() throws Exception;
  }

  /**
   * The agents committed while the source node forwards the address's packets to the target
   * (claim_after_forwarded_commit): the connections are live there, and the address must follow.
   */
  boolean owed(Plan plan, MoveOutcome o) {
    return o.getForwarding()
        && o.getCommitted() // never with AWAITING_ADDRESS, which says forwarding too
        && MoveStep.hasAddress(plan)
        && fabric.get().claimsBeforeCommit();
  }

  /**
   * The claim a forwarded commit owes; its answer is the Move's outcome, which then ends the
   * migration as any other. Only the network's acceptance is awaited: the source forwards until the
   * network delivers the address to the target.
   */
  StepOutcome afterCommit(Flight move, MoveOutcome moved, Runnable wake) {
    Plan plan = move.plan();
    Fabric network = fabric.get();
    calls.start(
        Kind.CLAIM,
        plan,
        move.reason(),
        move.note(),
        () -> {
          claim(
              () -> network.claimAccepted(MoveStep.bare(plan.address()), plan.targetNode()),
              e -> new AfterCommitFailed(e, moved));
          return moved;
        },
        wake);
    return StepOutcome.wait(
        Reasons.CLAIMING_ADDRESS,
        "the connections resumed on "
            + plan.targetNode()
            + ", and "
            + plan.sourceNode()
            + " forwards "
            + MoveStep.bare(plan.address())
            + "'s packets there; claiming the address for "
            + plan.targetNode(),
        MoveStep.POLL);
  }

  /**
   * Past the commit nothing goes back: a claim that failed is made again (Move again answers the
   * same outcome) until spec.deadline, and then the migration fails saying where the connections
   * are and what they still need.
   */
  StepOutcome failedAfterCommit(
      MigrationRequest mr, Flight flight, AfterCommitFailed failed, boolean deadlinePassed) {
    Plan plan = flight.plan();
    String what =
        "the connections live on "
            + plan.targetNode()
            + " (committed), reached through "
            + plan.sourceNode()
            + ", which forwards "
            + MoveStep.bare(plan.address())
            + "'s packets there until its forwarding limit; claiming the address for "
            + plan.targetNode()
            + " failed: "
            + failed.getCause().getMessage();
    LOG.warning(
        () -> mr.getMetadata().getNamespace() + "/" + mr.getMetadata().getName() + ": " + what);
    if (!deadlinePassed) {
      return StepOutcome.wait(
          Reasons.ADDRESS_CLAIM_FAILED, what + "; trying again", MoveStep.RETRY);
    }
    return StepOutcome.end(
        Phase.Failed,
        Reasons.ADDRESS_CLAIM_FAILED,
        what
            + ". spec.deadline has passed, so the operator stops trying: move the address to "
            + plan.targetNode()
            + "'s interface before the forwarding ends (docs/aws.md, Errors), or the clients"
            + " lose these connections then",
        MoveStep.report(plan, failed.moved));
  }

  /** The fabric could not claim the address for the target node. */
  static final class Failed extends RuntimeException {
    Failed(Exception cause) {
      super(cause.getMessage(), cause);
    }
  }

  /** The fabric could not claim the address for the target node after the agents committed. */
  static final class AfterCommitFailed extends RuntimeException {
    final transient MoveOutcome moved;

    AfterCommitFailed(Exception cause, MoveOutcome moved) {
      super(cause.getMessage(), cause);
      this.moved = moved;
    }
  }
}
