// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.service;

import dev.ferry.agent.move.Departure;
import dev.ferry.agent.peer.ArrivalCall;
import dev.ferry.agent.peer.Peers;
import dev.ferry.api.v1alpha1.ArrivalHeader;
import dev.ferry.api.v1alpha1.ArrivalReply;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * Rehearses a move's conversation between two agents with the agent's own API when it starts
 * (agent.proto, Rehearse): the header, the states, STAGED, COMMIT, RESUMED, through the source's
 * {@link ArrivalCall} over the agents' mutual TLS, both ways of committing (after STAGED, and right
 * behind the states), a round after another. The target's end answers as a target where every
 * connection stages would, and touches nothing.
 *
 * <p>Why: {@link MoveRehearsal} warms the kernel work, but a node's first move still ran the
 * messaging code for the first time while its clients were held: in {@code make bench} (one stream)
 * the two round trips between the agents took 33 and 27 ms in an agent's first move as a source, 5
 * and 7 ms in later ones. The JVM loads, links and compiles that code here instead.
 */
final class PeerRehearsal {
  /** Each round's bound: the agent answers itself, so a round that takes longer is stuck. */
  private static final Duration ROUND_LIMIT = Duration.ofSeconds(5);

  /** What the rehearsal did: the rounds, each one move's messages. */
  record Result(int rounds) {}

  private PeerRehearsal() {}

  /**
   * Runs {@code rounds} rehearsed moves of {@code states} to the agent at {@code self}.
   *
   * @throws IllegalStateException if an answer is not what a target that staged everything gives
   */
  static Result run(
      Peers peers, String self, String node, int rounds, List<Departure.Departed> states)
      throws InterruptedException {
    for (int i = 0; i < rounds; i++) {
      boolean withStates = i % 2 == 1;
      try (ArrivalCall call = peers.rehearse(self, ROUND_LIMIT)) {
        call.sendHeader(
            ArrivalHeader.newBuilder()
                .setMigrationId("rehearsal-" + i)
                .setSourceNode(node)
                .setAnswerReady(true)
                .build());
        boolean pipelined = call.awaitReady(ROUND_LIMIT) && withStates;
        call.requireOpen();
        call.holdStarts();
        ArrivalReply staged;
        ArrivalReply resumed;
        if (pipelined) {
          call.sendStatesAhead(states);
          call.commitIfAllStaged(1, Map.of());
          staged = call.awaitReply();
          resumed = call.awaitReply();
        } else {
          staged = call.sendStates(states);
          call.sendKept(List.of());
          resumed = call.commit(1);
        }
        expect(
            staged.hasStaged() && staged.getStaged().getConnectionsCount() == states.size(),
            "STAGED for " + states.size() + " connection(s)",
            staged,
            i);
        expect(resumed.hasResumed() && resumed.getCommitted(), "RESUMED, committed", resumed, i);
      }
    }
    return new Result(rounds);
  }

  private static void expect(boolean ok, String wanted, ArrivalReply got, int round) {
    if (!ok) {
      throw new IllegalStateException(
          "round " + round + ": wanted " + wanted + ", the agent answered " + got);
    }
  }
}
