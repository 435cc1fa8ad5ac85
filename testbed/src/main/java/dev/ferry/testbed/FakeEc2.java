// SPDX-License-Identifier: Apache-2.0
package dev.ferry.testbed;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Pattern;

/**
 * An EC2 endpoint for the three calls that move a secondary private IPv4 address between network
 * interfaces, speaking the Query API as the AWS SDK does (form-encoded POST, version 2016-11-15,
 * XML answers and EC2's error document). It checks requests as EC2 does: a SigV4 {@code
 * Authorization} header (present, not verified), required parameters, known interfaces, addresses
 * held elsewhere ({@code PrivateIpAddressInUse} without {@code AllowReassignment}) and moves across
 * subnets. Like EC2 it is eventually consistent: an assignment is accepted at once but shows in
 * DescribeNetworkInterfaces only after {@link #moveDelay}, once the {@link #onMove} listener (the
 * VPC carrying the address to the new instance) has returned. Accepted moves show in the order they
 * were accepted, as on EC2, even when the delay changed between them: a move shows no earlier than
 * every move accepted before it, so the last accepted assignment is where the address ends up.
 * {@link #awaitSettled} waits until every accepted move shows. Faults and denials can be injected,
 * and every request is logged for tests to assert on.
 */
public final class FakeEc2 implements AutoCloseable {
  public static final String VERSION = "2016-11-15";
  public static final String DESCRIBE = "DescribeNetworkInterfaces";
  public static final String ASSIGN = "AssignPrivateIpAddresses";
  public static final String UNASSIGN = "UnassignPrivateIpAddresses";

  private static final Set<String> ACTIONS = Set.of(DESCRIBE, ASSIGN, UNASSIGN);
  private static final Pattern IPV4 =
      Pattern.compile(
          "((25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)\\.){3}(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)");

  /**
   * An address taking effect on another interface, or leaving one.
   *
   * @param fromInterface the interface that had it, null when none did
   * @param fromInstance the instance that interface is attached to, or null
   * @param toInterface the interface that has it now, null when it was unassigned
   * @param toInstance the instance that interface is attached to, or null
   */
  public record Move(
      String address,
      String fromInterface,
      String fromInstance,
      String toInterface,
      String toInstance) {}

  /** Carries out a move in the test's network, as the VPC would. */
  @FunctionalInterface
  public interface MoveListener {
    void moved(Move move) throws Exception;
  }

  // Guarded by this: the interfaces (their secondaries are the visible view) and the assignments,
  // which lead the visible view by the moves accepted and not shown yet, in the order accepted.
  private final Map<String, FakeEc2Interface> interfaces = new LinkedHashMap<>();
  private final Map<String, String> assigned = new HashMap<>();
  private final Deque<Move> pending = new ArrayDeque<>();
  private long accepted;
  private long shown;
  private final Map<String, Deque<Fault>> faults = new HashMap<>();

  private final Set<String> denied = ConcurrentHashMap.newKeySet();
  private final List<FakeEc2Request> requests = new CopyOnWriteArrayList<>();
  private final List<Throwable> listenerFailures = new CopyOnWriteArrayList<>();
  // One thread: the moves take effect one at a time, off the pending queue's head (showThrough).
  private final ScheduledExecutorService vpc =
      Executors.newSingleThreadScheduledExecutor(
          r -> {
            Thread t = new Thread(r, "fake-ec2-vpc");
            t.setDaemon(true);
            return t;
          });
  private volatile Duration moveDelay = Duration.ZERO;
  private volatile Duration describeLag = Duration.ZERO;
  private volatile MoveListener listener = move -> {};
  private final AtomicBoolean closed = new AtomicBoolean();
  private final InetAddress address;
  private HttpServer server;

  private FakeEc2(InetAddress address) {
    this.address = address;
  }

  /** On loopback. */
  public static FakeEc2 start() throws IOException {
    return start(InetAddress.getLoopbackAddress());
  }

  public static FakeEc2 start(InetAddress address) throws IOException {
    FakeEc2 ec2 = new FakeEc2(address);
    ec2.server = HttpServer.create(new InetSocketAddress(address, 0), 16);
    ec2.server.createContext("/", ec2::answer);
    ec2.server.start();
    return ec2;
  }

