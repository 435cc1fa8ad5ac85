// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.function.Consumer;
import jnr.ffi.Pointer;

/**
 * A BPF ring buffer map (BPF_MAP_TYPE_RINGBUF) read through libbpf's ring_buffer: each {@link
 * #consume} takes every record the programs have committed so far, without waiting. The map's
 * descriptor is needed only by {@link #open}: reading goes through the ring's own memory mapping,
 * which keeps the map alive. One reader at a time: calls are serialized.
 */
public final class BpfRingBuffer implements AutoCloseable {
  private final String name;

  /** Held for libbpf, which calls it until ring_buffer__free. */
  private final Native.RingBufferSample sample = this::onRecord;

  private Pointer ring;
  private byte[] copy = new byte[4096];
  private Consumer<ByteBuffer> each;
  private Throwable thrown;

  private BpfRingBuffer(String name) {
    this.name = name;
  }

  /** Maps the ring buffer {@code map} for reading. */
  public static BpfRingBuffer open(BpfMap map) throws SyscallException {
    BpfRingBuffer r = new BpfRingBuffer(map.name());
    Pointer ring = Native.Bpf.LIB.ring_buffer__new(map.fd(), r.sample, null, null);
    if (ring == null) {
      throw new SyscallException("ring_buffer__new(" + map.name() + ")", Native.errno());
    }
    r.ring = ring;
    return r;
  }

  /**
   * Calls {@code record} once per record available now, in the order the programs committed them,
   * and returns how many there were. The buffer holds the record's bytes from position 0 to its
   * limit, in native byte order (records are C structs); it is valid only during the call. When
   * {@code record} throws, the records before it and the one it threw on are consumed, the rest
   * stay for the next call, and the exception propagates.
   */
  public synchronized int consume(Consumer<ByteBuffer> record) throws SyscallException {
    if (ring == null) {
      throw new IllegalStateException("ring buffer " + name + " is closed");
    }
    each = record;
    thrown = null;
    int rc;
    try {
      rc = Native.Bpf.LIB.ring_buffer__consume(ring);
    } finally {
      each = null;
    }
    if (thrown instanceof RuntimeException e) {
      throw e;
    }
    if (thrown instanceof Error e) {
      throw e;
    }
    return Bpf.check(rc, () -> "ring_buffer__consume(" + name + ")");
  }

  /**
   * libbpf's callback, on the thread inside {@link #consume}. An exception must not cross the
   * native frames: it is kept, and the negative return stops libbpf.
   */
  private int onRecord(Pointer ctx, Pointer data, long size) {
    try {
      int n = Math.toIntExact(size);
      if (copy.length < n) {
        copy = new byte[Math.max(n, copy.length * 2)];
      }
      data.get(0, copy, 0, n);
      each.accept(ByteBuffer.wrap(copy, 0, n).slice().order(ByteOrder.nativeOrder()));
      return 0;
    } catch (RuntimeException | Error e) {
      thrown = e;
      return -1;
    }
  }

  /** Unmaps the ring; records not consumed stay in the map for the next reader. */
  @Override
  public synchronized void close() {
    if (ring != null) {
      Native.Bpf.LIB.ring_buffer__free(ring);
      ring = null;
    }
  }
}
