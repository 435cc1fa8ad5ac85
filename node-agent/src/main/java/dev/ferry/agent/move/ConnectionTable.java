// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.move;

import dev.ferry.sdk.wire.Connection;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.SyscallException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The ESTABLISHED TCP connections of a network namespace on one local port: the connections a
 * registered application serves there, and so the ones a migration moves.
 */
public final class ConnectionTable {
  private static final String ESTABLISHED = "01";

  private ConnectionTable() {}

  /** Lists them from inside {@code namespace} (IPv4 and IPv6). */
  public static List<Connection> established(NetNamespace namespace, int localPort)
      throws SyscallException {
    return namespace.call(
        () -> {
          List<Connection> out = new ArrayList<>();
          // thread-self: this thread's namespace, which call() entered, not the process's.
          read(Path.of("/proc/thread-self/net/tcp"), localPort, out);
          read(Path.of("/proc/thread-self/net/tcp6"), localPort, out);
          return out;
        });
  }

  private static void read(Path table, int localPort, List<Connection> out) {
    List<String> lines;
    try {
      lines = Files.readAllLines(table);
    } catch (NoSuchFileException e) {
      return; // IPv6 disabled
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    for (String line : lines.subList(1, lines.size())) {
      // "  0: 640012C6:1F90 010012C6:9C40 01 ..." local, remote, state
      String[] f = line.trim().split("\\s+");
      if (f.length < 4 || !f[3].equals(ESTABLISHED)) {
        continue;
      }
      InetSocketAddress local = endpoint(f[1]);
      if (local.getPort() == localPort) {
        out.add(new Connection(local, endpoint(f[2])));
      }
    }
  }

  /** "ADDR:PORT": the address as 32-bit words in host (little-endian) order, the port in hex. */
  static InetSocketAddress endpoint(String hex) {
    int colon = hex.indexOf(':');
    String words = hex.substring(0, colon);
    byte[] ip = new byte[words.length() / 2];
    for (int w = 0; w < ip.length / 4; w++) {
      for (int b = 0; b < 4; b++) {
        int at = w * 8 + (3 - b) * 2;
        ip[w * 4 + b] = (byte) Integer.parseInt(words.substring(at, at + 2), 16);
      }
    }
    try {
      // getByAddress turns an IPv4-mapped IPv6 address into the IPv4 one, as the sockets do.
      return new InetSocketAddress(
          InetAddress.getByAddress(ip), Integer.parseInt(hex.substring(colon + 1), 16));
    } catch (UnknownHostException impossible) {
      throw new AssertionError(impossible);
    }
  }
}
