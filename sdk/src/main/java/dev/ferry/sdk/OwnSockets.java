// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sdk;

import dev.ferry.protocol.Connection;
import dev.ferry.sys.Descriptors;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcpSocket;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Finds the descriptor of one of this process's TCP connections. The JDK's sockets do not show
 * their descriptor; the kernel does, whatever stack opened the socket (java.net, NIO, Netty).
 */
public final class OwnSockets {
  private static final Path FDS = Path.of("/proc/self/fd");

  /** The TCP connections the last search passed, and their descriptors then. */
  private static final Map<Connection, Integer> SEEN = new ConcurrentHashMap<>();

  /** A connection no socket has: an unconnected one has no peer, a connected one no port 0. */
  private static final Connection NOBODY =
      new Connection(new InetSocketAddress("0.0.0.0", 0), new InetSocketAddress("0.0.0.0", 0));

  private OwnSockets() {}

  /**
   * Searches once, for a connection no socket has, so that what a search loads (its classes, the
   * native calls' stubs) is loaded before a freeze waits for it: a JVM's first search took 23–47 ms
   * in the benchmark, inside the client's pause, and the next ones 4–9 ms (267 descriptors). {@link
   * FerryAgent} runs it when a session opens.
   */
  static void rehearse() {
    try {
      find(NOBODY);
    } catch (IOException expected) {
      // the search ran to the end, as a freeze's does
    }
  }

  /**
   * The descriptor of this process's socket for {@code c}, which stays the caller's.
   *
   * <p>One search of the descriptors notes every TCP connection it passes; a later call looks there
   * first and checks the descriptor's addresses again (a closed descriptor's number is reused), so
   * that a freeze of many connections, one call each, searches once and not once per connection:
   * 1,000 connections meant about a million descriptors looked at.
   *
   * @throws IOException when this process has no socket for that connection
   */
  public static int find(Connection c) throws IOException {
    Integer seen = SEEN.get(c);
    if (seen != null && c.equals(connectionOf(seen))) {
      return seen;
    }
    Map<Connection, Integer> found = new HashMap<>();
    try (DirectoryStream<Path> fds = Files.newDirectoryStream(FDS)) {
      for (Path entry : fds) {
        int fd;
        try {
          fd = Integer.parseInt(entry.getFileName().toString());
          if (!Files.readSymbolicLink(entry).toString().startsWith("socket:")
              || !Descriptors.isTcpSocket(fd)) {
            continue;
          }
        } catch (IOException | NumberFormatException e) {
          continue; // closed while we looked, or not a descriptor
        }
        Connection at = connectionOf(fd);
        if (at != null) {
          found.put(at, fd);
        }
      }
    }
    // What this search saw replaces what the last one did: no descriptor gone since is kept.
    SEEN.clear();
    SEEN.putAll(found);
    Integer fd = found.get(c);
    if (fd == null) {
      throw new IOException("this process has no TCP socket for " + c);
    }
    return fd;
  }

  /** The connection of TCP socket {@code fd}; null if it has none (listening, unconnected). */
  private static Connection connectionOf(int fd) {
    // adopt() only wraps the number: the socket is not ours to close.
    TcpSocket socket = TcpSocket.adopt(fd);
    try {
      return new Connection(socket.localAddress(), socket.remoteAddress());
    } catch (SyscallException e) {
      return null; // no peer, or not a socket any more
    }
  }
}
