// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.hold;

import dev.ferry.agent.repair.ClientAck;
import dev.ferry.agent.repair.SocketState;
import dev.ferry.sys.BpfMap;
import dev.ferry.sys.BpfObject;
import dev.ferry.sys.BpfRingBuffer;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcAttachment;
import dev.ferry.sys.XdpAttachment;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The eBPF hold on the node interfaces that carry service addresses: a TC program on egress that
 * advertises a zero window for held connections, and an XDP program on ingress that drops, then
 * answers, the client's segments once the socket is gone. One program of each kind serves every
 * interface, through the same maps: a connection is held on whichever interface its segments cross,
 * the uplink or a separate interface for service addresses (docs/aws.md's {@code no_manage} ENI).
 * The programs stay attached and the maps pinned when the agent exits, so that a restarted agent
 * finds every hold in force ({@link #reopen}).
 *
 * <p>A connection's life here: {@link #freeze} before its socket is exported, {@link #answer} once
 * the socket is closed, {@link #release} when it lives elsewhere or is back. On the node it moves
 * to: {@link #stage} once its socket is restored, {@link #wake} once that socket has taken what was
 * kept of the client's, {@link #release} once it is live. Whatever payload the client sends while
 * its segments are dropped, the XDP program keeps in a ring for {@link #takeKeptBytes}.
 */
public final class ConnectionHold implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(ConnectionHold.class.getName());

  private final Path pinDir;
  private final List<String> interfaceNames;
  private final NetNamespace namespace;
  private final BpfMap holds;
  private final BpfMap stats;

  /** Both null when reopened over an older agent's hold that could not be upgraded. */
  private final BpfRingBuffer kept;

  private final BpfMap keptCounts;

  /** Null when reopened over an older agent's hold that could not be upgraded. */
  private final BpfMap acks;

  private final List<AutoCloseable> owned;

  private ConnectionHold(
      Path pinDir,
      List<String> interfaceNames,
      NetNamespace namespace,
      BpfMap holds,
      BpfMap stats,
      BpfRingBuffer kept,
      BpfMap keptCounts,
      BpfMap acks,
      List<AutoCloseable> owned) {
    this.pinDir = pinDir;
    this.interfaceNames = List.copyOf(interfaceNames);
    this.namespace = namespace;
    this.holds = holds;
    this.stats = stats;
    this.kept = kept;
    this.keptCounts = keptCounts;
    this.acks = acks;
    this.owned = owned;
  }

  /** {@link #install(Path, List, NetNamespace)} on one interface. */
  public static ConnectionHold install(Path pinDir, String interfaceName, NetNamespace namespace)
      throws IOException {
    return install(pinDir, List.of(interfaceName), namespace);
  }

  /**
   * Loads both programs, pins their shared maps under {@code pinDir} and attaches them to each of
   * {@code interfaceNames} inside {@code namespace}. On a failure nothing stays attached.
   */
  public static ConnectionHold install(
      Path pinDir, List<String> interfaceNames, NetNamespace namespace) throws IOException {
    requireSome(interfaceNames);
    Files.createDirectories(pinDir);
    List<AutoCloseable> owned = new ArrayList<>();
    try {
      attach(pinDir, interfaceNames, namespace, owned);
      BpfObject tc = (BpfObject) owned.get(0);
      BpfRingBuffer kept = BpfRingBuffer.open(tc.map(HoldMaps.KEPT));
      owned.add(kept);
      return new ConnectionHold(
          pinDir,
          interfaceNames,
          namespace,
          tc.map(HoldMaps.HOLDS),
          tc.map(HoldMaps.STATS),
          kept,
          tc.map(HoldMaps.KEPT_COUNTS),
          tc.map(HoldMaps.ACKS),
          owned);
    } catch (IOException | RuntimeException e) {
      for (AutoCloseable c : owned) {
        closeQuietly(c);
      }
      throw e;
    }
  }

  /**
   * Loads both programs (their maps pinned under {@code pinDir}, or the pinned ones reused) into
   * {@code owned}, TC first, and attaches them to each interface; detaches from those done so far
   * when one fails.
   */
  private static void attach(
      Path pinDir, List<String> interfaceNames, NetNamespace namespace, List<AutoCloseable> owned)
      throws IOException {
    BpfObject tc = load(HoldMaps.TC_OBJECT, pinDir);
    owned.add(tc);
    BpfObject xdp = load(HoldMaps.XDP_OBJECT, pinDir);
    owned.add(xdp);
    int tcFd = tc.programFd(HoldMaps.TC_PROGRAM);
    int xdpFd = xdp.programFd(HoldMaps.XDP_PROGRAM);
    List<String> done = new ArrayList<>();
    try {
      for (String name : interfaceNames) {
        namespace.call(
            () -> {
              TcAttachment.attach(name, TcAttachment.Direction.EGRESS, tcFd);
              // Generic mode: on veth, native XDP_TX replies are lost unless the peer runs XDP.
              XdpAttachment.attach(name, xdpFd, XdpAttachment.Mode.GENERIC);
              return null;
            });
        done.add(name);
      }
    } catch (IOException | RuntimeException e) {
      for (String name : done) {
        try {
          detach(name, namespace);
        } catch (SyscallException | RuntimeException suppressed) {
          e.addSuppressed(suppressed);
        }
      }
      throw e;
    }
  }

  /** Whether a previous agent pinned a hold's maps under {@code pinDir}. */
  public static boolean pinnedUnder(Path pinDir) {
    return Files.exists(pinDir.resolve(HoldMaps.HOLDS));
  }

  /** {@link #reopen(Path, List, NetNamespace)} on one interface. */
  public static ConnectionHold reopen(Path pinDir, String interfaceName, NetNamespace namespace)
      throws IOException {
    return reopen(pinDir, List.of(interfaceName), namespace);
  }

  /**
   * Finds the hold a previous agent left: programs still attached, maps still pinned. An interface
   * of {@code interfaceNames} without them (one added to the setting since) gets them, loaded again
   * over the pinned maps, so that it shares every hold in force. When that agent predates the ring
   * of kept payload, its programs are replaced by this build's (see {@link #upgrade}); where that
   * fails the hold works as before and keeps nothing.
   */
  public static ConnectionHold reopen(
      Path pinDir, List<String> interfaceNames, NetNamespace namespace) throws IOException {
    requireSome(interfaceNames);
    List<AutoCloseable> owned = new ArrayList<>();
    try {
      BpfMap holds = BpfMap.openPinned(pinDir.resolve(HoldMaps.HOLDS));
      owned.add(holds);
      BpfMap stats = BpfMap.openPinned(pinDir.resolve(HoldMaps.STATS));
      owned.add(stats);
      // Programs that pinned the ring and the acknowledgments are this build's or as good.
      boolean current =
          Files.exists(pinDir.resolve(HoldMaps.KEPT))
              && Files.exists(pinDir.resolve(HoldMaps.ACKS));
      List<String> bare = new ArrayList<>();
      List<String> outdated = new ArrayList<>();
      for (String name : interfaceNames) {
        if (!attachedTo(name, namespace)) {
          bare.add(name);
        } else if (!current) {
          outdated.add(name);
        }
      }
      if (!bare.isEmpty()) {
        List<AutoCloseable> programs = new ArrayList<>();
        try {
          attach(pinDir, bare, namespace, programs);
        } finally {
          // Attached programs stay with their interfaces; the objects are not needed after.
          programs.forEach(ConnectionHold::closeQuietly);
        }
      }
      if (!outdated.isEmpty()) {
        upgrade(pinDir, outdated, namespace);
      }
      BpfRingBuffer kept = null;
      BpfMap keptCounts = null;
      try {
        // The ring reads through its own mapping: the descriptor is needed only to map it.
        try (BpfMap ring = BpfMap.openPinned(pinDir.resolve(HoldMaps.KEPT))) {
          kept = BpfRingBuffer.open(ring);
        }
        keptCounts = BpfMap.openPinned(pinDir.resolve(HoldMaps.KEPT_COUNTS));
        owned.add(kept);
        owned.add(keptCounts);
      } catch (SyscallException e) {
        if (kept != null) {
          kept.close();
          kept = null;
        }
        LOG.log(
            Level.WARNING,
            e,
            () ->
                "no ring of kept payload under "
                    + pinDir
                    + ": held clients' payload is dropped, not kept, and they send it again"
                    + " after the resume");
      }
      BpfMap acks = null;
      try {
        acks = BpfMap.openPinned(pinDir.resolve(HoldMaps.ACKS));
        owned.add(acks);
      } catch (SyscallException e) {
        LOG.log(
            Level.WARNING,
            e,
            () ->
                "no map of held clients' acknowledgments under "
                    + pinDir
                    + ": a moved socket sends again only once its client answers the resume");
      }
      return new ConnectionHold(
          pinDir, interfaceNames, namespace, holds, stats, kept, keptCounts, acks, owned);
    } catch (IOException | RuntimeException e) {
      owned.forEach(ConnectionHold::closeQuietly);
      throw e;
    }
  }

  /**
   * Replaces the programs an older agent left on {@code interfaceNames}, which keep no payload or
   * note no acknowledgment, with this build's, loaded over the same pinned maps (which pins the
   * maps they lacked): holds in force carry on across the swap, since TC replaces its filter and
   * XDP its program in one step. Best effort, so that the agent starts whatever happens: an
   * interface where it fails keeps the older programs, which hold as before and keep nothing.
   */
  private static void upgrade(Path pinDir, List<String> interfaceNames, NetNamespace namespace) {
    try (BpfObject tc = load(HoldMaps.TC_OBJECT, pinDir);
        BpfObject xdp = load(HoldMaps.XDP_OBJECT, pinDir)) {
      int tcFd = tc.programFd(HoldMaps.TC_PROGRAM);
      int xdpFd = xdp.programFd(HoldMaps.XDP_PROGRAM);
      for (String name : interfaceNames) {
        try {
          namespace.call(
              () -> {
                TcAttachment.attach(name, TcAttachment.Direction.EGRESS, tcFd);
                XdpAttachment.attach(name, xdpFd, XdpAttachment.Mode.GENERIC);
                return null;
              });
          LOG.info(
              () ->
                  "hold programs on "
                      + name
                      + " replaced: they now keep held payload and note acknowledgments");
        } catch (SyscallException | RuntimeException e) {
          LOG.log(
              Level.WARNING,
              e,
              () -> "older hold programs stay on " + name + ", keeping no payload");
        }
      }
    } catch (IOException | RuntimeException e) {
      LOG.log(
          Level.WARNING,
          e,
          () -> "cannot load this build's hold programs over the maps under " + pinDir);
    }
  }

  /** Whether both of the hold's programs are on {@code name}. */
  private static boolean attachedTo(String name, NetNamespace namespace) throws SyscallException {
    return namespace.call(
        () ->
            TcAttachment.isAttached(name, TcAttachment.Direction.EGRESS)
                && XdpAttachment.attachedProgramId(name, XdpAttachment.Mode.GENERIC) != 0);
  }

  private static void detach(String name, NetNamespace namespace) throws SyscallException {
    namespace.call(
        () -> {
          TcAttachment.existing(name, TcAttachment.Direction.EGRESS).detach();
          XdpAttachment.existing(name, XdpAttachment.Mode.GENERIC).detach();
          return null;
        });
  }

  private static void requireSome(List<String> interfaceNames) {
    if (interfaceNames.isEmpty()
        || interfaceNames.stream().distinct().count() != interfaceNames.size()) {
      throw new IllegalArgumentException(
          "the hold needs one or more interfaces, each named once: " + interfaceNames);
    }
  }

  /** The interfaces the hold's programs are attached to. */
  public List<String> interfaces() {
    return interfaceNames;
  }

  static BpfObject load(String resource, Path pinDir) throws IOException {
    return BpfObject.loadResource(ConnectionHold.class, resource, pinDir);
  }

  /**
   * Holds a live connection before its socket is read: the client is shown a zero window and its
   * segments are dropped, so that nothing changes the socket while it is exported.
   */
  public void freeze(HoldKey key, long deadlineNanos) throws SyscallException {
    startCounting(key);
    holds.update(
        key.encode(),
        new HoldEntry(HoldMaps.F_ZERO_WINDOW | HoldMaps.F_DROP, 0, 0, 0, 0, 0, deadlineNanos)
            .encode(),
        BpfMap.BPF_ANY);
  }

  /**
   * Answers for a connection whose socket is gone, with the sequence numbers and timestamp clock of
   * its exported state.
   *
   * @param exportedAtNanos System.nanoTime() (CLOCK_MONOTONIC) just after the export
   */
  public void answer(SocketState state, long exportedAtNanos, long deadlineNanos)
      throws SyscallException {
    int flags =
        HoldMaps.F_ZERO_WINDOW
            | HoldMaps.F_ANSWER
            | (state.timestamps() ? HoldMaps.F_TIMESTAMPS : 0);
    HoldKey key = new HoldKey(state.local(), state.remote());
    startCounting(key);
    holds.update(
        key.encode(),
        new HoldEntry(
                flags, state.recvSeq(), state.timestamp(), 0, 0, exportedAtNanos, deadlineNanos)
            .encode(),
        BpfMap.BPF_ANY);
  }

  /**
   * On the target node, once the socket is restored: the client's segments stop here (hold_xdp
   * drops them, and keeps their payload in the ring, as on the source), so that nothing of the
   * client's reaches the staged socket until {@link #wake} (see {@code StagedClient}); and, as
   * {@link #wake} does, the restored socket's window probe will be made acceptable.
   */
  public void stage(SocketState state, long deadlineNanos) throws SyscallException {
    put(state, HoldMaps.F_WAKE | HoldMaps.F_DROP, deadlineNanos);
  }

  /**
   * On the target node, before the restored socket leaves repair mode: its window probe (sequence
   * snd_una - 1, which a peer ignores but for a duplicate ACK) is rewritten to carry snd_nxt, so
   * that the client takes the real window from it and leaves zero-window persist at once instead of
   * at its next, backed-off, probe.
   */
  public void wake(SocketState state, long deadlineNanos) throws SyscallException {
    put(state, HoldMaps.F_WAKE, deadlineNanos);
  }

  private void put(SocketState state, int flags, long deadlineNanos) throws SyscallException {
    HoldKey key = new HoldKey(state.local(), state.remote());
    int sndUna = state.sendQueueSeq();
    int sndNxt = sndUna + state.sendUnacked().length;
    startCounting(key);
    holds.update(
        key.encode(),
        new HoldEntry(flags, 0, 0, sndUna - 1, sndNxt, 0, deadlineNanos).encode(),
        BpfMap.BPF_ANY);
  }

  /**
   * Gives the connection zeroed counters and an empty acknowledgment record, unless it has them
   * from an earlier step.
   */
  private void startCounting(HoldKey key) throws SyscallException {
    stats.putIfAbsent(key.encode(), HoldStats.ZERO.encode());
    if (acks != null) {
      acks.putIfAbsent(key.encode(), new byte[HoldMaps.ACK_SIZE]);
    }
  }

  /** Ends the hold of one connection. */
  public void release(HoldKey key) throws SyscallException {
    holds.delete(key.encode());
    stats.delete(key.encode());
    if (acks != null) {
      acks.delete(key.encode());
    }
  }

  /**
   * The latest acknowledgment the held client sent, as hold_xdp noted it while the connection was
   * held here; empty when it sent none, or where the programs note none (an older agent's).
   */
  public Optional<ClientAck> clientAck(HoldKey key) throws SyscallException {
    if (acks == null) {
      return Optional.empty();
    }
    return acks.lookup(key.encode(), HoldMaps.ACK_SIZE)
        .map(raw -> ByteBuffer.wrap(raw).order(ByteOrder.nativeOrder()))
        .filter(b -> b.getInt(12) != 0)
        .map(b -> new ClientAck(b.getInt(0), b.getInt(8), b.getInt(4)));
  }

  public Optional<HoldStats> stats(HoldKey key) throws SyscallException {
    return stats.lookup(key.encode(), HoldStats.SIZE).map(HoldStats::decode);
  }

  public Optional<HoldEntry> entry(HoldKey key) throws SyscallException {
    return holds.lookup(key.encode(), HoldEntry.SIZE).map(HoldEntry::decode);
  }

  /**
   * Drains the ring of kept payload now, without waiting: calls {@code each} once per record, for
   * every held connection at once, in arrival order (retransmissions and overlaps included), and
   * returns how many there were. A record is handed over once; the next call gets only newer ones.
   * Without a ring (see {@link #keepsBytes}) there is never anything.
   */
  public synchronized int takeKeptBytes(Consumer<KeptBytes> each) throws SyscallException {
    if (kept == null) {
      return 0;
    }
    return kept.consume(record -> each.accept(KeptBytes.decode(record)));
  }

  /**
   * Whether the XDP program keeps held payload: false only when reopened over an older agent's hold
   * whose programs could not be replaced.
   */
  public boolean keepsBytes() {
    return kept != null;
  }

  /**
   * Segments kept, and segments whose payload could not be (ring full, too long), since the maps
   * were first pinned; zeros without a ring.
   */
  public KeptBytes.Counts keptCounts() throws SyscallException {
    if (keptCounts == null) {
      return KeptBytes.Counts.NONE;
    }
    return new KeptBytes.Counts(
        keptCounts.sumPerCpu(HoldMaps.CNT_KEPT), keptCounts.sumPerCpu(HoldMaps.CNT_NOT_KEPT));
  }

  /** Every connection held now. */
  public List<HoldKey> held() throws SyscallException {
    List<HoldKey> out = new ArrayList<>();
    for (byte[] raw : holds.keys(HoldKey.SIZE)) {
      out.add(HoldKey.decode(raw));
    }
    return out;
  }

  /**
   * Detaches both programs from every interface and removes the pinned maps: nothing of the hold
   * remains. Holds in force end with it. An interface that fails does not keep the others attached:
   * the first failure is thrown after all were tried, and the maps then stay pinned.
   */
  public void uninstall() throws SyscallException {
    SyscallException failed = null;
    for (String name : interfaceNames) {
      try {
        detach(name, namespace);
      } catch (SyscallException e) {
        if (failed == null) {
          failed = e;
        } else {
          failed.addSuppressed(e);
        }
      }
    }
    if (failed != null) {
      throw failed;
    }
    close();
    try {
      for (String map : HoldMaps.PINNED) {
        Files.deleteIfExists(pinDir.resolve(map));
      }
      Files.deleteIfExists(pinDir);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot remove pinned maps under " + pinDir, e);
    }
  }

  /**
   * Lets go of this process's handles, the ring's mapping before the objects it was opened from;
   * attached programs and pinned maps stay, and so do records not yet taken.
   */
  @Override
  public synchronized void close() {
    for (int i = owned.size() - 1; i >= 0; i--) {
      closeQuietly(owned.get(i));
    }
    owned.clear();
  }

  private static void closeQuietly(AutoCloseable c) {
    try {
      c.close();
    } catch (Exception ignored) {
      // Closing descriptors: nothing useful to do about a failure.
    }
  }
}
