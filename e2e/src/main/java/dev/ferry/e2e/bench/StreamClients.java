// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e.bench;

import dev.ferry.sys.NetNamespace;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.PriorityQueue;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * N clients of the token streamer, in the client's network namespace, on one selector thread: half
 * of them streams at the streaming rate, half near-idle streams (one event a second, the streamer's
 * lowest rate). Each checks every byte it receives against {@link TokenOracle}, stamps the arrival
 * of each token, and counts resets (a reset, or the end of the stream before {@code [DONE]}). In
 * reconnect mode, a client whose stream broke connects again and asks for the same prompt, as a
 * client without Ferry must.
 *
 * <p>Everything about the connections lives on the selector thread; other threads ask it through
 * {@link #onLoop}.
 */
final class StreamClients implements AutoCloseable {
  /** Connections opened but not yet streaming, at most: the streamer's accept backlog is 128. */
  private static final int MAX_OPENING = 100;

  private static final long FIRST_RETRY_NANOS = TimeUnit.MILLISECONDS.toNanos(10);
  private static final long MAX_RETRY_NANOS = TimeUnit.MILLISECONDS.toNanos(500);

  /** What to open: where, how many, what to ask for. */
  record Spec(
      InetSocketAddress streamServer,
      InetSocketAddress idleServer,
      int connections,
      int streamTokens,
      int idleTokens,
      int kvBytes,
      long streamIntervalNanos,
      long idleIntervalNanos,
      String promptPrefix) {
    int streams() {
      return (connections + 1) / 2;
    }
  }

  /** One client. Touched only on the selector thread. */
  static final class Conn {
    final int id;
    final boolean idle;
    final InetSocketAddress server;
    final long intervalNanos;
    final TokenOracle oracle;
    final byte[] request;
    SocketChannel channel;
    boolean ready;
    boolean ended;
    long lastToken;
    long bytesVerified;
    long tokens;
    int resets;
    String failure;
    long[] arrivals = new long[16];
    int recorded;
    // Reconnect mode: the break, and the first token of the stream asked for again.
    boolean broken;
    long lastTokenBeforeBreak;
    int indexBeforeBreak = -1;
    long firstTokenAfterBreak;
    int connectAttempts;
    long retryAt;
    long backoff;

    Conn(
        int id,
        boolean idle,
        InetSocketAddress server,
        long intervalNanos,
        String prompt,
        int n,
        int kvBytes) {
      this.id = id;
      this.idle = idle;
      this.server = server;
      this.intervalNanos = intervalNanos;
      this.oracle = new TokenOracle(prompt, n, kvBytes);
      this.request =
          ("GET /v1/stream?prompt="
                  + prompt
                  + "&tokens="
                  + n
                  + " HTTP/1.1\r\nHost: "
                  + server.getAddress().getHostAddress()
                  + "\r\nAccept: text/event-stream\r\n\r\n")
              .getBytes(StandardCharsets.US_ASCII);
    }

    void record(long at) {
      if (recorded == arrivals.length) {
        arrivals = Arrays.copyOf(arrivals, arrivals.length * 2);
      }
      arrivals[recorded++] = at;
    }
  }

  /** A client as the measurement sees it, copied off the selector thread. */
  record Outcome(
      int id,
      boolean idle,
      long intervalNanos,
      boolean ready,
      boolean ended,
      long lastToken,
      long bytesVerified,
      long tokens,
      int resets,
      String failure,
      long[] arrivals,
      boolean broken,
      long lastTokenBeforeBreak,
      int indexBeforeBreak,
      long firstTokenAfterBreak,
      int connectAttempts) {}

  private final Spec spec;
  private final NetNamespace namespace;
  private final Selector selector;
  private final Conn[] conns;
  private final ConcurrentLinkedQueue<Runnable> tasks = new ConcurrentLinkedQueue<>();
  private final PriorityQueue<Conn> retries =
      new PriorityQueue<>((x, y) -> Long.compare(x.retryAt, y.retryAt));
  private final ByteBuffer buffer = ByteBuffer.allocateDirect(64 * 1024);
  private final Thread loop;
  private volatile boolean running = true;
  private volatile Throwable died;
  private int opened;
  private int opening;
  private int readyCount;
  private boolean recording;
  private boolean reconnect;

  private StreamClients(Spec spec, NetNamespace namespace) throws IOException {
    this.spec = spec;
    this.namespace = namespace;
    this.selector = Selector.open();
    this.conns = new Conn[spec.connections()];
    for (int i = 0; i < conns.length; i++) {
      // Streams and idle clients interleaved, so that any slice of the population has both.
      boolean idle = i % 2 == 1;
      conns[i] =
          new Conn(
              i,
              idle,
              idle ? spec.idleServer() : spec.streamServer(),
              idle ? spec.idleIntervalNanos() : spec.streamIntervalNanos(),
              spec.promptPrefix() + "-" + i,
              idle ? spec.idleTokens() : spec.streamTokens(),
              spec.kvBytes());
    }
    this.loop = new Thread(this::run, "bench-clients");
    loop.setDaemon(true);
  }

  /**
   * Opens every connection from {@code namespace} and returns once each has received its first
   * token.
   */
  static StreamClients open(Spec spec, String namespace, long timeoutSeconds) throws Exception {
    StreamClients c = new StreamClients(spec, NetNamespace.named(namespace));
    c.loop.start();
    try {
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(timeoutSeconds);
      while (c.onLoop(() -> c.readyCount) < spec.connections()) {
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException(
              c.onLoop(() -> c.readyCount)
                  + " of "
                  + spec.connections()
                  + " clients were streaming after "
                  + timeoutSeconds
                  + " s; first failure: "
                  + c.onLoop(c::firstFailure));
        }
        Thread.sleep(50);
      }
      String failure = c.onLoop(c::firstFailure);
      if (!failure.equals("none")) {
        throw new IllegalStateException("a client failed before the benchmark began: " + failure);
      }
      return c;
    } catch (Exception | Error e) {
      c.close();
      throw e;
    }
  }

  /** Runs {@code work} on the selector thread, between two rounds of reads. */
  <T> T onLoop(Callable<T> work) throws Exception {
    FutureTask<T> task = new FutureTask<>(work);
    tasks.add(task);
    selector.wakeup();
    try {
      return task.get(60, TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      throw e.getCause() instanceof Exception x ? x : e;
    } catch (TimeoutException e) {
      throw new IllegalStateException(
          "the client thread did not answer within 60 s" + (died == null ? "" : ": " + died), e);
    }
  }

  /** From now on every token's arrival is kept (until {@link #stopRecording}). */
  void startRecording() throws Exception {
    onLoop(
        () -> {
          for (Conn c : conns) {
            c.recorded = 0;
          }
          recording = true;
          return null;
        });
  }

  void stopRecording() throws Exception {
    onLoop(
        () -> {
          recording = false;
          return null;
        });
  }

  /** A client whose stream breaks connects again and asks for the same prompt from the start. */
  void reconnectOnBreak() throws Exception {
    onLoop(
        () -> {
          reconnect = true;
          return null;
        });
  }

  /** How many clients broke and have received the first token of their new stream. */
  int recovered() throws Exception {
    return onLoop(
        () ->
            (int)
                Arrays.stream(conns).filter(c -> c.broken && c.firstTokenAfterBreak != 0).count());
  }

  /** How many clients are streaming again after a break, or have failed for good. */
  int settled() throws Exception {
    return onLoop(
        () ->
            (int)
                Arrays.stream(conns)
                    .filter(c -> (c.broken && c.firstTokenAfterBreak != 0) || c.failure != null)
                    .count());
  }

  /** How many clients have received a token after {@code t} (System.nanoTime), or have ended. */
  int countPast(long t) throws Exception {
    return onLoop(() -> (int) Arrays.stream(conns).filter(c -> c.ended || c.lastToken > t).count());
  }

  /** Every client's state now. */
  List<Outcome> outcomes() throws Exception {
    return onLoop(
        () -> {
          List<Outcome> out = new ArrayList<>(conns.length);
          for (Conn c : conns) {
            out.add(
                new Outcome(
                    c.id,
                    c.idle,
                    c.intervalNanos,
                    c.ready,
                    c.ended,
                    c.lastToken,
                    c.bytesVerified,
                    c.tokens,
                    c.resets,
                    c.failure,
                    Arrays.copyOf(c.arrivals, c.recorded),
                    c.broken,
                    c.lastTokenBeforeBreak,
                    c.indexBeforeBreak,
                    c.firstTokenAfterBreak,
                    c.connectAttempts));
          }
          return out;
        });
  }

  private String firstFailure() {
    return Arrays.stream(conns)
        .filter(c -> c.failure != null)
        .map(c -> "client " + c.id + ": " + c.failure)
        .findFirst()
        .orElse("none");
  }

  private void run() {
    try {
      // The thread stays in the client's namespace: every socket it opens, reconnects too, is
      // the client's.
      namespace.call(
          () -> {
            loop();
            return null;
          });
    } catch (Throwable t) {
      died = t;
      System.err.println("bench clients: the selector thread died: " + t);
      t.printStackTrace();
    }
  }

  private void loop() throws IOException {
    while (running) {
      Runnable task;
      while ((task = tasks.poll()) != null) {
        task.run();
      }
      openMore();
      long wait = 100;
      if (!retries.isEmpty()) {
        wait =
            Math.max(0, TimeUnit.NANOSECONDS.toMillis(retries.peek().retryAt - System.nanoTime()));
      }
      int ready = wait == 0 ? selector.selectNow() : selector.select(wait);
      if (ready > 0) {
        for (SelectionKey key : selector.selectedKeys()) {
          Conn c = (Conn) key.attachment();
          if (!key.isValid()) {
            continue;
          }
          if (key.isConnectable()) {
            connected(c, key);
          } else if (key.isReadable()) {
            read(c);
          }
        }
        selector.selectedKeys().clear();
      }
      long now = System.nanoTime();
      while (!retries.isEmpty() && retries.peek().retryAt <= now) {
        connect(retries.poll());
      }
    }
    for (Conn c : conns) {
      closeQuietly(c);
    }
    selector.close();
  }

  private void openMore() {
    while (opened < conns.length && opening < MAX_OPENING) {
      Conn c = conns[opened++];
      opening++;
      connect(c);
    }
  }

  private void connect(Conn c) {
    c.connectAttempts++;
    try {
      SocketChannel ch = SocketChannel.open();
      c.channel = ch;
      ch.configureBlocking(false);
      ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
      if (ch.connect(c.server)) {
        sendRequest(c);
      } else {
        ch.register(selector, SelectionKey.OP_CONNECT, c);
      }
    } catch (IOException e) {
      connectFailed(c, e);
    }
  }

  private void connected(Conn c, SelectionKey key) {
    try {
      c.channel.finishConnect();
      key.interestOps(0);
      sendRequest(c);
    } catch (IOException e) {
      connectFailed(c, e);
    }
  }

  private void sendRequest(Conn c) throws IOException {
    ByteBuffer req = ByteBuffer.wrap(c.request);
    while (req.hasRemaining()) {
      // A fresh socket's send buffer takes a request of a hundred bytes at once.
      if (c.channel.write(req) == 0) {
        throw new IOException("the request did not fit the socket's empty send buffer");
      }
    }
    c.channel.register(selector, SelectionKey.OP_READ, c);
    c.backoff = 0;
  }

  private void connectFailed(Conn c, IOException e) {
    closeQuietly(c);
    if (c.connectAttempts > 1_000) {
      end(c, "could not connect after " + c.connectAttempts + " attempts: " + e.getMessage());
      return;
    }
    // Refused or unreachable (the address is moving, or the backlog overflowed): again soon.
    c.backoff = c.backoff == 0 ? FIRST_RETRY_NANOS : Math.min(MAX_RETRY_NANOS, c.backoff * 2);
    c.retryAt = System.nanoTime() + c.backoff;
    retries.add(c);
  }

  private void read(Conn c) {
    int n;
    try {
      n = c.channel.read(buffer.clear());
    } catch (IOException e) {
      broke(c, "reset (" + e.getMessage() + ") after token " + c.oracle.lastIndex());
      return;
    }
    if (n < 0) {
      if (c.oracle.finished()) {
        closeQuietly(c);
        c.ended = true;
      } else {
        broke(c, "the stream ended before [DONE], after token " + c.oracle.lastIndex());
      }
      return;
    }
    long now = System.nanoTime();
    buffer.flip();
    TokenOracle o = c.oracle;
    for (int i = 0; i < n; i++) {
      switch (o.accept(buffer.get(i))) {
        case MORE -> c.bytesVerified++;
        case TOKEN -> {
          c.bytesVerified++;
          token(c, now);
        }
        case DONE -> c.bytesVerified++;
        case WRONG -> {
          end(c, "wrong byte: " + o.mismatch());
          return;
        }
      }
    }
  }

  private void token(Conn c, long now) {
    c.tokens++;
    if (!c.ready) {
      c.ready = true;
      opening--;
      readyCount++;
    }
    if (c.broken && c.firstTokenAfterBreak == 0) {
      c.firstTokenAfterBreak = now;
    }
    c.lastToken = now;
    if (recording) {
      c.record(now);
    }
  }

  /** The stream broke: a reset unless this is the baseline, where the client asks again. */
  private void broke(Conn c, String why) {
    closeQuietly(c);
    if (reconnect && (!c.broken || c.firstTokenAfterBreak == 0)) {
      if (!c.broken) {
        c.broken = true;
        c.lastTokenBeforeBreak = c.lastToken;
        c.indexBeforeBreak = c.oracle.lastIndex();
        c.connectAttempts = 0;
      }
      // Until the new stream's first token, a break is one more failed attempt: a listener that
      // is going away still completes handshakes, then resets them.
      c.oracle.restart();
      connect(c);
      return;
    }
    c.resets++;
    end(c, why);
  }

  private void end(Conn c, String why) {
    closeQuietly(c);
    if (c.failure == null) {
      c.failure = why;
    }
    c.ended = true;
    if (!c.ready) {
      c.ready = true; // counted, so that opening goes on; open() reports the failure
      opening--;
      readyCount++;
    }
  }

  private static void closeQuietly(Conn c) {
    if (c.channel != null) {
      try {
        c.channel.close();
      } catch (IOException ignored) {
        // closing a client; nothing to tell
      }
      c.channel = null;
    }
  }

  @Override
  public void close() {
    running = false;
    selector.wakeup();
    try {
      loop.join(30_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    namespace.close();
  }
}
