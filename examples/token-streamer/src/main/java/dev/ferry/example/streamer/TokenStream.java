// SPDX-License-Identifier: Apache-2.0
package dev.ferry.example.streamer;

import dev.ferry.sdk.Handover;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

/**
 * Writes one stream's events to its client at the stream's rate, on the caller's thread, and can be
 * paused between two events so that its state can be handed over.
 */
final class TokenStream implements Handover.AfterHandover {
  private static final byte[] DONE = "data: [DONE]\n\n".getBytes(StandardCharsets.US_ASCII);

  private final StreamState state;
  private final OutputStream out;
  private final Runnable close;
  private boolean writing;
  private boolean paused;
  private boolean gone;

  /**
   * @param close closes the client's socket once the stream is done or has moved away
   */
  TokenStream(StreamState state, OutputStream out, Runnable close) {
    this.state = state;
    this.out = out;
    this.close = close;
  }

  /**
   * Streams to the end, or until the stream moves away.
   *
   * @return true if this server finished the stream; false if another one carries it on
   */
  boolean run() throws IOException, InterruptedException {
    long interval = TimeUnit.SECONDS.toNanos(1) / state.rate;
    try {
      while (true) {
        synchronized (this) {
          while (paused && !gone) {
            wait();
          }
          if (gone) {
            return false;
          }
          writing = true;
        }
        try {
          if (state.finished()) {
            out.write(DONE);
            out.flush();
            return true;
          }
          out.write(state.nextEvent());
          out.flush();
        } finally {
          synchronized (this) {
            writing = false;
            notifyAll();
          }
        }
        TimeUnit.NANOSECONDS.sleep(interval);
      }
    } finally {
      synchronized (this) {
        // A finished stream stays here (pause() declines it), even if a pause began meanwhile.
        if (!paused || gone || state.finished()) {
          close.run();
        }
      }
    }
  }

  /**
   * Waits for the event being written, stops the writer, and returns the state to hand over; null
   * if the last token is out, because this server has written, or is about to write, [DONE] and a
   * second server would write it again.
   */
  synchronized byte[] pause() throws InterruptedException {
    paused = true;
    while (writing) {
      wait();
    }
    if (state.finished()) {
      paused = false;
      notifyAll();
      return null;
    }
    return state.encode();
  }

  /** The stream lives elsewhere now: the writer ends, the socket object is closed. */
  @Override
  public synchronized void released() {
    gone = true;
    notifyAll();
  }

  /** The agent did not take the stream: write on. */
  @Override
  public synchronized void kept(String why) {
    paused = false;
    notifyAll();
  }

  @Override
  public synchronized String toString() {
    return state.toString();
  }
}
