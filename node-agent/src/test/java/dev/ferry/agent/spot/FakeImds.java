// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.spot;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An IMDSv2 metadata service on loopback, as strict about tokens as EC2's: no data without a token
 * from {@code PUT /latest/api/token}. What it announces can be switched while a test runs.
 */
final class FakeImds implements AutoCloseable {
  static final String TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds";
  static final String TOKEN_HEADER = "X-aws-ec2-metadata-token";

  private final Set<String> tokens = ConcurrentHashMap.newKeySet();
  private final AtomicInteger tokensIssued = new AtomicInteger();
  private final AtomicInteger refused = new AtomicInteger();
  private final AtomicInteger failed = new AtomicInteger();
  private volatile String instanceAction;
  private volatile String rebalance;
  private volatile boolean failing;
  private int port;
  private HttpServer server;

  private FakeImds() {}

  static FakeImds start() throws IOException {
    FakeImds imds = new FakeImds();
    imds.listen(0);
    return imds;
  }

  URI endpoint() {
    return URI.create("http://127.0.0.1:" + port);
  }

  /** Nothing announced: both documents answer 404. */
  void announceNothing() {
    instanceAction = null;
    rebalance = null;
  }

  /** The body of /latest/meta-data/spot/instance-action, or null for 404. */
  void instanceAction(String body) {
    instanceAction = body;
  }

  /** The body of /latest/meta-data/events/recommendations/rebalance, or null for 404. */
  void rebalance(String body) {
    rebalance = body;
  }

  /** Every request, token included, answered 503 while set. */
  void failing(boolean on) {
    failing = on;
  }

  /** Closes the port: connections are refused until {@link #restart}. */
  void stop() {
    server.stop(0);
    server = null;
  }

  /** Listens on the same port again, having forgotten every token it issued. */
  void restart() throws IOException {
    tokens.clear();
    listen(port);
  }

  int tokensIssued() {
    return tokensIssued.get();
  }

  /** Requests turned away for want of a valid token. */
  int refused() {
    return refused.get();
  }

  /** Requests answered 503 while failing. */
  int failed() {
    return failed.get();
  }

  private void listen(int onPort) throws IOException {
    server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), onPort), 16);
    server.createContext("/", this::answer);
    server.start();
    port = server.getAddress().getPort();
  }

  private void answer(HttpExchange x) throws IOException {
    try (x) {
      if (failing) {
        failed.incrementAndGet();
        reply(x, 503, "Service Unavailable");
        return;
      }
      String path = x.getRequestURI().getPath();
      if (path.equals("/latest/api/token")) {
        issueToken(x);
        return;
      }
      if (!x.getRequestMethod().equals("GET")) {
        reply(x, 405, "");
        return;
      }
      String token = x.getRequestHeaders().getFirst(TOKEN_HEADER);
      if (token == null || !tokens.contains(token)) {
        refused.incrementAndGet();
        reply(x, 401, "");
        return;
      }
      String body =
          switch (path) {
            case "/latest/meta-data/spot/instance-action" -> instanceAction;
            case "/latest/meta-data/events/recommendations/rebalance" -> rebalance;
            default -> null;
          };
      if (body == null) {
        reply(x, 404, "Not Found");
      } else {
        reply(x, 200, body);
      }
    }
  }

  private void issueToken(HttpExchange x) throws IOException {
    String ttl = x.getRequestHeaders().getFirst(TOKEN_TTL_HEADER);
    if (!x.getRequestMethod().equals("PUT") || ttl == null) {
      reply(x, 400, "");
      return;
    }
    String token = UUID.randomUUID().toString();
    tokens.add(token);
    tokensIssued.incrementAndGet();
    x.getResponseHeaders().add(TOKEN_TTL_HEADER, ttl);
    reply(x, 200, token);
  }

  private static void reply(HttpExchange x, int status, String body) throws IOException {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    x.sendResponseHeaders(status, bytes.length == 0 ? -1 : bytes.length);
    if (bytes.length > 0) {
      x.getResponseBody().write(bytes);
    }
  }

  @Override
  public void close() {
    if (server != null) {
      stop();
    }
  }
}
