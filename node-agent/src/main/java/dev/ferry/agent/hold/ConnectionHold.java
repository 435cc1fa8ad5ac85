// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.hold;

import dev.ferry.agent.repair.SocketState;
import dev.ferry.sys.BpfMap;
import dev.ferry.sys.BpfObject;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.SyscallException;
import dev.ferry.sys.TcAttachment;
import dev.ferry.sys.XdpAttachment;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The eBPF hold on one node interface: a TC program on egress that advertises a zero window for
 * held connections, and an XDP program on ingress that drops, then answers, the client's segments
 * once the socket is gone. The programs stay attached and the maps pinned when the agent exits, so
 * that a restarted agent finds every hold in force ({@link #reopen}).
 *
 * <p>A connection's life here: {@link #freeze} before its socket is exported, {@link #answer} once
 * the socket is closed, {@link #release} when it lives elsewhere or is back.
 */
public final class ConnectionHold implements AutoCloseable {
  private final Path pinDir;
  private final String interfaceName;
  private final NetNamespace namespace;
  private final BpfMap holds;
  private final BpfMap stats;
  private final List<AutoCloseable> owned;

  private ConnectionHold(
      Path pinDir,
      String interfaceName,
      NetNamespace namespace,
      BpfMap holds,
      BpfMap stats,
      List<AutoCloseable> owned) {
    this.pinDir = pinDir;
    this.interfaceName = interfaceName;
    this.namespace = namespace;
    this.holds = holds;
    this.stats = stats;
    this.owned = owned;
  }

  /**
   * Loads both programs, pins their shared maps under {@code pinDir} and attaches them to {@code
   * interfaceName} inside {@code namespace}.
   */
  public static ConnectionHold install(Path pinDir, String interfaceName, NetNamespace namespace)
      throws IOException {
    Files.createDirectories(pinDir);
    List<AutoCloseable> owned = new ArrayList<>();
    try {
      BpfObject tc = load(HoldMaps.TC_OBJECT, pinDir);
      owned.add(tc);
      BpfObject xdp = load(HoldMaps.XDP_OBJECT, pinDir);
      owned.add(xdp);
      int tcFd = tc.programFd(HoldMaps.TC_PROGRAM);
      int xdpFd = xdp.programFd(HoldMaps.XDP_PROGRAM);
      namespace.call(
          () -> {
            TcAttachment.attach(interfaceName, TcAttachment.Direction.EGRESS, tcFd);
            // Generic mode: on veth, native XDP_TX replies are lost unless the peer runs XDP too.
            XdpAttachment.attach(interfaceName, xdpFd, XdpAttachment.Mode.GENERIC);
            return null;
          });
      return new ConnectionHold(
          pinDir, interfaceName, namespace, tc.map(HoldMaps.HOLDS), tc.map(HoldMaps.STATS), owned);
    } catch (IOException | RuntimeException e) {
      for (AutoCloseable c : owned) {
        closeQuietly(c);
      }
      throw e;
    }
  }

  /** Whether a previous agent pinned a hold's maps under {@code pinDir}. */
  public static boolean pinnedUnder(Path pinDir) {
    return Files.exists(pinDir.resolve(HoldMaps.HOLDS));
  }

  /** Finds the hold a previous agent left: programs still attached, maps still pinned. */
  public static ConnectionHold reopen(Path pinDir, String interfaceName, NetNamespace namespace)
      throws IOException {
    BpfMap holds = BpfMap.openPinned(pinDir.resolve(HoldMaps.HOLDS));
    BpfMap stats = BpfMap.openPinned(pinDir.resolve(HoldMaps.STATS));
    return new ConnectionHold(
        pinDir, interfaceName, namespace, holds, stats, new ArrayList<>(List.of(holds, stats)));
  }

  static BpfObject load(String resource, Path pinDir) throws IOException {
    byte[] elf;
    try (InputStream in = ConnectionHold.class.getClassLoader().getResourceAsStream(resource)) {
      if (in == null) {
        throw new IOException(
            resource + " is missing from the agent's class path: build bpf/ first (make -C bpf)");
      }
      elf = in.readAllBytes();
    }
    BpfObject object = BpfObject.open(elf, resource);
    try {
      object.pinMapsUnder(pinDir);
      object.load();
      return object;
    } catch (SyscallException e) {
      object.close();
      throw e;
    }
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
   * On the target node, before the restored socket leaves repair mode: its window probe (sequence
   * snd_una - 1, which a peer ignores but for a duplicate ACK) is rewritten to carry snd_nxt, so
   * that the client takes the real window from it and leaves zero-window persist at once instead of
   * at its next, backed-off, probe.
   */
  public void wake(SocketState state, long deadlineNanos) throws SyscallException {
    HoldKey key = new HoldKey(state.local(), state.remote());
    int sndUna = state.sendQueueSeq();
    int sndNxt = sndUna + state.sendUnacked().length;
    startCounting(key);
    holds.update(
        key.encode(),
        new HoldEntry(HoldMaps.F_WAKE, 0, 0, sndUna - 1, sndNxt, 0, deadlineNanos).encode(),
        BpfMap.BPF_ANY);
  }

  /** Gives the connection zeroed counters, unless it has some from an earlier step. */
  private void startCounting(HoldKey key) throws SyscallException {
    stats.putIfAbsent(key.encode(), HoldStats.ZERO.encode());
  }

  /** Ends the hold of one connection. */
  public void release(HoldKey key) throws SyscallException {
    holds.delete(key.encode());
    stats.delete(key.encode());
  }

  public Optional<HoldStats> stats(HoldKey key) throws SyscallException {
    return stats.lookup(key.encode(), HoldStats.SIZE).map(HoldStats::decode);
  }

  public Optional<HoldEntry> entry(HoldKey key) throws SyscallException {
    return holds.lookup(key.encode(), HoldEntry.SIZE).map(HoldEntry::decode);
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
   * Detaches both programs and removes the pinned maps: nothing of the hold remains. Holds in force
   * end with it.
   */
  public void uninstall() throws SyscallException {
    namespace.call(
        () -> {
          TcAttachment.existing(interfaceName, TcAttachment.Direction.EGRESS).detach();
          XdpAttachment.existing(interfaceName, XdpAttachment.Mode.GENERIC).detach();
          return null;
        });
    close();
    try {
      for (String map : List.of(HoldMaps.HOLDS, HoldMaps.STATS, HoldMaps.COUNTERS)) {
        Files.deleteIfExists(pinDir.resolve(map));
      }
      Files.deleteIfExists(pinDir);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot remove pinned maps under " + pinDir, e);
    }
  }

  /** Lets go of this process's handles; attached programs and pinned maps stay. */
  @Override
  public void close() {
    for (AutoCloseable c : owned) {
      closeQuietly(c);
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
