// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.agent.repair.MigrationLab.Family;
import dev.ferry.sys.TcpSocket;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** A thousand connections with data queued both ways move in one batch, every byte intact. */
class BatchMigrationIT {
  private static final int CONNECTIONS = 1000;

  private static int downloadSize(int i) {
    return (i * 7919) % 65536;
  }

  private static int uploadSize(int i) {
    return (i * 104729) % 8192;
  }

  @Test
  void aThousandConnectionsMoveInOneBatchWithEveryByteDelivered() throws Exception {
    try (MigrationLab lab = new MigrationLab(Family.IPV4)) {
      List<SocketChannel> clients =
          lab.clientNs.call(
              () -> {
                List<SocketChannel> out = new ArrayList<>();
                for (int i = 0; i < CONNECTIONS; i++) {
                  out.add(lab.connect(0));
                }
                return out;
              });
      Map<Integer, Integer> indexByClientPort = new HashMap<>();
      for (int i = 0; i < CONNECTIONS; i++) {
        indexByClientPort.put(((InetSocketAddress) clients.get(i).getLocalAddress()).getPort(), i);
      }
      TcpSocket[] servers = new TcpSocket[CONNECTIONS];
      for (int n = 0; n < CONNECTIONS; n++) {
        TcpSocket s = lab.accept();
        servers[indexByClientPort.get(s.remoteAddress().getPort())] = s;
      }

      long[] downloaded = new long[CONNECTIONS];
      for (int i = 0; i < CONNECTIONS; i++) {
        downloaded[i] = Peers.fill(servers[i], 1000 + i, 0, downloadSize(i));
        clients.get(i).write(ByteBuffer.wrap(Pattern.bytes(5000 + i, 0, uploadSize(i))));
      }
      Peers.nap(200);

      List<TcpSocket> moved = lab.migrateAll(List.of(servers));

      CompletableFuture<Map<Integer, byte[]>> clientReads =
          CompletableFuture.supplyAsync(() -> readAllToEnd(clients));
      for (int i = 0; i < CONNECTIONS; i++) {
        TcpSocket s = moved.get(i);
        byte[] upload = new byte[uploadSize(i)];
        for (int off = 0; off < upload.length; ) {
          off += s.read(upload, off, upload.length - off);
        }
        assertThat(Pattern.firstMismatch(5000 + i, upload))
            .as("upload of connection %d", i)
            .isEqualTo(-1);
        Peers.writeRest(s, 1000 + i, downloaded[i], downloadSize(i));
        s.shutdownOutput();
      }
      Map<Integer, byte[]> downloads = clientReads.get(120, TimeUnit.SECONDS);
      for (int i = 0; i < CONNECTIONS; i++) {
        byte[] got = downloads.get(i);
        assertThat(got.length)
            .as("bytes downloaded on connection %d", i)
            .isEqualTo(downloadSize(i));
        assertThat(Pattern.firstMismatch(1000 + i, got))
            .as("download of connection %d", i)
            .isEqualTo(-1);
      }
    }
  }

  /** Reads every channel to end of stream; a reset fails the whole read. */
  private static Map<Integer, byte[]> readAllToEnd(List<SocketChannel> channels) {
    try (Selector selector = Selector.open()) {
      Map<SocketChannel, ByteArrayOutputStream> data = new HashMap<>();
      for (int i = 0; i < channels.size(); i++) {
        SocketChannel ch = channels.get(i);
        ch.configureBlocking(false);
        ch.register(selector, SelectionKey.OP_READ, i);
        data.put(ch, new ByteArrayOutputStream());
      }
      Map<Integer, byte[]> done = new HashMap<>();
      ByteBuffer buf = ByteBuffer.allocate(65536);
      while (done.size() < channels.size()) {
        selector.select(1000);
        for (SelectionKey key : selector.selectedKeys()) {
          SocketChannel ch = (SocketChannel) key.channel();
          int n;
          while ((n = ch.read(buf.clear())) > 0) {
            data.get(ch).write(buf.array(), 0, n);
          }
          if (n < 0) {
            key.cancel();
            done.put((Integer) key.attachment(), data.get(ch).toByteArray());
          }
        }
        selector.selectedKeys().clear();
      }
      return done;
    } catch (IOException e) {
      throw new IllegalStateException("client read failed", e);
    }
  }
}
