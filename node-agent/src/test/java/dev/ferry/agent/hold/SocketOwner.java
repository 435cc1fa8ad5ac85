// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.hold;

import dev.ferry.sys.TcpSocket;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;

/**
 * A server in a process of its own, so that a test can take its socket (pidfd_getfd) and then kill
 * it: prints {@code fd N} once a client is connected and has been greeted, then waits.
 */
public final class SocketOwner {
  private SocketOwner() {}

  public static void main(String[] args) throws Exception {
    InetSocketAddress address =
        new InetSocketAddress(InetAddress.getByName(args[0]), Integer.parseInt(args[1]));
    TcpSocket listener = TcpSocket.open(address.getAddress());
    listener.setReuseAddress();
    listener.bind(address);
    listener.listen(1);
    System.out.println("listening");
    TcpSocket client = listener.accept();
    client.writeFully("hello\n".getBytes(StandardCharsets.US_ASCII));
    System.out.println("fd " + client.fd());
    Thread.sleep(Long.MAX_VALUE);
  }
}
