// SPDX-License-Identifier: Apache-2.0
package dev.ferry.example.streamer;

import dev.ferry.sdk.Handover;
import dev.ferry.sdk.StateOffer;
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
  private final Object snapshotting = new Object();
  private StateOffer offer; // where each token is offered ahead of the freeze, or null
  private int offeredNext; // the state offered so far is this stream's at token offeredNext

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
          StateOffer o = offer(); // one append a token, before a pause can begin
          if (o != null && o.append(StreamState.tokenRecords(offeredNext, state.next()))) {
            offeredNext = state.next();
          }
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
    // Offered ahead: only the tokens not offered yet (usually none). Otherwise the whole state.
    return offer != null && offer.isOpen()
        ? StreamState.tokenRecords(offeredNext, state.next())
        : state.encode();
  }

  /**
   * Offers this stream's state ahead of a freeze: a snapshot now, then one append a token. Only the
   * snapshot's beginning waits for a pause between two events; copying the cache (copy on write:
   * {@link StreamState#snapshot}), its checksum and sending it happen while the stream goes on,
   * which then offers every token since with its next append. (Sending a 1 GiB snapshot with the
   * writer stopped held the client for 19 s; cloning the cache between two events, 2–3 s.) A second
   * offer waits for the first one's snapshot.
   */
  void offerTo(StateOffer o) throws InterruptedException {
    synchronized (snapshotting) {
      offerSnapshot(o);
    }
  }

  private void offerSnapshot(StateOffer o) throws InterruptedException {
    StreamState.Snapshot at;
    synchronized (this) {
      while (writing) {
        wait();
      }
      if (gone || state.finished()) {
        o.decline("the stream is ending");
        return;
      }
      at = state.snapshot();
    }
    if (o.snapshot(at.encode())) {
      synchronized (this) {
        offer = o;
        offeredNext = at.next();
      }
    }
  }

  private synchronized StateOffer offer() {
    return offer;
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
    offer = null; // closed with the freeze; a later move asks again
    paused = false;
    notifyAll();
  }

  @Override
  public synchronized String toString() {
    return state.toString();
  }
}