  /** For the SDK's endpoint override. */
  public URI endpoint() {
    String host = address.getHostAddress();
    int port = server.getAddress().getPort();
    return URI.create("http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + port);
  }

  /**
   * A network interface, attached to {@code instanceId} at {@code deviceIndex}, or detached when
   * {@code instanceId} is null.
   */
  public synchronized void addInterface(
      String eniId,
      String instanceId,
      String subnetId,
      int deviceIndex,
      String primaryIp,
      Map<String, String> tags) {
    if (interfaces.containsKey(eniId) || holderOf(primaryIp) != null) {
      throw new IllegalArgumentException(eniId + " or " + primaryIp + " exists already");
    }
    interfaces.put(
        eniId, new FakeEc2Interface(eniId, instanceId, subnetId, deviceIndex, primaryIp, tags));
  }

  /** A secondary address the interface has from the start: visible at once, no move announced. */
  public synchronized void addSecondary(String eniId, String address) {
    if (holderOf(address) != null || assigned.containsKey(address)) {
      throw new IllegalArgumentException(address + " is assigned already");
    }
    existing(eniId).secondaries.add(address);
    assigned.put(address, eniId);
  }

  /** The interface's addresses as DescribeNetworkInterfaces shows them now, primary first. */
  public synchronized List<String> addresses(String eniId) {
    return existing(eniId).addresses();
  }

  /** The interface DescribeNetworkInterfaces shows the address on now. */
  public synchronized Optional<String> interfaceOf(String address) {
    return Optional.ofNullable(holderOf(address));
  }

  /** How long an accepted assignment takes to show in DescribeNetworkInterfaces; zero at first. */
  public void moveDelay(Duration delay) {
    moveDelay = delay;
  }

  /**
   * How long after the VPC carries a moved address (the {@link #onMove} listener) it shows in
   * DescribeNetworkInterfaces; zero at first. EC2's eventual consistency runs both ways: clients
   * can reach the new instance while whoever moved the address still waits to see the move. Later
   * moves show after this one, as ever.
   */
  public void describeLag(Duration lag) {
    describeLag = lag;
  }

  /**
   * Called on a background thread when a move takes effect, before DescribeNetworkInterfaces shows
   * it: a caller that waits for Describe finds the network moved. A listener that throws is noted
   * in {@link #listenerFailures()} and the move shows all the same, as a VPC would not wait either.
   */
  public void onMove(MoveListener listener) {
    this.listener = listener;
  }

  /**
   * Waits until every move accepted so far shows in DescribeNetworkInterfaces (its listener has
   * returned), at most {@code timeout}; whether they all do.
   */
  public synchronized boolean awaitSettled(Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    for (long left = timeout.toNanos(); shown < accepted && left > 0; ) {
      TimeUnit.NANOSECONDS.timedWait(this, left);
      left = deadline - System.nanoTime();
    }
    return shown == accepted;
  }

  /** Answers the next {@code times} calls of {@code action} with this error instead. */
  public synchronized void failNext(String action, int times, String code, int httpStatus) {
    if (times < 1) {
      throw new IllegalArgumentException("times must be at least 1, not " + times);
    }
    faults.computeIfAbsent(action, a -> new ArrayDeque<>()).add(new Fault(code, httpStatus, times));
  }

  /** Answers every call of {@code action} with UnauthorizedOperation, as a missing grant would. */
  public void deny(String action) {
    denied.add(action);
  }

  public void allow(String action) {
    denied.remove(action);
  }

  /** Every request received, in order, with how it was answered. */
  public List<FakeEc2Request> requests() {
    return List.copyOf(requests);
  }

  public List<FakeEc2Request> requests(String action) {
    return requests.stream().filter(r -> r.action().equals(action)).toList();
  }

  public List<Throwable> listenerFailures() {
    return List.copyOf(listenerFailures);
  }

  private void answer(HttpExchange x) throws IOException {
    try (x) {
      String requestId = UUID.randomUUID().toString();
      Map<String, String> params = parameters(x);
      String action = params.getOrDefault("Action", "");
      String body;
      int status = 200;
      String error = null;
      try {
        body = handle(x.getRequestHeaders().getFirst("Authorization"), action, params, requestId);
      } catch (FakeEc2Error e) {
        status = e.status();
        error = e.code();
        body = FakeEc2Xml.error(requestId, e.code(), e.getMessage());
      }
      // Logged before answering: a test that asserts once the call returned sees it.
      requests.add(new FakeEc2Request(action, params, status, error));
      byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
      x.getResponseHeaders().add("Content-Type", "text/xml;charset=UTF-8");
      x.getResponseHeaders().add("x-amzn-RequestId", requestId);
      x.sendResponseHeaders(status, bytes.length);
      x.getResponseBody().write(bytes);
    }
  }

  private String handle(
      String authorization, String action, Map<String, String> params, String requestId)
      throws FakeEc2Error {
    if (authorization == null || !authorization.startsWith("AWS4-HMAC-SHA256")) {
      throw new FakeEc2Error(
          "AuthFailure", 401, "AWS was not able to validate the provided access credentials");
    }
    if (!ACTIONS.contains(action)) {
      throw new FakeEc2Error(
          "InvalidAction", 400, "The action " + action + " is not valid for this web service.");
    }
    required(params, "Version");
    Fault fault = nextFault(action);
    if (fault != null) {
      throw FakeEc2Error.injected(action, fault.code, fault.status);
    }
    if (denied.contains(action)) {
      throw FakeEc2Error.denied(action);
    }
    if ("true".equals(params.get("DryRun"))) {
      throw new FakeEc2Error(
          "DryRunOperation", 412, "Request would have succeeded, but DryRun flag is set.");
    }
    return switch (action) {
      case DESCRIBE -> describe(params, requestId);
      case ASSIGN -> assign(params, requestId);
      default -> unassign(params, requestId);
    };
  }

  private synchronized String describe(Map<String, String> params, String requestId)
      throws FakeEc2Error {
    List<String> ids = list(params, "NetworkInterfaceId");
    for (String id : ids) {
      known(id);
    }
    Map<String, List<String>> filters = filters(params);
    List<FakeEc2Interface> selected = new ArrayList<>();
    for (FakeEc2Interface i : interfaces.values()) {
      if (!ids.isEmpty() && !ids.contains(i.id)) {
        continue;
      }
      boolean all = true;
      for (Map.Entry<String, List<String>> f : filters.entrySet()) {
        Boolean match = i.matches(f.getKey(), f.getValue());
        if (match == null) {
          throw FakeEc2Error.badParameter("The filter '" + f.getKey() + "' is invalid");
        }
        all &= match;
      }
      if (all) {
        selected.add(i);
      }
    }
    return FakeEc2Xml.describe(requestId, selected);
  }

  private String assign(Map<String, String> params, String requestId) throws FakeEc2Error {
    String eni = required(params, "NetworkInterfaceId");
    List<String> addresses = addressesParam(params);
    boolean reassign = "true".equals(params.get("AllowReassignment"));
    synchronized (this) {
      FakeEc2Interface to = known(eni);
      for (String a : addresses) {
        String held = assigned.get(a);
        if (held == null || held.equals(eni)) {
          continue;
        }
        FakeEc2Interface from = interfaces.get(held);
        if (!from.subnetId.equals(to.subnetId)) {
          throw FakeEc2Error.badParameter(
              "Address "
                  + a
                  + " does not fall within the address range of "
                  + to.subnetId
                  + " (it is assigned in "
                  + from.subnetId
                  + ")");
        }
        if (!reassign) {
          throw new FakeEc2Error(
              "PrivateIpAddressInUse", 400, "Address " + a + " is in use by " + held);
        }
      }
      for (String a : addresses) {
        String held = assigned.put(a, eni);
        if (!eni.equals(held)) {
          String heldBy = held == null ? null : interfaces.get(held).instanceId;
          schedule(new Move(a, held, heldBy, eni, to.instanceId));
        }
      }
    }
    return FakeEc2Xml.assigned(requestId, eni, addresses);
  }

  private String unassign(Map<String, String> params, String requestId) throws FakeEc2Error {
    String eni = required(params, "NetworkInterfaceId");
    List<String> addresses = addressesParam(params);
    synchronized (this) {
      FakeEc2Interface from = known(eni);
      for (String a : addresses) {
        if (!eni.equals(assigned.get(a))) {
          throw FakeEc2Error.badParameter(
              "Some of the specified addresses are not assigned to interface " + eni);
        }
      }
      for (String a : addresses) {
        assigned.remove(a);
        schedule(new Move(a, eni, from.instanceId, null, null));
      }
    }
    return FakeEc2Xml.unassigned(requestId);
  }

  /** PrivateIpAddress.N: required, IPv4, and never an interface's primary address. */
  private synchronized List<String> addressesParam(Map<String, String> params) throws FakeEc2Error {
    List<String> addresses = list(params, "PrivateIpAddress");
    if (addresses.isEmpty()) {
      if (params.containsKey("SecondaryPrivateIpAddressCount")) {
        throw FakeEc2Error.badParameter(
            "FakeEc2 does not pick addresses: name them with PrivateIpAddress.N");
      }
      throw FakeEc2Error.missing("PrivateIpAddress");
    }
    for (String a : addresses) {
      if (!IPV4.matcher(a).matches()) {
        throw FakeEc2Error.badParameter("Invalid private IPv4 address: " + a);
      }
      for (FakeEc2Interface i : interfaces.values()) {
        if (i.primaryIp.equals(a)) {
          throw FakeEc2Error.badParameter(
              a + " is the primary private IPv4 address of " + i.id + " and cannot be moved");
        }
      }
    }
    return addresses;
  }

  /** Queues an accepted move, in the same lock that accepted it, so the queue has EC2's order. */
  private void schedule(Move move) {
    assert Thread.holdsLock(this);
    pending.add(move);
    long number = ++accepted;
    vpc.schedule(() -> showThrough(number), moveDelay.toNanos(), TimeUnit.NANOSECONDS);
  }

  /**
   * Shows the accepted moves up to the {@code number}th: the earlier ones first, when a shorter
   * delay made this one due before them. Runs on the one VPC thread, the only one taking moves off
   * the queue.
   */
  private void showThrough(long number) {
    while (true) {
      Move next;
      synchronized (this) {
        if (shown >= number) {
          return;
        }
        next = pending.peek();
      }
      takeEffect(next);
    }
  }

  private void takeEffect(Move move) {
    try {
      listener.moved(move);
    } catch (Throwable e) {
      listenerFailures.add(e);
      System.err.println("FakeEc2: the move listener failed on " + move + ": " + e);
    }
    try {
      // On the VPC's one thread: the moves after this one wait for it too, and show in order.
      Thread.sleep(describeLag.toMillis());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt(); // closing: the move shows now
    }
    synchronized (this) {
      interfaces.values().forEach(i -> i.secondaries.remove(move.address()));
      if (move.toInterface() != null) {
        interfaces.get(move.toInterface()).secondaries.add(move.address());
      }
      pending.poll();
      shown++;
      notifyAll();
    }
  }

  private synchronized Fault nextFault(String action) {
    Deque<Fault> queue = faults.get(action);
    Fault f = queue == null ? null : queue.peek();
    if (f != null && --f.left <= 0) {
      queue.poll();
    }
    return f;
  }

  private FakeEc2Interface existing(String eniId) {
    FakeEc2Interface i = interfaces.get(eniId);
    if (i == null) {
      throw new IllegalArgumentException(eniId + " does not exist");
    }
    return i;
  }

  /** An interface a request names: EC2's NotFound when there is none. */
  private FakeEc2Interface known(String eniId) throws FakeEc2Error {
    FakeEc2Interface i = interfaces.get(eniId);
    if (i == null) {
      throw FakeEc2Error.noSuchInterface(eniId);
    }
    return i;
  }

  private String holderOf(String address) {
    return interfaces.values().stream()
        .filter(i -> i.addresses().contains(address))
        .map(i -> i.id)
        .findFirst()
        .orElse(null);
  }

  private static Map<String, String> parameters(HttpExchange x) throws IOException {
    String raw =
        x.getRequestMethod().equals("POST")
            ? new String(x.getRequestBody().readAllBytes(), StandardCharsets.UTF_8)
            : x.getRequestURI().getRawQuery();
    Map<String, String> params = new LinkedHashMap<>();
    if (raw == null || raw.isEmpty()) {
      return params;
    }
    for (String pair : raw.split("&")) {
      int eq = pair.indexOf('=');
      String name = eq < 0 ? pair : pair.substring(0, eq);
      String value = eq < 0 ? "" : pair.substring(eq + 1);
      params.put(
          URLDecoder.decode(name, StandardCharsets.UTF_8),
          URLDecoder.decode(value, StandardCharsets.UTF_8));
    }
    return params;
  }

  private static String required(Map<String, String> params, String name) throws FakeEc2Error {
    String value = params.get(name);
    if (value == null || value.isEmpty()) {
      throw FakeEc2Error.missing(name);
    }
    return value;
  }

  private static List<String> list(Map<String, String> params, String name) {
    List<String> values = new ArrayList<>();
    for (int i = 1; params.containsKey(name + "." + i); i++) {
      values.add(params.get(name + "." + i));
    }
    return values;
  }

  private static Map<String, List<String>> filters(Map<String, String> params) throws FakeEc2Error {
    Map<String, List<String>> filters = new LinkedHashMap<>();
    for (int n = 1; params.containsKey("Filter." + n + ".Name"); n++) {
      List<String> values = list(params, "Filter." + n + ".Value");
      if (values.isEmpty()) {
        throw FakeEc2Error.missing("Filter." + n + ".Value");
      }
      filters.put(params.get("Filter." + n + ".Name"), values);
    }
    return filters;
  }

  private static final class Fault {
    final String code;
    final int status;
    int left;

    Fault(String code, int status, int times) {
      this.code = code;
      this.status = status;
      this.left = times;
    }
  }

  /** Stops listening and drops the moves not yet taken effect; closing twice is harmless. */
  @Override
  public void close() {
    if (closed.compareAndSet(false, true)) {
      server.stop(0);
      vpc.shutdownNow();
    }
  }
}
