// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.sys;

import java.lang.ref.Reference;
import java.nio.file.Path;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;

/**
 * A compiled BPF object file, opened and loaded with libbpf. Its programs and maps live as long as
 * it does, unless they are attached or pinned.
 */
public final class BpfObject implements AutoCloseable {
  private final Pointer obj;
  private final String file;

  /** The ELF image of an object opened from memory; libbpf reads it until load. */
  private final Pointer image;

  private BpfObject(Pointer obj, String file, Pointer image) {
    this.obj = obj;
    this.file = file;
    this.image = image;
  }

  /** Opens an object from its bytes (a resource in the agent's jar); {@code name} is for errors. */
  public static BpfObject open(byte[] elf, String name) throws SyscallException {
    Pointer image = Memory.allocateDirect(Native.RUNTIME, elf.length);
    image.put(0, elf, 0, elf.length);
    Pointer obj = Native.Bpf.LIB.bpf_object__open_mem(image, elf.length, null);
    if (obj == null) {
      throw new SyscallException("bpf_object__open_mem(" + name + ")", Native.errno());
    }
    return new BpfObject(obj, name, image);
  }

  public static BpfObject open(Path file) throws SyscallException {
    String path = file.toString();
    Pointer obj = Native.Bpf.LIB.bpf_object__open_file(path, null);
    if (obj == null) {
      throw new SyscallException("bpf_object__open_file(" + path + ")", Native.errno());
    }
    return new BpfObject(obj, path, null);
  }

  /**
   * Pins every map at {@code dir/<map name>} when the object loads, or reuses the map already
   * pinned there: that is how two objects share maps, and how a restarted agent finds them.
   */
  public void pinMapsUnder(Path dir) throws SyscallException {
    for (Pointer map = Native.Bpf.LIB.bpf_object__next_map(obj, null);
        map != null;
        map = Native.Bpf.LIB.bpf_object__next_map(obj, map)) {
      String name = Native.Bpf.LIB.bpf_map__name(map);
      String path = dir.resolve(name).toString();
      Bpf.check(
          Native.Bpf.LIB.bpf_map__set_pin_path(map, path),
          () -> "bpf_map__set_pin_path(" + name + ", " + path + ")");
    }
  }

  /** Creates the maps and loads the programs through the verifier. */
  public void load() throws SyscallException {
    Bpf.check(
        Native.Bpf.LIB.bpf_object__load(obj),
        () -> "bpf_object__load(" + file + ") (the verifier's log is on stderr)");
  }

  /** The descriptor of a loaded program, owned by this object. */
  public int programFd(String name) throws SyscallException {
    Pointer prog = Native.Bpf.LIB.bpf_object__find_program_by_name(obj, name);
    if (prog == null) {
      throw new SyscallException(
          "bpf_object__find_program_by_name(" + file + ", " + name + ")", Errno.ENOENT);
    }
    return Bpf.check(Native.Bpf.LIB.bpf_program__fd(prog), () -> "bpf_program__fd(" + name + ")");
  }

  /** A map of this object; valid while the object is open. */
  public BpfMap map(String name) throws SyscallException {
    for (Pointer map = Native.Bpf.LIB.bpf_object__next_map(obj, null);
        map != null;
        map = Native.Bpf.LIB.bpf_object__next_map(obj, map)) {
      if (name.equals(Native.Bpf.LIB.bpf_map__name(map))) {
        int fd = Bpf.check(Native.Bpf.LIB.bpf_map__fd(map), () -> "bpf_map__fd(" + name + ")");
        return BpfMap.borrowed(fd, name);
      }
    }
    throw new SyscallException("map " + name + " in " + file, Errno.ENOENT);
  }

  @Override
  public void close() {
    Native.Bpf.LIB.bpf_object__close(obj);
    Reference.reachabilityFence(image);
  }
}
