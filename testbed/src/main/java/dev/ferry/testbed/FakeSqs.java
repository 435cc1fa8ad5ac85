// SPDX-License-Identifier: Apache-2.0
package dev.ferry.testbed;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Clock;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * An SQS endpoint for the calls a queue consumer makes, speaking the AWS JSON 1.0 protocol as the
 * AWS SDK does since SQS left the Query protocol (POST /, {@code X-Amz-Target:
 * AmazonSQS.ReceiveMessage}, {@code Content-Type: application/x-amz-json-1.0}). Strict as SQS is: a
 * SigV4 {@code Authorization} header (present, not verified), unknown queues answer {@code
 * QueueDoesNotExist}, ReceiveMessage takes at most 10 messages and waits at most 20 s, a received
 * message is invisible for its visibility timeout and then comes back under a new receipt handle,
 * and DeleteMessage with a handle that is unknown or was superseded by a later receive answers
 * {@code ReceiptHandleIsInvalid}. Errors carry both the JSON {@code __type} and the {@code
 * x-amzn-query-error} header that SQS sends for clients of the Query era.
 */
public final class FakeSqs implements AutoCloseable {
  public static final String RECEIVE = "ReceiveMessage";
  public static final String DELETE = "DeleteMessage";
  public static final String SEND = "SendMessage";
  public static final String ATTRIBUTES = "GetQueueAttributes";

  /** SQS's own default, for a queue created without the attribute. */
  public static final int DEFAULT_VISIBILITY_SECONDS = 30;

  private static final String ACCOUNT = "000000000000";
  private static final ObjectMapper JSON = new ObjectMapper();

  /** One message in a queue; guarded by the FakeSqs. */
  private static final class Message {
    final String id = UUID.randomUUID().toString();
    final String body;
    final long sentMillis;
    int receiveCount;
    long invisibleUntil;
    String receiptHandle;

    Message(String body, long sentMillis) {
      this.body = body;
      this.sentMillis = sentMillis;
    }
  }

  /** A call as it arrived: its action and its JSON body. */
  public record Call(String action, JsonNode body) {}

  private static final class Queue {
    final String name;
    final int visibilitySeconds;
    final List<Message> messages = new ArrayList<>();

    Queue(String name, int visibilitySeconds) {
      this.name = name;
      this.visibilitySeconds = visibilitySeconds;
    }
  }

  private final Map<String, Queue> queues = new LinkedHashMap<>();
  private final List<Call> calls = new CopyOnWriteArrayList<>();
  private final Map<String, ArrayList<FakeSqsError>> faults = new LinkedHashMap<>();
  private final InetAddress address;
  private final Clock clock;
  // Long polls block their exchange's thread: one thread each, so a delete never waits for them.
  private final ExecutorService threads =
      Executors.newCachedThreadPool(
          r -> {
            Thread t = new Thread(r, "fake-sqs");
            t.setDaemon(true);
            return t;
          });
  private HttpServer server;
  private volatile boolean closed;

  private FakeSqs(InetAddress address, Clock clock) {
    this.address = address;
    this.clock = clock;
  }

  /** On loopback. */
  public static FakeSqs start() throws IOException {
    return start(InetAddress.getLoopbackAddress());
  }

  public static FakeSqs start(InetAddress address) throws IOException {
    FakeSqs sqs = new FakeSqs(address, Clock.systemUTC());
    sqs.server = HttpServer.create(new InetSocketAddress(address, 0), 16);
    sqs.server.createContext("/", sqs::answer);
    sqs.server.setExecutor(sqs.threads);
    sqs.server.start();
    return sqs;
  }

