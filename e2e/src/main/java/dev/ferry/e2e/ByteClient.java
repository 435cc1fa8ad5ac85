// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A client of e2e/clients (the {@code ws} WebSocket client on Node.js, the {@code http.client}
 * download) as a process: it writes what it receives to {@link #out} and prints {@code received N
 * bytes} as it goes; this keeps every line it printed and the last such N.
 */
public final class ByteClient implements AutoCloseable {
  private static final Pattern RECEIVED = Pattern.compile("^received (\\d+) bytes");

  /** The file the client writes every byte it receives to. */
  public final Path out;

  private final String label;
  private final Process process;
  private final Thread reader;
  private final List<String> lines = new CopyOnWriteArrayList<>();
  private long received;

  ByteClient(String label, Process process, Path out) {
    this.label = label;
    this.process = process;
    this.out = out;
    this.reader = new Thread(this::read, label + "-output");
    reader.setDaemon(true);
    reader.start();
  }

  private void read() {
    try (BufferedReader in =
        new BufferedReader(
            new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
      String line;
      while ((line = in.readLine()) != null) {
        System.out.println("    [" + label + "] " + line);
        lines.add(line);
        Matcher m = RECEIVED.matcher(line);
        synchronized (this) {
          if (m.find()) {
            received = Long.parseLong(m.group(1));
          }
          notifyAll();
        }
      }
    } catch (IOException e) {
      // the client is gone; what it printed stays
    } finally {
      synchronized (this) {
        notifyAll();
      }
    }
  }

  /** Waits until the client has said it received at least {@code bytes}. */
  public synchronized void awaitReceived(long bytes, long timeoutMillis)
      throws InterruptedException {
    long end = System.currentTimeMillis() + timeoutMillis;
    while (received < bytes) {
      long left = end - System.currentTimeMillis();
      if (left <= 0 || !process.isAlive()) {
        throw new IllegalStateException(
            label
                + " received "
                + received
                + " bytes, not "
                + bytes
                + ", within "
                + timeoutMillis
                + " ms; it printed "
                + lines);
      }
      wait(Math.min(left, 100));
    }
  }

  /** How many bytes the client has said it received so far. */
  public synchronized long received() {
    return received;
  }

  /** Waits for the client to end and its output to be read; its exit code, -1 if it did not. */
  public int exitCode(long timeoutSeconds) throws InterruptedException {
    if (!process.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      return -1;
    }
    reader.join(5000);
    return process.exitValue();
  }

  /** Every line the client printed, in order. */
  public List<String> lines() {
    return List.copyOf(lines);
  }

  /** The last line the client printed, or "" if none. */
  public String lastLine() {
    List<String> all = lines();
    return all.isEmpty() ? "" : all.get(all.size() - 1);
  }

  @Override
  public void close() {
    process.destroyForcibly();
  }
}
