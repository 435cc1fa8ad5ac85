// SPDX-License-Identifier: Apache-2.0
package dev.ferry.testbed;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One direction of a delayed link: {@code native/delay_line.c} running in a host, forwarding what
 * is routed into its TUN device {@code in} out of {@code out} a fixed time later. This kernel has
 * no netem; the delay line's own error is measured and reported by {@link #stop}.
 */
public final class DelayLine implements AutoCloseable {
  private static final Pattern FIGURES =
      Pattern.compile(
          "packets (\\d+) dropped (\\d+) late_p50_us (\\d+) late_p99_us (\\d+) late_max_us (\\d+)");

  /**
   * What one direction did: how many packets it carried and dropped (queue full), and how late
   * after their due time they went out (the error added to the nominal delay), in microseconds.
   */
  public record Figures(long packets, long dropped, long lateP50, long lateP99, long lateMax) {
    @Override
    public String toString() {
      return "%d packets, %d dropped, late by p50 %d us, p99 %d us, max %d us"
          .formatted(packets, dropped, lateP50, lateP99, lateMax);
    }
  }

  private final Process process;
  private final BufferedReader output;
  private final Path binary;

  private DelayLine(Process process, BufferedReader output, Path binary) {
    this.process = process;
    this.output = output;
    this.binary = binary;
  }

  /**
   * Starts the delay line in {@code host} and waits until its devices exist (down: the caller
   * brings them up and routes through them).
   */
  public static DelayLine start(Host host, String in, String out, Duration delay)
      throws IOException {
    Path binary = extract();
    Process p =
        host.process(binary.toString(), in, out, String.valueOf(delay.toNanos() / 1000))
            .redirectErrorStream(true)
            .start();
    BufferedReader output =
        new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
    DelayLine line = new DelayLine(p, output, binary);
    String first = output.readLine();
    while (first != null && !first.equals("ready")) {
      // Only its SCHED_FIFO warning comes before "ready": shown, not fatal.
      System.err.println("delay_line " + in + ": " + first);
      first = output.readLine();
    }
    if (first == null) {
      line.close();
      throw new IOException("delay_line " + in + " -> " + out + " exited before it was ready");
    }
    return line;
  }

  private static Path extract() throws IOException {
    try (InputStream in =
        DelayLine.class.getClassLoader().getResourceAsStream("native/delay_line")) {
      if (in == null) {
        throw new IOException(
            "native/delay_line is missing from the testbed's class path: build testbed/native"
                + " first (make -C testbed/native)");
      }
      Path file =
          Files.createTempFile(
              "ferry-delay-line-",
              "",
              PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
      Files.write(file, in.readAllBytes());
      return file;
    }
  }

  /** Stops it (SIGTERM) and returns what it did. */
  public Figures stop() throws IOException {
    // SIGTERM through the handle: Process.destroy would also close the pipe the figures come on.
    process.toHandle().destroy();
    try {
      if (!process.waitFor(5, TimeUnit.SECONDS)) {
        throw new IOException("delay_line did not stop within 5 s of SIGTERM");
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while stopping delay_line", e);
    }
    String line;
    while ((line = output.readLine()) != null) {
      Matcher m = FIGURES.matcher(line);
      if (m.find()) {
        return new Figures(
            Long.parseLong(m.group(1)),
            Long.parseLong(m.group(2)),
            Long.parseLong(m.group(3)),
            Long.parseLong(m.group(4)),
            Long.parseLong(m.group(5)));
      }
    }
    throw new IOException("delay_line stopped without its figures");
  }

  @Override
  public void close() {
    process.destroyForcibly();
    try {
      Files.deleteIfExists(binary);
    } catch (IOException ignored) {
      // A temporary file: the system's cleaner takes it.
    }
  }
}