  /** For the SDK's endpoint override. */
  public URI endpoint() {
    String host = address.getHostAddress();
    int port = server.getAddress().getPort();
    return URI.create("http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + port);
  }

  /** Creates a queue with SQS's default visibility timeout; returns its URL. */
  public String createQueue(String name) {
    return createQueue(name, DEFAULT_VISIBILITY_SECONDS);
  }

  /** Creates a queue whose messages stay invisible this long after a receive; returns its URL. */
  public synchronized String createQueue(String name, int visibilitySeconds) {
    if (queues.containsKey(name)) {
      throw new IllegalArgumentException("queue " + name + " exists already");
    }
    queues.put(name, new Queue(name, visibilitySeconds));
    return url(name);
  }

  public String url(String name) {
    return endpoint() + "/" + ACCOUNT + "/" + name;
  }

  /** Puts a message in the queue, as EventBridge does; returns its message id. */
  public synchronized String send(String queueName, String body) {
    Queue q = queues.get(queueName);
    if (q == null) {
      throw new IllegalArgumentException("no queue " + queueName);
    }
    Message m = new Message(body, clock.millis());
    q.messages.add(m);
    notifyAll();
    return m.id;
  }

  /** The bodies still in the queue, visible or not: what has not been deleted. */
  public synchronized List<String> bodies(String queueName) {
    Queue q = queues.get(queueName);
    return q == null ? List.of() : q.messages.stream().map(m -> m.body).toList();
  }

  /** How often the message with this body has been received. */
  public synchronized int receiveCount(String queueName, String body) {
    return queues.get(queueName).messages.stream()
        .filter(m -> m.body.equals(body))
        .mapToInt(m -> m.receiveCount)
        .max()
        .orElse(0);
  }

  /** Makes every received message of the queue visible again at once, as if its timeout ended. */
  public synchronized void expireVisibility(String queueName) {
    queues.get(queueName).messages.forEach(m -> m.invisibleUntil = 0);
    notifyAll();
  }

  /** The next call of {@code action} fails with this error (AWS's code, HTTP status, message). */
  public synchronized void failNext(String action, String code, int status, String message) {
    faults
        .computeIfAbsent(action, a -> new ArrayList<>())
        .add(new FakeSqsError(code, code, status, message));
  }

  /** Every call so far, in order. */
  public List<Call> calls() {
    return List.copyOf(calls);
  }

  private void answer(HttpExchange ex) throws IOException {
    try (ex) {
      try {
        String target = ex.getRequestHeaders().getFirst("X-Amz-Target");
        if (!"POST".equals(ex.getRequestMethod()) || target == null) {
          throw new FakeSqsError(
              "UnknownOperationException",
              "InvalidAction",
              400,
              "expected a POST with X-Amz-Target");
        }
        String contentType = ex.getRequestHeaders().getFirst("Content-Type");
        if (contentType == null || !contentType.startsWith("application/x-amz-json-1.0")) {
          throw new FakeSqsError(
              "UnknownOperationException",
              "InvalidAction",
              400,
              "expected Content-Type application/x-amz-json-1.0, got " + contentType);
        }
        if (ex.getRequestHeaders().getFirst("Authorization") == null) {
          throw new FakeSqsError(
              "MissingAuthenticationToken",
              "MissingClientTokenId",
              403,
              "Request is missing Authentication Token");
        }
        String action = target.startsWith("AmazonSQS.") ? target.substring(10) : target;
        byte[] raw = ex.getRequestBody().readAllBytes();
        JsonNode body = raw.length == 0 ? JSON.createObjectNode() : JSON.readTree(raw);
        calls.add(new Call(action, body));
        injected(action);
        ObjectNode out =
            switch (action) {
              case RECEIVE -> receive(body);
              case DELETE -> delete(body);
              case SEND -> sendCall(body);
              case ATTRIBUTES -> attributes(body);
              default ->
                  throw new FakeSqsError(
                      "UnknownOperationException", "InvalidAction", 400, action + " is unknown");
            };
        reply(ex, 200, out);
      } catch (FakeSqsError e) {
        ex.getResponseHeaders().add("x-amzn-query-error", e.queryCode() + ";Sender");
        ObjectNode err = JSON.createObjectNode();
        err.put("__type", "com.amazonaws.sqs#" + e.code());
        err.put("message", e.getMessage());
        reply(ex, e.status(), err);
      } catch (IOException | RuntimeException e) {
        ObjectNode err = JSON.createObjectNode();
        err.put("__type", "com.amazon.coral.service#InternalFailure");
        err.put("message", String.valueOf(e));
        reply(ex, 500, err);
      }
    }
  }

  private synchronized void injected(String action) throws FakeSqsError {
    List<FakeSqsError> f = faults.get(action);
    if (f != null && !f.isEmpty()) {
      throw f.remove(0);
    }
  }

  private static void reply(HttpExchange ex, int status, JsonNode body) throws IOException {
    byte[] bytes = JSON.writeValueAsBytes(body);
    ex.getResponseHeaders().add("Content-Type", "application/x-amz-json-1.0");
    ex.getResponseHeaders().add("x-amzn-RequestId", UUID.randomUUID().toString());
    ex.sendResponseHeaders(status, bytes.length);
    ex.getResponseBody().write(bytes);
  }

  private synchronized ObjectNode receive(JsonNode body) throws FakeSqsError {
    Queue q = queue(body);
    int max = intParam(body, "MaxNumberOfMessages", 1);
    if (max < 1 || max > 10) {
      throw FakeSqsError.invalid(
          "Value "
              + max
              + " for parameter MaxNumberOfMessages is invalid. Reason: Must be"
              + " between 1 and 10, if provided.");
    }
    int wait = intParam(body, "WaitTimeSeconds", 0);
    if (wait < 0 || wait > 20) {
      throw FakeSqsError.invalid(
          "Value "
              + wait
              + " for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and"
              + " <= 20, if provided.");
    }
    int visibility = intParam(body, "VisibilityTimeout", q.visibilitySeconds);
    if (visibility < 0 || visibility > 43_200) {
      throw FakeSqsError.invalid(
          "Value "
              + visibility
              + " for parameter VisibilityTimeout is invalid. Reason: Must be"
              + " >= 0 and <= 43200, if provided.");
    }
    long deadline = clock.millis() + wait * 1000L;
    List<Message> got = visible(q, max);
    while (got.isEmpty() && !closed) {
      long left = Math.min(deadline, nextVisible(q)) - clock.millis();
      if (clock.millis() >= deadline) {
        break;
      }
      try {
        wait(Math.max(1, left));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
      got = visible(q, max);
    }
    ArrayNode messages = JSON.createArrayNode();
    long now = clock.millis();
    for (Message m : got) {
      m.receiveCount++;
      m.invisibleUntil = now + visibility * 1000L;
      // A new handle on every receive: the one before it is stale from now on.
      m.receiptHandle = UUID.randomUUID() + "#" + m.id;
      ObjectNode o = messages.addObject();
      o.put("MessageId", m.id);
      o.put("ReceiptHandle", m.receiptHandle);
      o.put("MD5OfBody", md5(m.body));
      o.put("Body", m.body);
      ObjectNode attrs = o.putObject("Attributes");
      attrs.put("SentTimestamp", Long.toString(m.sentMillis));
      attrs.put("ApproximateReceiveCount", Integer.toString(m.receiveCount));
    }
    ObjectNode out = JSON.createObjectNode();
    if (!messages.isEmpty()) {
      out.set("Messages", messages);
    }
    return out;
  }

  private List<Message> visible(Queue q, int max) {
    long now = clock.millis();
    return q.messages.stream().filter(m -> m.invisibleUntil <= now).limit(max).toList();
  }

  private long nextVisible(Queue q) {
    return q.messages.stream().mapToLong(m -> m.invisibleUntil).min().orElse(Long.MAX_VALUE);
  }

  private synchronized ObjectNode delete(JsonNode body) throws FakeSqsError {
    Queue q = queue(body);
    String handle = text(body, "ReceiptHandle");
    boolean removed = q.messages.removeIf(m -> handle.equals(m.receiptHandle));
    if (!removed) {
      throw new FakeSqsError(
          "ReceiptHandleIsInvalid",
          "ReceiptHandleIsInvalid",
          400,
          "The input receipt handle \"" + handle + "\" is not a valid receipt handle.");
    }
    return JSON.createObjectNode();
  }

  private synchronized ObjectNode sendCall(JsonNode body) throws FakeSqsError {
    Queue q = queue(body);
    String text = text(body, "MessageBody");
    String id = send(q.name, text);
    ObjectNode out = JSON.createObjectNode();
    out.put("MessageId", id);
    out.put("MD5OfMessageBody", md5(text));
    return out;
  }

  private synchronized ObjectNode attributes(JsonNode body) throws FakeSqsError {
    Queue q = queue(body);
    long now = clock.millis();
    ObjectNode out = JSON.createObjectNode();
    ObjectNode attrs = out.putObject("Attributes");
    attrs.put("QueueArn", "arn:aws:sqs:us-east-1:" + ACCOUNT + ":" + q.name);
    attrs.put("VisibilityTimeout", Integer.toString(q.visibilitySeconds));
    attrs.put(
        "ApproximateNumberOfMessages",
        Long.toString(q.messages.stream().filter(m -> m.invisibleUntil <= now).count()));
    attrs.put(
        "ApproximateNumberOfMessagesNotVisible",
        Long.toString(q.messages.stream().filter(m -> m.invisibleUntil > now).count()));
    return out;
  }

  private Queue queue(JsonNode body) throws FakeSqsError {
    String url = text(body, "QueueUrl");
    String name = url.substring(url.lastIndexOf('/') + 1);
    Queue q = queues.get(name);
    if (q == null || !url.endsWith("/" + ACCOUNT + "/" + name)) {
      throw new FakeSqsError(
          "QueueDoesNotExist",
          "AWS.SimpleQueueService.NonExistentQueue",
          400,
          "The specified queue does not exist.");
    }
    return q;
  }

  private static String text(JsonNode body, String field) throws FakeSqsError {
    JsonNode v = body.get(field);
    if (v == null || !v.isTextual() || v.asText().isEmpty()) {
      throw new FakeSqsError(
          "MissingParameter",
          "MissingParameter",
          400,
          "The request must contain the parameter " + field + ".");
    }
    return v.asText();
  }

  private static int intParam(JsonNode body, String field, int absent) throws FakeSqsError {
    JsonNode v = body.get(field);
    if (v == null || v.isNull()) {
      return absent;
    }
    if (!v.isInt()) {
      throw FakeSqsError.invalid("Value " + v + " for parameter " + field + " is invalid.");
    }
    return v.asInt();
  }

  static String md5(String body) {
    try {
      return HexFormat.of()
          .formatHex(
              MessageDigest.getInstance("MD5").digest(body.getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  @Override
  public void close() {
    closed = true;
    synchronized (this) {
      notifyAll();
    }
    if (server != null) {
      server.stop(0);
    }
    threads.shutdownNow();
  }
}
