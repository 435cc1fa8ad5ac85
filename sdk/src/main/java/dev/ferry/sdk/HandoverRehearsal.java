// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sdk;

import dev.ferry.protocol.Frame;
import dev.ferry.protocol.FrameChannel;
import dev.ferry.protocol.ProtocolException;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.UnixSocket;
import java.lang.System.Logger.Level;
import java.nio.ByteBuffer;

/**
 * Hands a descriptor over a socket pair of the SDK's own, as a freeze's answer does (FROZEN with
 * the socket, then its BLOB frames), and takes it in at the other end, as a takeover arrives. A
 * session passes no descriptor before a process's first move, so that code ran for the first time
 * inside the client's pause: about a millisecond of the first freeze's answer in the benchmark.
 * {@link FerryAgent} runs this when a session opens; nothing leaves the process.
 */
final class HandoverRehearsal {
  private static final System.Logger LOG = System.getLogger(HandoverRehearsal.class.getName());

  private HandoverRehearsal() {}

  static void run() {
    try {
      UnixSocket[] pair = UnixSocket.pair();
      try (FrameChannel giving = new FrameChannel(pair[0]);
          FrameChannel taking = new FrameChannel(pair[1])) {
        byte[] state = new byte[64];
        giving.write(
            Frame.FROZEN,
            ByteBuffer.allocate(16).putLong(0).putLong(state.length).array(),
            pair[0].fd());
        giving.writeBlobs(0, state);
        Frame frozen = taking.read();
        if (frozen != null) {
          FrameChannel.closeQuietly(frozen.fd()); // a second descriptor of pair[0], received
        }
        taking.read();
      }
    } catch (SyscallException | ProtocolException | RuntimeException e) {
      // Only a warm-up: a move works without it, colder.
      LOG.log(Level.DEBUG, "the handover rehearsal failed: " + e);
    }
  }
}
