// SPDX-License-Identifier: Apache-2.0
package dev.ferry.testbed;

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
 * An IMDSv2 metadata service, as strict about tokens as EC2's: no data without a token from {@code
 * PUT /latest/api/token}. What it announces can be switched while a test runs. It listens on
 * loopback, or on an address that agents in node namespaces reach.
 */
public final class FakeImds implements AutoCloseable {
  public static final String TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds";
  public static final String TOKEN_HEADER = "X-aws-ec2-metadata-token";

  private final Set<String> tokens = ConcurrentHashMap.newKeySet();
  private final AtomicInteger tokensIssued = new AtomicInteger();
  private final AtomicInteger refused = new AtomicInteger();
  private final AtomicInteger failed = new AtomicInteger();
  private volatile String instanceAction;
  private volatile String rebalance;
  private volatile boolean failing;
  private final InetAddress address;
  private int port;
  private HttpServer server;

  private FakeImds(InetAddress address) {
    this.address = address;
  }

  /** On loopback. */
  public static FakeImds start() throws IOException {
    return start(InetAddress.getLoopbackAddress());
  }

  public static FakeImds start(InetAddress address) throws IOException {
    FakeImds imds = new FakeImds(address);
    imds.listen(0);
    return imds;
  }

  public URI endpoint() {
    String host = address.getHostAddress();
    return URI.create("http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + port);
  }

  /** Nothing announced: both documents answer 404. */
  public void announceNothing() {
    instanceAction = null;
    rebalance = null;
  }

  /** The body of /latest/meta-data/spot/instance-action, or null for 404. */
  public void instanceAction(String body) {
    instanceAction = body;
  }

  /** The body of /latest/meta-data/events/recommendations/rebalance, or null for 404. */
  public void rebalance(String body) {
    rebalance = body;
  }

  /** Every request, token included, answered 503 while set. */
  public void failing(boolean on) {
    failing = on;
  }

  /** Closes the port: connections are refused until {@link #restart}. */
  public void stop() {
    server.stop(0);
    server = null;
  }

  /** Listens on the same port again, having forgotten every token it issued. */
  public void restart() throws IOException {
    tokens.clear();
    listen(port);
  }

  public int tokensIssued() {
    return tokensIssued.get();
  }

  /** Requests turned away for want of a valid token. */
  public int refused() {
    return refused.get();
  }

  /** Requests answered 503 while failing. */
  public int failed() {
    return failed.get();
  }

  private void listen(int onPort) throws IOException {
    server = HttpServer.create(new InetSocketAddress(address, onPort), 16);
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
