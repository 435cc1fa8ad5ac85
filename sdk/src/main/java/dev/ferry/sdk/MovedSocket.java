// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sdk;

import dev.ferry.protocol.Connection;
import dev.ferry.sys.TcpSocket;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;

/**
 * A connection that moved here, live: a blocking socket with streams, or a bare descriptor for an
 * event loop to adopt ({@link #release}).
 */
public final class MovedSocket implements AutoCloseable {
  private final Connection connection;
  private final TcpSocket socket;
  private boolean released;

  MovedSocket(Connection connection, TcpSocket socket) {
    this.connection = connection;
    this.socket = socket;
  }

  public Connection connection() {
    return connection;
  }

  /** Gives up the descriptor to the caller (Netty's {@code new EpollSocketChannel(fd)}, say). */
  public int release() {
    released = true;
    return socket.fd();
  }

  public InputStream input() {
    return new InputStream() {
      @Override
      public int read() throws IOException {
        byte[] one = new byte[1];
        return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
      }

      @Override
      public int read(byte[] b, int off, int len) throws IOException {
        return len == 0 ? 0 : socket.read(b, off, len);
      }
    };
  }

  public OutputStream output() {
    return new OutputStream() {
      @Override
      public void write(int b) throws IOException {
        write(new byte[] {(byte) b}, 0, 1);
      }

      @Override
      public void write(byte[] b, int off, int len) throws IOException {
        for (int done = 0; done < len; ) {
          done += socket.write(b, off + done, len - done);
        }
      }
    };
  }

  /** Sends FIN after what is queued. */
  public void shutdownOutput() throws IOException {
    socket.shutdownOutput();
  }

  @Override
  public void close() {
    if (!released) {
      socket.close();
    }
  }

  @Override
  public String toString() {
    return "MovedSocket(" + connection + ")";
  }
}
