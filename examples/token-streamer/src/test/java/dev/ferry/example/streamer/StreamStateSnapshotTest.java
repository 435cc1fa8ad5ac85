// SPDX-License-Identifier: Apache-2.0
package dev.ferry.example.streamer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

/**
 * A snapshot taken without copying the cache ({@link StreamState#snapshot}) encodes the state as it
 * was when it began, whatever the tokens written while it is being copied change, and leaves the
 * stream's own state as those tokens made it.
 */
class StreamStateSnapshotTest {
  // Over three of the snapshot's copy chunks (1 MiB), and not a multiple of one: tokens land in
  // chunks copied before them, after them, and in the last, short one.
  private static final int KV = (3 << 20) + 12_345;

  @Test
  void aSnapshotEncodesTheStateAsItWasWhenItBeganThoughTokensFollowedIt() {
    StreamState state = StreamState.start("copy on write", 100_000, 50, KV);
    advance(state, 7);
    byte[] then = state.encode();
    StreamState.Snapshot snapshot = state.snapshot();
    advance(state, 2_000); // each changes one byte of the cache, spread over every chunk
    byte[] now = state.encode();

    assertThat(snapshot.next()).isEqualTo(7);
    assertThat(snapshot.encode()).isEqualTo(then);
    assertThat(state.encode()).as("the stream's own state").isEqualTo(now);
    assertThat(StreamState.decode(then).next()).isEqualTo(7);
  }

  @Test
  void tokensWrittenWhileTheSnapshotIsCopiedDoNotReachIt() throws Exception {
    StreamState state = StreamState.start("copy on write", 1_000_000, 50, KV);
    advance(state, 3);
    byte[] then = state.encode();
    StreamState.Snapshot snapshot = state.snapshot();
    AtomicBoolean copying = new AtomicBoolean(true);
    CountDownLatch going = new CountDownLatch(1);
    Thread writer =
        new Thread(
            () -> {
              // The stream goes on while the snapshot is copied, as the writer does.
              for (int i = 0; copying.get() && !state.finished(); i++) {
                state.nextEvent();
                if (i == 100) {
                  going.countDown();
                }
              }
            });
    writer.start();
    going.await();
    byte[] encoded;
    try {
      encoded = snapshot.encode();
    } finally {
      copying.set(false);
      writer.join();
    }
    assertThat(encoded).isEqualTo(then);
    assertThat(state.next()).isGreaterThan(100);
    // The stream's state is the one its tokens made, as decoding its records after the snapshot
    // rebuilds it.
    byte[] records = StreamState.tokenRecords(3, state.next());
    byte[] whole = new byte[then.length + records.length];
    System.arraycopy(then, 0, whole, 0, then.length);
    System.arraycopy(records, 0, whole, then.length, records.length);
    assertThat(StreamState.decode(whole).encode()).isEqualTo(state.encode());
  }

  @Test
  void oneSnapshotAtATimeAndANewOneOnceItIsEncoded() {
    StreamState state = StreamState.start("copy on write", 100, 50, 4096);
    StreamState.Snapshot first = state.snapshot();
    assertThatThrownBy(state::snapshot).isInstanceOf(IllegalStateException.class);
    first.encode();
    advance(state, 5);
    assertThat(state.snapshot().encode()).isEqualTo(state.encode());
  }

  private static void advance(StreamState state, int tokens) {
    for (int i = 0; i < tokens; i++) {
      state.nextEvent();
    }
  }
}
