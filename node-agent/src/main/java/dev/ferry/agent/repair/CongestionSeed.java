// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.repair;

import dev.ferry.sys.BpfLink;
import dev.ferry.sys.BpfMap;
import dev.ferry.sys.BpfObject;
import dev.ferry.sys.Errno;
import dev.ferry.sys.SocketOptions;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcpSocket;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Optional;
import java.util.logging.Logger;

/**
 * The congestion control of {@code bpf/congestion_seed.bpf.c}, registered in this node's kernel for
 * as long as the agent runs: it gives a restored socket its original's cwnd and ssthresh ({@link
 * CongestionState}), which TCP_REPAIR cannot set. Without it a moved bulk stream starts again from
 * 10 segments and needs several round trips to get back to its speed.
 *
 * <p>The restore {@link #arm}s the socket before its repair-mode {@code connect}, which runs the
 * congestion control's init after setting the initial window, and then {@link #switchBack}s it to
 * the algorithm it had; the switch leaves cwnd and ssthresh alone.
 */
public final class CongestionSeed implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(CongestionSeed.class.getName());

  static final String OBJECT = "bpf/congestion_seed.bpf.o";
  static final String SEEDS = "ferry_seeds";

  /** ferry_seed_0 .. ferry_seed_3: the struct_ops maps, each registering a name of its own. */
  static final int SLOTS = 4;

  private final BpfObject object;
  private final BpfLink registration;
  private final BpfMap seeds;

  private CongestionSeed(BpfObject object, BpfLink registration, BpfMap seeds) {
    this.object = object;
    this.registration = registration;
    this.seeds = seeds;
  }

  /**
   * Registers the first free name; empty where this kernel cannot (no struct_ops, no BTF, every
   * name taken), with the reason logged: connections then move with the kernel's initial window.
   */
  public static Optional<CongestionSeed> register() {
    try {
      return Optional.of(registerOrFail());
    } catch (IOException e) {
      LOG.warning(
          "congestion state is not carried (moved connections start from the initial window): "
              + e.getMessage());
      return Optional.empty();
    }
  }

  static CongestionSeed registerOrFail() throws IOException {
    BpfObject object = BpfObject.openResource(CongestionSeed.class, OBJECT);
    try {
      object.registerStructOpsThroughLinks();
      object.load();
      BpfLink registration = registerFreeSlot(object);
      CongestionSeed seed = new CongestionSeed(object, registration, object.map(SEEDS));
      LOG.info(() -> "congestion state is carried: registered " + registration.name());
      return seed;
    } catch (SyscallException | RuntimeException e) {
      object.close();
      throw e;
    }
  }

  private static BpfLink registerFreeSlot(BpfObject object) throws SyscallException {
    SyscallException taken = null;
    for (int slot = 0; slot < SLOTS; slot++) {
      try {
        return object.registerStructOps("ferry_seed_" + slot);
      } catch (SyscallException e) {
        if (e.errno() != Errno.EEXIST) {
          throw e;
        }
        taken = e;
      }
    }
    throw new SyscallException(
        "every congestion control name ferry_seed_0-" + (SLOTS - 1) + " is taken on this kernel",
        taken.errno());
  }

  /** The congestion control's name, as TCP_CONGESTION takes it. */
  public String algorithm() {
    return registration.name();
  }

  /**
   * Before {@code connect}, on a socket in repair mode: stores the seed for the socket ({@link
   * CongestionState#seedCwnd}) and makes this its congestion control. Returns the algorithm the
   * socket had, for {@link #switchBack}, or empty if the seed could not be stored (logged; the
   * socket keeps the initial window, as without a seed).
   */
  Optional<String> arm(TcpSocket socket, SocketState socketState) throws SyscallException {
    CongestionState state = socketState.congestion().orElseThrow();
    String connection = socketState.connection();
    int cwnd = state.seedCwnd(inFlightSegments(socketState));
    SocketOptions options = new SocketOptions(socket);
    String algorithm = options.congestion();
    try {
      seeds.update(
          key(socket), value(cwnd, state.ssthresh(), state.deliveryRate()), BpfMap.BPF_ANY);
    } catch (SyscallException e) {
      LOG.warning(connection + ": its congestion state is not carried: " + e.getMessage());
      return Optional.empty();
    }
    // Closed, the socket takes the name without initialising anything: connect() will.
    options.setCongestion(algorithm());
    return Optional.of(algorithm);
  }

  /**
   * After {@code connect}: the socket goes back to its own algorithm, keeping the seeded window.
   */
  void switchBack(TcpSocket socket, String algorithm) throws SyscallException {
    new SocketOptions(socket).setCongestion(algorithm);
  }

  /** The segments the restored socket counts sent and unacknowledged: its unacked queue in MSS. */
  static int inFlightSegments(SocketState s) {
    // The payload of a full segment: the peer's MSS less the timestamp option's 12 bytes.
    int payload = Math.max(1, s.mssClamp() - (s.timestamps() ? 12 : 0));
    return (int) ((s.sendUnacked().length + (long) payload - 1) / payload);
  }

  /** struct seed of the BPF program: cwnd, ssthresh, pacing rate, host order. */
  private static byte[] value(int cwnd, int ssthresh, long pacingRate) {
    return ByteBuffer.allocate(16)
        .order(ByteOrder.nativeOrder())
        .putInt(cwnd)
        .putInt(ssthresh)
        .putLong(pacingRate)
        .array();
  }

  /** A socket storage map is keyed by the socket's descriptor in the caller's table. */
  private static byte[] key(TcpSocket socket) {
    return ByteBuffer.allocate(4).order(ByteOrder.nativeOrder()).putInt(socket.fd()).array();
  }

  /** Unregisters the name; sockets that still use it (none, once switched back) keep working. */
  @Override
  public void close() {
    registration.close();
    object.close();
  }
}
