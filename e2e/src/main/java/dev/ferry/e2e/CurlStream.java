// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

/**
 * A {@code curl -N} client and everything it printed: the bytes, how many token events, and the
 * longest pause between two of them.
 */
public final class CurlStream implements AutoCloseable {
  private final Process curl;
  private final Thread reader;
  private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
  private int events;
  private long lastEvent;
  private long longestGap;

  CurlStream(Process curl) {
    this.curl = curl;
    this.reader = new Thread(this::read, "curl-output");
    reader.setDaemon(true);
    reader.start();
  }

  private void read() {
    byte[] buf = new byte[8192];
    boolean newline = false; // the last byte read was '\n'
    try (InputStream in = curl.getInputStream()) {
      int n;
      while ((n = in.read(buf)) > 0) {
        long now = System.nanoTime();
        int ended = 0; // each event ends with a blank line: "\n\n"
        for (int i = 0; i < n; i++) {
          boolean nl = buf[i] == '\n';
          if (nl && newline) {
            ended++;
            nl = false;
          }
          newline = nl;
        }
        synchronized (this) {
          bytes.write(buf, 0, n);
          if (ended > 0) {
            if (lastEvent != 0) {
              longestGap = Math.max(longestGap, now - lastEvent);
            }
            lastEvent = now;
            events += ended;
          }
          notifyAll();
        }
      }
    } catch (IOException e) {
      // curl is gone; what it printed stays
    }
  }

  /** Waits until curl has printed at least {@code n} events. */
  public synchronized void awaitEvents(int n, long timeoutMillis) throws InterruptedException {
    long end = System.currentTimeMillis() + timeoutMillis;
    while (events < n) {
      long left = end - System.currentTimeMillis();
      if (left <= 0 || !curl.isAlive() && events < n) {
        throw new IllegalStateException(
            "curl printed " + events + " events, not " + n + ", within " + timeoutMillis + " ms");
      }
      wait(Math.min(left, 100));
    }
  }

  public synchronized int events() {
    return events;
  }

  /** Waits for curl to end; its exit code (28 is curl's own timeout, 56 a reset). */
  public int exitCode(long timeoutSeconds) throws InterruptedException {
    if (!curl.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
      curl.destroyForcibly();
      return -1;
    }
    reader.join(5000);
    return curl.exitValue();
  }

  /** Whether curl still runs: a reset or an end of the stream ends it. */
  public boolean alive() {
    return curl.isAlive();
  }

  public synchronized String output() {
    return bytes.toString(StandardCharsets.UTF_8);
  }

  public synchronized double longestGapMillis() {
    return longestGap / 1e6;
  }

  @Override
  public void close() {
    curl.destroyForcibly();
  }
}
