// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * {@code make bench ARGS="--moves K"}: one stream's p99 from one move is a single sample, so a run
 * can measure each path K times; what the table then reports of the K moves.
 */
class SeveralMovesTest {
  @Test
  void movesDefaultsToOneAndIsBounded() {
    assertEquals(1, MigrationBenchmark.Options.parse(new String[] {"--connections", "1"}).moves());
    assertEquals(
        20, MigrationBenchmark.Options.parse(new String[] {"--connections 1 --moves 20"}).moves());
    for (String bad : List.of("0", "101", "x", "-1", "2.5")) {
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class,
              () -> MigrationBenchmark.Options.parse(new String[] {"--moves", bad}));
      assertTrue(
          e.getMessage().startsWith("--moves must be 1..100") && e.getMessage().endsWith(bad),
          e.getMessage());
    }
  }

  @Test
  void severalMovesReportEveryStallAndTheMedianMovesSteps() {
    FerryMove.Result cold = move("warm-up", 90);
    FerryMove.Result slow = move("m1", 40);
    FerryMove.Result middle = move("m2", 15);
    FerryMove.Result fast = move("m3", 11);
    Figures.Ferry across =
        Figures.Ferry.across(
            List.of(
                path(cold, slow, new double[] {30, 31}, 1_000, 0, "client 3: reset"),
                path(cold, middle, new double[] {12, 13}, 2_000, 1, "client 3: reset"),
                path(cold, fast, new double[] {9, 8}, 3_000, 1, "client 5: reset")));

    assertEquals(List.of(slow, middle, fast), across.moves());
    assertSame(middle, across.measured(), "the move held for the median time");
    assertSame(cold, across.cold());
    assertArrayEquals(new double[] {125, 95}, across.coldStallMs(), "the warm-up's, once");
    assertArrayEquals(new double[] {30, 31, 12, 13, 9, 8}, across.stallMs());
    assertArrayEquals(new double[] {1, 1, 1}, across.noiseMs());
    assertEquals(3_000, across.bytesVerified(), "the clients as the last move left them");
    assertEquals(1, across.resets());
    assertEquals(3, across.unresumed(), "one per move");
    assertEquals(List.of("client 3: reset", "client 5: reset"), across.errors());
  }

  @Test
  void oneMoveIsReportedAsItWas() {
    FerryMove.Result only = move("m1", 21);
    Figures.Ferry one = path(move("warm-up", 60), only, new double[] {20.9}, 500, 0, null);
    Figures.Ferry across = Figures.Ferry.across(List.of(one));
    assertSame(only, across.measured());
    assertArrayEquals(new double[] {20.9}, across.stallMs());
    assertEquals(500, across.bytesVerified());
  }

  @Test
  void theGoalLineSaysHowManySamplesItsP99IsOf() {
    MigrationBenchmark.Options o =
        MigrationBenchmark.Options.parse(new String[] {"--connections 1 --path agents"});
    Figures.Ferry one = path(move("warm-up", 60), move("m1", 21), new double[] {20.9}, 5, 0, null);
    double[] hundred = new double[100];
    Arrays.fill(hundred, 4.0);
    hundred[99] = 30; // the largest; the nearest-rank p99 of 100 is the 99th
    Figures.Ferry many = path(move("warm-up", 60), move("m1", 5), hundred, 5, 0, null);

    assertTrue(
        report(o, one)
            .contains(
                "- p99 stall ≤ 5 ms for 1 connection: agent (L2) path **not met** (20.90 ms, the"
                    + " largest of 1; more samples with --moves)"),
        report(o, one));
    assertTrue(
        report(o, many)
            .contains(
                "- p99 stall ≤ 5 ms for 1 connection: agent (L2) path **met** (4.00 ms over 100"
                    + " samples)\n"),
        report(o, many));
  }

  @Test
  void theGoalLineSaysWhetherFerryIsAheadOfReconnectingAndCriuAtEveryCount() {
    MigrationBenchmark.Options o =
        MigrationBenchmark.Options.parse(new String[] {"--connections 1 --path agents"});
    Figures.Ferry ahead =
        path(move("warm-up", 60), move("m1", 21), new double[] {20.9}, 5, 0, null);
    Figures.Ferry behind = path(move("warm-up", 60), move("m1", 50), new double[] {50}, 5, 0, null);

    assertTrue(
        report(o, ahead)
            .contains(
                "- ahead of reconnecting and of CRIU at every count (stall p99, each path):"
                    + " **met** (N=1: agents 20.90 against reconnecting 45.00 and CRIU not run)\n"),
        report(o, ahead));
    assertTrue(
        report(o, behind)
            .contains(
                "**not met** (N=1: agents 50.00 against reconnecting 45.00 and CRIU not run)"),
        report(o, behind));
  }

  @Test
  void theFirstMoveIsReportedWithItsClientsStall() {
    MigrationBenchmark.Options o =
        MigrationBenchmark.Options.parse(new String[] {"--connections 1 --path agents"});
    Figures.Ferry one = path(move("warm-up", 60), move("m1", 21), new double[] {20.9}, 5, 0, null);

    // Held as the agents timed it, then the p99 of the clients' stall over it (95 and 65 ms).
    assertTrue(report(o, one).contains("| 60.0 / 95.00 | 5 | 0 / 1 |\n"), report(o, one));
  }

  private static String report(MigrationBenchmark.Options o, Figures.Ferry agents) {
    Figures.Reconnect reconnect =
        new Figures.Reconnect(
            new double[] {46}, new double[] {45}, new long[] {10}, 1, 1.0, List.of());
    Figures f = new Figures(1, 1, 1000, agents, null, reconnect, Figures.Criu.not("not run"));
    return Report.markdown(o, List.of(f), "not run", System.nanoTime());
  }

  private static FerryMove.Result move(String id, long heldMillis) {
    Map<String, Long> untimed = new HashMap<>();
    FerryMove.PHASES.forEach(p -> untimed.put(p, -1L)); // the report prints "–"
    return new FerryMove.Result(
        id,
        0,
        heldMillis * 1_000_000,
        heldMillis * 1_100_000,
        untimed,
        Map.of(),
        1,
        List.of(),
        heldMillis * 1_000,
        0);
  }

  private static Figures.Ferry path(
      FerryMove.Result cold,
      FerryMove.Result m,
      double[] stalls,
      long bytes,
      int resets,
      String error) {
    return new Figures.Ferry(
        cold,
        new double[] {cold.heldMillis() + 35, cold.heldMillis() + 5},
        List.of(m),
        m,
        stalls,
        new double[] {0},
        new double[] {1},
        1,
        bytes,
        bytes / 10,
        resets,
        0,
        error == null ? List.of() : List.of(error));
  }
}
