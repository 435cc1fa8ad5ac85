// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.handoff;

import dev.ferry.sdk.wire.Connection;
import dev.ferry.sdk.wire.FrameChannel;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcpSocket;
import dev.ferry.sys.UnixSocket;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Collection;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Logger;

/**
 * The agent's end of the handoff protocol (docs/handoff-protocol.md): applications connect to its
 * Unix socket, register the ports they serve, and hand over or take over connections when the agent
 * asks. One misbehaving application gets errors; the others are not affected.
 */
public final class HandoffServer implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(HandoffServer.class.getName());

  private final UnixSocket listener;
  private final Duration answerTimeout;
  private final Duration stateTimeout;
  private final long maxStateBytes;
  private final Map<Integer, Session> owners = new ConcurrentHashMap<>();
  private final Set<Session> sessions = ConcurrentHashMap.newKeySet();
  private final Set<Long> expired = ConcurrentHashMap.newKeySet();
  private final AtomicLong requestIds = new AtomicLong();
  private final Thread acceptor;
  private volatile boolean closed;

  private HandoffServer(
      UnixSocket listener, Duration answerTimeout, Duration stateTimeout, long maxStateBytes) {
    this.listener = listener;
    this.answerTimeout = answerTimeout;
    this.stateTimeout = stateTimeout;
    this.maxStateBytes = maxStateBytes;
    this.acceptor = new Thread(this::acceptLoop, "handoff-accept");
    acceptor.setDaemon(true);
  }

  /**
   * Listens at {@code path}.
   *
   * @param answerTimeout how long an application has to start answering a freeze or a takeover
   * @param stateTimeout how long, after that, its state may take to arrive
   * @param maxStateBytes the largest state blob accepted for one connection
   */
  public static HandoffServer start(
      Path path, Duration answerTimeout, Duration stateTimeout, long maxStateBytes)
      throws SyscallException {
    HandoffServer server =
        new HandoffServer(UnixSocket.listen(path, 64), answerTimeout, stateTimeout, maxStateBytes);
    server.acceptor.start();
    return server;
  }

  private void acceptLoop() {
    while (!closed) {
      try {
        UnixSocket client = listener.accept();
        Session session = new Session(new FrameChannel(client), client.peerCredentials(), this);
        sessions.add(session);
        Thread t = new Thread(session, "handoff-" + session.peer().pid());
        t.setDaemon(true);
        t.start();
      } catch (SyscallException e) {
        if (!closed) {
          LOG.warning("accept on the handoff socket failed: " + e.getMessage());
        }
      }
    }
  }

  /**
   * Asks the application serving {@code c}'s local port for the connection: its socket and state.
   * Any answer but {@link HandoffOutcome.Frozen} leaves the connection where it is.
   */
  public HandoffOutcome freeze(Connection c) throws SyscallException, InterruptedException {
    Session owner = owners.get(c.local().getPort());
    if (owner == null) {
      return new HandoffOutcome.NoApplication(c.local().getPort());
    }
    long id = requestIds.incrementAndGet();
    return await(owner, id, owner.requestFreeze(id, c), "freeze of " + c);
  }

  /**
   * Hands a restored socket (still in repair mode) and its state to the application serving the
   * port. On {@link HandoffOutcome.Taken}, resume the socket, then call {@link Session#resumed}.
   */
  public HandoffOutcome takeover(Connection c, TcpSocket restored, byte[] state, long podNetns)
      throws SyscallException, InterruptedException {
    Session owner = owners.get(c.local().getPort());
    if (owner == null) {
      return new HandoffOutcome.NoApplication(c.local().getPort());
    }
    // The port is the node's, the connection the pod's: only an application inside the pod may
    // take it and its state, whoever else registered the port first.
    long pid = owner.peer().pid();
    if (NetNamespace.inodeOfProcess(pid) != podNetns) {
      return new HandoffOutcome.Declined(
          "port "
              + c.local().getPort()
              + " is registered by "
              + owner
              + ", which is not in the pod's network namespace: only the pod's own application"
              + " may take its connections over");
    }
    long id = requestIds.incrementAndGet();
    return await(owner, id, owner.requestTakeover(id, c, restored, state), "takeover of " + c);
  }

  private HandoffOutcome await(Session owner, long id, Session.Request request, String what)
      throws InterruptedException {
    Duration limit = answerTimeout;
    try {
      request.started().get(limit.toMillis(), TimeUnit.MILLISECONDS);
      limit = stateTimeout;
      return request.answer().get(limit.toMillis(), TimeUnit.MILLISECONDS);
    } catch (TimeoutException e) {
      expired.add(id);
      owner.abandon(id);
      return new HandoffOutcome.NotAnswered(
          owner
              + (limit == answerTimeout
                  ? " did not answer the "
                  : " did not finish sending its state for the ")
              + what
              + " within "
              + limit.toMillis()
              + " ms");
    } catch (ExecutionException e) {
      throw new IllegalStateException(e.getCause());
    }
  }

  /** Gives {@code port} to {@code session} unless another session has it; returns the owner. */
  Session register(int port, Session session) {
    return owners.computeIfAbsent(port, p -> session);
  }

  void unregister(Session session, Collection<Integer> ports) {
    ports.forEach(port -> owners.remove(port, session));
    sessions.remove(session);
  }

  boolean expired(long id) {
    return expired.contains(id);
  }

  long maxStateBytes() {
    return maxStateBytes;
  }

  /** The ports registered now, and by whom. */
  public Map<Integer, Session> registrations() {
    return Map.copyOf(owners);
  }

  @Override
  public void close() {
    closed = true;
    listener.shutdown();
    listener.close();
    sessions.forEach(Session::shutdown);
  }
}
