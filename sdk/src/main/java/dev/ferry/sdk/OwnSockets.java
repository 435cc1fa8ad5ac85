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

/**
 * Finds the descriptor of one of this process's TCP connections. The JDK's sockets do not show
 * their descriptor; the kernel does, whatever stack opened the socket (java.net, NIO, Netty).
 */
public final class OwnSockets {
  private static final Path FDS = Path.of("/proc/self/fd");

  /** A connection no socket has: an unconnected one has no peer, a connected one no port 0. */
  private static final Connection NOBODY =
      new Connection(new InetSocketAddress("0.0.0.0", 0), new InetSocketAddress("0.0.0.0", 0));

  private OwnSockets() {}

  /**
   * Searches once, for a connection no socket has, so that what a search loads (its classes, the
   * native calls' stubs) is loaded before a freeze waits for it: a JVM's first search took 30–40 ms
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
   * @throws IOException when this process has no socket for that connection
   */
  public static int find(Connection c) throws IOException {
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
        // adopt() only wraps the number: the socket is not ours to close.
        TcpSocket socket = TcpSocket.adopt(fd);
        try {
          if (c.equals(new Connection(socket.localAddress(), socket.remoteAddress()))) {
            return fd;
          }
        } catch (SyscallException e) {
          // a listening or unconnected socket has no peer: not this one
        }
      }
    }
    throw new IOException("this process has no TCP socket for " + c);
  }
}
