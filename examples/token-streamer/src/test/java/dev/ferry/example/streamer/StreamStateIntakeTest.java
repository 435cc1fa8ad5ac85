// SPDX-License-Identifier: Apache-2.0
package dev.ferry.example.streamer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.ferry.protocol.Connection;
import dev.ferry.sdk.IncomingState;
import dev.ferry.sdk.Takeover;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * A state taken in piece by piece as it arrives ({@link StreamState.Intake}) is the state {@link
 * StreamState#decode} makes of the whole blob, and is refused exactly when decode refuses it.
 */
class StreamStateIntakeTest {
  private static final int[] PIECES = {1, 3, 5, 7, 64, 4096, Integer.MAX_VALUE};

  /** A snapshot taken at token 3, the records of tokens 3..6 appended, the tail 7..8. */
  private static byte[][] parts() {
    StreamState state = StreamState.start("ferry me across", 40, 50, 10_000);
    for (int i = 0; i < 3; i++) {
      state.nextEvent();
    }
    byte[] snapshot = state.encode();
    for (int i = 3; i < 9; i++) {
      state.nextEvent();
    }
    return new byte[][] {
      snapshot, StreamState.tokenRecords(3, 7), StreamState.tokenRecords(7, 9), state.encode()
    };
  }

  private static byte[] concat(byte[]... parts) {
    ByteBuffer b = ByteBuffer.allocate(Arrays.stream(parts).mapToInt(p -> p.length).sum());
    for (byte[] p : parts) {
      b.put(p);
    }
    return b.array();
  }

  /** Takes {@code blob} in, {@code piece} bytes at a time, and finishes. */
  private static StreamState takeIn(byte[] blob, int piece) {
    StreamState.Intake intake = new StreamState.Intake(blob.length);
    for (int at = 0; at < blob.length; at += piece) {
      intake.take(Arrays.copyOfRange(blob, at, (int) Math.min(blob.length, (long) at + piece)));
    }
    return intake.finish();
  }

  @Test
  void takingTheStateInPieceByPieceMakesWhatDecodeMakesOfTheWhole() {
    byte[][] parts = parts();
    byte[] whole = concat(parts[0], parts[1], parts[2]);
    byte[] decoded = StreamState.decode(whole).encode();
    assertThat(decoded).isEqualTo(parts[3]);
    for (int piece : PIECES) {
      StreamState taken = takeIn(whole, piece);
      assertThat(taken.encode()).as("pieces of " + piece).isEqualTo(decoded);
      assertThat(taken.next()).isEqualTo(9);
    }
    // A snapshot alone, no records, is a state too.
    assertThat(takeIn(parts[0], 13).encode()).isEqualTo(StreamState.decode(parts[0]).encode());
  }

  @Test
  void everyCorruptedOrCutShortStateIsRefusedAsDecodeRefusesIt() {
    byte[][] parts = parts();
    byte[] whole = concat(parts[0], parts[1], parts[2]);
    Random random = new Random(7);
    int refused = 0;
    for (int trial = 0; trial < 300; trial++) {
      byte[] bad;
      if (trial % 3 == 0) {
        bad = Arrays.copyOf(whole, random.nextInt(whole.length)); // cut anywhere
      } else {
        bad = whole.clone();
        // Any byte, or one in the head, the checksum, or the records, where few bytes are.
        int at =
            trial % 3 == 1
                ? random.nextInt(whole.length)
                : (random.nextBoolean()
                    ? random.nextInt(60)
                    : whole.length - 1 - random.nextInt(32 + parts[1].length + parts[2].length));
        bad[at] ^= (byte) (1 + random.nextInt(255));
      }
      boolean decodes;
      try {
        StreamState.decode(bad);
        decodes = true;
      } catch (IllegalArgumentException e) {
        decodes = false;
      }
      for (int piece : PIECES) {
        boolean takes;
        try {
          takeIn(bad, piece);
          takes = true;
        } catch (IllegalArgumentException e) {
          takes = false;
        }
        assertThat(takes).as("trial " + trial + ", pieces of " + piece).isEqualTo(decodes);
      }
      refused += decodes ? 0 : 1;
    }
    assertThat(refused).isGreaterThan(200);
  }

  @Test
  void aCorruptedKvByteIsRefusedAsSoonAsTheChecksumIsIn() {
    byte[] snapshot = parts()[0];
    byte[] bad = snapshot.clone();
    bad[100] ^= 1; // in the KV cache
    StreamState.Intake intake = new StreamState.Intake(bad.length);
    assertThatThrownBy(() -> intake.take(bad))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("checksum");
    assertThatThrownBy(() -> intake.take(new byte[0])).hasMessageContaining("checksum");
    assertThatThrownBy(intake::finish).hasMessageContaining("checksum");
    assertThatThrownBy(() -> StreamState.decode(bad)).hasMessageContaining("checksum");
  }

  @Test
  void theStreamerTakesTheStateInAheadAndTakesOverWithTheTail() throws Exception {
    byte[][] parts = parts();
    TokenStreamer streamer =
        new TokenStreamer(TokenStreamer.Options.parse(new String[] {"--listen", "127.0.0.1:1"}));
    Connection c =
        new Connection(
            new InetSocketAddress("127.0.0.1", 1), new InetSocketAddress("127.0.0.1", 2));

    IncomingState good = streamer.arriving(c);
    assertThat(good).isNotNull();
    feed(good, new byte[] {'x'}); // a first snapshot, replaced by the next
    feed(good, parts[0]);
    good.append(parts[1].length);
    good.bytes(parts[1]);
    assertThat(good.takeover(parts[2])).isInstanceOf(Takeover.Accept.class);

    // A record that does not follow, in the tail: the takeover is declined.
    IncomingState skips = streamer.arriving(c);
    feed(skips, parts[0]);
    assertThat(skips.takeover(StreamState.tokenRecords(4, 5))).isInstanceOf(Takeover.Decline.class);

    // A corrupted KV byte: what is handed ahead is refused while it arrives.
    IncomingState corrupt = streamer.arriving(c);
    byte[] bad = parts[0].clone();
    bad[bad.length - 40] ^= 0x10;
    corrupt.snapshot(bad.length);
    assertThatThrownBy(() -> corrupt.bytes(bad)).hasMessageContaining("checksum");
    corrupt.dropped("declined");

    // --decline-takeover: nothing is taken in ahead; the whole state is declined at the takeover.
    TokenStreamer declining =
        new TokenStreamer(
            TokenStreamer.Options.parse(
                new String[] {"--listen", "127.0.0.1:1", "--decline-takeover"}));
    assertThat(declining.arriving(c)).isNull();
  }

  @Test
  void aStreamTakenOverGoesOnAtTheTakenOverRateWithTheSameTokens() {
    StreamState moved = StreamState.decode(parts()[3]);
    StreamState unmoved = StreamState.decode(parts()[3]);
    TokenStreamer.Options faster =
        TokenStreamer.Options.parse(
            new String[] {"--listen", "127.0.0.1:1", "--rate", "50", "--taken-over-rate", "2000"});

    StreamState here = faster.takenOver(moved);
    assertThat(here.rate).isEqualTo(2000);
    while (!unmoved.finished()) {
      assertThat(here.nextEvent()).isEqualTo(unmoved.nextEvent());
    }
    assertThat(here.finished()).isTrue();

    TokenStreamer.Options asItCame =
        TokenStreamer.Options.parse(new String[] {"--listen", "127.0.0.1:1", "--rate", "2000"});
    StreamState kept = StreamState.decode(parts()[3]);
    assertThat(asItCame.takenOver(kept)).isSameAs(kept);
    assertThat(kept.rate).isEqualTo(50);
    assertThatThrownBy(
            () ->
                TokenStreamer.Options.parse(
                    new String[] {"--listen", "127.0.0.1:1", "--taken-over-rate", "0"}))
        .hasMessageContaining("--taken-over-rate");
  }

  private static void feed(IncomingState in, byte[] snapshot) {
    try {
      in.snapshot(snapshot.length);
      in.bytes(snapshot);
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }
}
