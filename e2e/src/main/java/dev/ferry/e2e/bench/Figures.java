// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e.bench;

import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.function.Function;

/**
 * What one connection count measured: Ferry on the agent path, Ferry on the operator path, and the
 * two baselines on the same streams.
 *
 * @param ferry the agent path; null when the run left it out ({@code --path operator})
 * @param operator the operator path; null when the run left it out ({@code --path agents})
 */
record Figures(
    int connections,
    int streams,
    int rate,
    Ferry ferry,
    Operator operator,
    Reconnect reconnect,
    Criu criu) {

  /**
   * The clients as the last measured move left them: every byte they verified and every reset and
   * failure of the whole Ferry part (the paths share the clients; the agent path's move is the last
   * when both run: MigrationBenchmark.runOne).
   */
  Ferry lastMeasured() {
    return ferry != null ? ferry : operator.clients();
  }

  /**
   * Ferry's moves on the operator path: what the clients saw (the agents' figures in it are those
   * of the operator's moves), and each request's status.
   */
  record Operator(Ferry clients, OperatorMove.Result cold, OperatorMove.Result measured) {}

  /**
   * Ferry's move (on either path: the clients' figures are computed one way for both).
   *
   * @param cold this path's warm-up move, untimed for the table but reported
   * @param coldStallMs each streaming client's stall over the warm-up move, in ms: a node's first
   *     move, cold in the target application too
   * @param moves this path's measured moves (--moves), in order
   * @param measured the measured move whose steps the table reports: the one move, or of several
   *     the one held for the median time
   * @param stallMs each streaming client's stall over each measured move, in ms
   * @param idleStallMs the same for the near-idle clients (1 event/s)
   * @param noiseMs each streaming client's stall over the 2 s before each measured move, with
   *     nothing moving
   * @param unresumed clients that received nothing after a measured move's resume, per move
   * @param bytesVerified bytes received and found exactly as expected, by every client, from its
   *     start until the end of the last measured move
   * @param resets resets and streams that ended before [DONE]
   * @param errors the first few failures, client by client
   */
  record Ferry(
      FerryMove.Result cold,
      double[] coldStallMs,
      List<FerryMove.Result> moves,
      FerryMove.Result measured,
      double[] stallMs,
      double[] idleStallMs,
      double[] noiseMs,
      int unresumed,
      long bytesVerified,
      long tokens,
      int resets,
      int failed,
      List<String> errors) {

    /**
     * One path's measured moves as one: every move's stalls and noise together; the clients' bytes,
     * resets and failures as the last move left them (they count from each client's start); the
     * steps of the move held for the median time.
     */
    static Ferry across(List<Ferry> each) {
      Ferry last = each.get(each.size() - 1);
      List<FerryMove.Result> moves = each.stream().map(Ferry::measured).toList();
      List<FerryMove.Result> byHeld =
          moves.stream().sorted(Comparator.comparingDouble(FerryMove.Result::heldMillis)).toList();
      return new Ferry(
          each.get(0).cold(),
          each.get(0).coldStallMs(),
          moves,
          byHeld.get((byHeld.size() - 1) / 2),
          joined(each, Ferry::stallMs),
          joined(each, Ferry::idleStallMs),
          joined(each, Ferry::noiseMs),
          each.stream().mapToInt(Ferry::unresumed).sum(),
          last.bytesVerified(),
          last.tokens(),
          last.resets(),
          last.failed(),
          each.stream().flatMap(x -> x.errors().stream()).distinct().limit(5).toList());
    }

    private static double[] joined(List<Ferry> each, Function<Ferry, double[]> field) {
      return each.stream().flatMapToDouble(x -> Arrays.stream(field.apply(x))).toArray();
    }
  }

  /**
   * Baseline (a): the server killed, the address moved to a standby server, the clients
   * reconnecting and asking again.
   *
   * @param nextTokenMs per client: from its last token before the kill to the first token of the
   *     stream it asked for again
   * @param streamStallMs the same less the nominal interval, streaming clients only (for the plot)
   * @param lostTokens per client: tokens it had received that the new stream generates again
   */
  record Reconnect(
      double[] nextTokenMs,
      double[] streamStallMs,
      long[] lostTokens,
      int recovered,
      double addressMs,
      List<String> errors) {}

  /** Baseline (b): CRIU moving the server processes; {@code reason} says why not, if it did not. */
  record Criu(
      String reason,
      CriuMove.Result move,
      double[] stallMs,
      long bytesVerified,
      int resets,
      List<String> errors) {
    static Criu not(String reason) {
      return new Criu(reason, null, new double[0], 0, 0, List.of());
    }
  }
}
