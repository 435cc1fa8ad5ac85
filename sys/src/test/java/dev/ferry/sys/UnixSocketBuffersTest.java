// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * Each thread sends and receives through native buffers of its own, reused from call to call: what
 * one call leaves in them must never reach the next, nor another thread's.
 */
class UnixSocketBuffersTest {

  @Test
  void aMessageLargerThanTheThreadsBufferArrivesWholeAndTheNextSmallOneIntact() throws Exception {
    UnixSocket[] pair = UnixSocket.pair();
    try (UnixSocket a = pair[0];
        UnixSocket b = pair[1]) {
      byte[] large = pattern(200 << 10, 7);
      byte[] small = pattern(100, 13);
      Thread sender =
          new Thread(
              () -> {
                try {
                  a.send(large);
                  a.send(small);
                } catch (SyscallException e) {
                  throw new IllegalStateException(e);
                }
              });
      sender.start();

      byte[] first = receiveExactly(b, large.length, 300 << 10);
      byte[] second = receiveExactly(b, small.length, 64);
      sender.join();

      assertThat(first).isEqualTo(large);
      assertThat(second).isEqualTo(small);
    }
  }

  @Test
  void aMessageWithoutDescriptorsCarriesNoneAfterOneThatCarriedOne() throws Exception {
    UnixSocket[] pair = UnixSocket.pair();
    UnixSocket[] passed = UnixSocket.pair();
    try (UnixSocket a = pair[0];
        UnixSocket b = pair[1];
        UnixSocket x = passed[0];
        UnixSocket y = passed[1]) {
      a.send(new byte[] {1}, x.fd());
      UnixSocket.Received withOne = b.receive(1, 1);
      a.send(new byte[] {2});
      UnixSocket.Received withNone = b.receive(1, 1);

      assertThat(withOne.fds()).hasSize(1);
      Native.LIBC.close(withOne.fds()[0]);
      assertThat(withNone.data()).containsExactly(2);
      assertThat(withNone.fds()).isEmpty();
    }
  }

  @Test
  void threadsSendingAtOnceEachGetTheirOwnBytes() throws Exception {
    int threads = 4;
    int messages = 2_000;
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<Integer>> done = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        int seed = t;
        Callable<Integer> echo =
            () -> {
              UnixSocket[] pair = UnixSocket.pair();
              try (UnixSocket a = pair[0];
                  UnixSocket b = pair[1]) {
                int intact = 0;
                for (int i = 0; i < messages; i++) {
                  byte[] sent = pattern(1 + (i * 31 + seed) % 3000, seed * 1000 + i);
                  a.send(sent);
                  if (java.util.Arrays.equals(receiveExactly(b, sent.length, 4096), sent)) {
                    intact++;
                  }
                }
                return intact;
              }
            };
        done.add(pool.submit(echo));
      }
      for (Future<Integer> f : done) {
        assertThat(f.get()).isEqualTo(messages);
      }
    } finally {
      pool.shutdownNow();
    }
  }

  private static byte[] receiveExactly(UnixSocket s, int n, int piece) throws SyscallException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    while (out.size() < n) {
      byte[] got = s.receive(Math.min(piece, n - out.size()), 0).data();
      assertThat(got).as("the stream ended early").isNotEmpty();
      out.write(got, 0, got.length);
    }
    return out.toByteArray();
  }

  private static byte[] pattern(int length, int seed) {
    byte[] b = new byte[length];
    for (int i = 0; i < length; i++) {
      b[i] = (byte) (seed * 31 + i * 7 + (i >> 8));
    }
    return b;
  }
}
