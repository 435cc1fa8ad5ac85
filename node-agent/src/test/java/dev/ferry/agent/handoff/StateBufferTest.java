// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.handoff;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class StateBufferTest {
  @Test
  void statesAnnouncedAtTheLargestSizeCostLittleUntilTheirBytesCome() {
    // 64 states of 2 GiB announced: 128 GiB if allocated up front, far over any test heap.
    List<StateBuffer> announced = new ArrayList<>();
    for (int i = 0; i < 64; i++) {
      announced.add(new StateBuffer(Integer.MAX_VALUE - 8));
    }
    assertThat(announced).allMatch(b -> b.filled() == 0 && !b.whole());
  }

  @Test
  void bytesArrivingInPiecesMakeTheWholeStateIntact() {
    byte[] state = new byte[(5 << 20) + 123];
    new Random(7).nextBytes(state);
    StateBuffer b = new StateBuffer(state.length);
    for (int off = 0; off < state.length; ) {
      int n = Math.min(1 << 20, state.length - off);
      b.put(ByteBuffer.wrap(state, off, n));
      off += n;
    }
    assertThat(b.whole()).isTrue();
    assertThat(b.bytes()).isEqualTo(state);
  }

  @Test
  void bytesPastTheAnnouncedLengthAreRefused() {
    StateBuffer b = new StateBuffer(3);
    b.put(new byte[] {1, 2}, 0, 2);
    assertThatThrownBy(() -> b.put(new byte[] {3, 4}, 0, 2))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("announced as 3");
    assertThatThrownBy(b::bytes).hasMessageContaining("2 of 3");
  }
}
