// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcpSocket;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** Reading and writing helpers for the two ends of a test connection. */
public final class Peers {
  private Peers() {}

  /** Writes pattern bytes from {@code offset} into a non-blocking socket until it is full. */
  public static long fill(TcpSocket server, long seed, long offset, long end)
      throws SyscallException {
    server.setBlocking(false);
    long pos = offset;
    while (pos < end) {
      byte[] chunk = Pattern.bytes(seed, pos, (int) Math.min(65536, end - pos));
      int n = server.write(chunk, 0, chunk.length);
      if (n == 0) {
        break;
      }
      pos += n;
    }
    server.setBlocking(true);
    return pos;
  }

  /** Writes pattern bytes [offset, end) to a blocking socket. */
  public static void writeRest(TcpSocket server, long seed, long offset, long end)
      throws SyscallException {
    for (long pos = offset; pos < end; ) {
      byte[] chunk = Pattern.bytes(seed, pos, (int) Math.min(65536, end - pos));
      server.writeFully(chunk);
      pos += chunk.length;
    }
  }

  /**
   * Ends a moved download: writes pattern bytes [offset, total) from the restored socket and shuts
   * it down, while the client reads to the end; the client must then hold every byte once, in
   * order, {@code received} included.
   */
  public static void finishDownload(
      SocketChannel client,
      ByteArrayOutputStream received,
      TcpSocket onB,
      long seed,
      long offset,
      long total)
      throws Exception {
    CompletableFuture<Void> reader =
        CompletableFuture.runAsync(
            () -> {
              try {
                readToEnd(client, received, false);
              } catch (Exception e) {
                throw new IllegalStateException(
                    "client read failed after " + received.size() + " bytes", e);
              }
            });
    writeRest(onB, seed, offset, total);
    onB.shutdownOutput();
    reader.get(60, TimeUnit.SECONDS);
    if (received.size() != total) {
      throw new AssertionError(
          "the client received " + received.size() + " of " + total + " bytes");
    }
    long mismatch = Pattern.firstMismatch(seed, received.toByteArray());
    if (mismatch != -1) {
      throw new AssertionError(
          "byte " + mismatch + " is not the one sent: lost, duplicated or reordered");
    }
  }

  /** Reads what is there now from a client channel, without waiting. */
  public static int drainAvailable(SocketChannel ch, ByteArrayOutputStream into)
      throws IOException {
    ch.configureBlocking(false);
    ByteBuffer buf = ByteBuffer.allocate(65536);
    int total = 0;
    int n;
    while ((n = ch.read(buf)) > 0) {
      into.write(buf.array(), 0, n);
      buf.clear();
      total += n;
    }
    ch.configureBlocking(true);
    return total;
  }

  /** Reads exactly {@code length} bytes from a client channel. */
  public static void readExactly(SocketChannel ch, int length, ByteArrayOutputStream into)
      throws IOException {
    ByteBuffer buf = ByteBuffer.allocate(length);
    while (buf.hasRemaining()) {
      if (ch.read(buf) < 0) {
        throw new IOException("end of stream after " + buf.position() + " of " + length + " bytes");
      }
    }
    into.write(buf.array(), 0, length);
  }

  /** Reads a client channel to end of stream, slowly if asked (a pause every 64 KiB). */
  public static void readToEnd(SocketChannel ch, ByteArrayOutputStream into, boolean slowly)
      throws IOException {
    ByteBuffer buf = ByteBuffer.allocate(8192);
    long sinceNap = 0;
    int n;
    while ((n = ch.read(buf)) >= 0) {
      into.write(buf.array(), 0, n);
      buf.clear();
      sinceNap += n;
      if (slowly && sinceNap >= 65536) {
        sinceNap = 0;
        nap(1);
      }
    }
  }

  /** Reads a server socket to end of stream. */
  public static byte[] readToEnd(TcpSocket server) throws SyscallException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] buf = new byte[65536];
    int n;
    while ((n = server.read(buf, 0, buf.length)) > 0) {
      out.write(buf, 0, n);
    }
    return out.toByteArray();
  }

  /**
   * The server's read to end of stream, on a thread of its own: a stream that got bytes twice ends
   * in a stall, not an end (the socket acknowledges more than the client ever sent), so the caller
   * bounds its wait.
   */
  public static CompletableFuture<byte[]> readsToEnd(TcpSocket server) {
    return CompletableFuture.supplyAsync(
        () -> {
          try {
            return readToEnd(server);
          } catch (SyscallException e) {
            throw new java.util.concurrent.CompletionException(e);
          }
        });
  }

  /** Writes pattern bytes [from, to) from the client, blocking. */
  public static void upload(SocketChannel client, long seed, int from, int to) throws IOException {
    ByteBuffer buf = ByteBuffer.wrap(Pattern.bytes(seed, from, to - from));
    while (buf.hasRemaining()) {
      client.write(buf);
    }
  }

  public static void nap(long millis) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }
}
