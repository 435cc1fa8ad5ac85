// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/** A BPF map reached through its descriptor; keys and values are the raw C structs. */
public final class BpfMap implements AutoCloseable {
  /** bpf_map_update_elem flags (linux/bpf.h). */
  public static final long BPF_ANY = 0;

  public static final long BPF_NOEXIST = 1;
  public static final long BPF_EXIST = 2;

  private final int fd;
  private final String name;
  private final boolean owned;

  private BpfMap(int fd, String name, boolean owned) {
    this.fd = fd;
    this.name = name;
    this.owned = owned;
  }

  static BpfMap borrowed(int fd, String name) {
    return new BpfMap(fd, name, false);
  }

  /** Opens a map pinned in the BPF filesystem, e.g. after an agent restart. */
  public static BpfMap openPinned(java.nio.file.Path path) throws SyscallException {
    String p = path.toString();
    int fd = Bpf.check(Native.Bpf.LIB.bpf_obj_get(p), () -> "bpf_obj_get(" + p + ")");
    return new BpfMap(fd, path.getFileName().toString(), true);
  }

  public String name() {
    return name;
  }

  /** The descriptor, for wrappers in this package that hand it to libbpf (a ring buffer). */
  int fd() {
    return fd;
  }

  public void update(byte[] key, byte[] value, long flags) throws SyscallException {
    Bpf.check(
        Native.Bpf.LIB.bpf_map_update_elem(fd, key, value, flags),
        () -> "bpf_map_update_elem(" + name + ")");
  }

  /** Inserts the entry unless the key is there already; true if it was inserted. */
  public boolean putIfAbsent(byte[] key, byte[] value) throws SyscallException {
    int rc = Native.Bpf.LIB.bpf_map_update_elem(fd, key, value, BPF_NOEXIST);
    if (rc == -Errno.EEXIST) {
      return false;
    }
    Bpf.check(rc, () -> "bpf_map_update_elem(" + name + ", BPF_NOEXIST)");
    return true;
  }

  public Optional<byte[]> lookup(byte[] key, int valueSize) throws SyscallException {
    byte[] value = new byte[valueSize];
    int rc = Native.Bpf.LIB.bpf_map_lookup_elem(fd, key, value);
    if (rc == -Errno.ENOENT) {
      return Optional.empty();
    }
    Bpf.check(rc, () -> "bpf_map_lookup_elem(" + name + ")");
    return Optional.of(value);
  }

  /**
   * The sum over every CPU of a per-CPU array's {@code __u64} value at {@code index}: how per-CPU
   * counters read. The kernel writes one value per possible CPU, so the buffer is sized by that.
   */
  public long sumPerCpu(int index) throws SyscallException {
    int cpus =
        Bpf.check(Native.Bpf.LIB.libbpf_num_possible_cpus(), () -> "libbpf_num_possible_cpus()");
    byte[] key = ByteBuffer.allocate(4).order(ByteOrder.nativeOrder()).putInt(index).array();
    byte[] values =
        lookup(key, cpus * Long.BYTES)
            .orElseThrow(
                () ->
                    new SyscallException(
                        "bpf_map_lookup_elem(" + name + ", " + index + ")", Errno.ENOENT));
    ByteBuffer b = ByteBuffer.wrap(values).order(ByteOrder.nativeOrder());
    long sum = 0;
    for (int cpu = 0; cpu < cpus; cpu++) {
      sum += b.getLong(cpu * Long.BYTES);
    }
    return sum;
  }

  /** Deletes the entry; true if it was there. */
  public boolean delete(byte[] key) throws SyscallException {
    int rc = Native.Bpf.LIB.bpf_map_delete_elem(fd, key);
    if (rc == -Errno.ENOENT) {
      return false;
    }
    Bpf.check(rc, () -> "bpf_map_delete_elem(" + name + ")");
    return true;
  }

  /** Every key in the map (a snapshot; entries may change meanwhile). */
  public List<byte[]> keys(int keySize) throws SyscallException {
    List<byte[]> out = new ArrayList<>();
    byte[] key = null;
    while (true) {
      byte[] next = new byte[keySize];
      int rc = Native.Bpf.LIB.bpf_map_get_next_key(fd, key, next);
      if (rc == -Errno.ENOENT) {
        return out;
      }
      Bpf.check(rc, () -> "bpf_map_get_next_key(" + name + ")");
      out.add(next);
      key = next;
    }
  }

  @Override
  public void close() {
    if (owned) {
      Native.LIBC.close(fd);
    }
  }
}
