// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import java.io.IOException;
import java.io.InputStream;
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

  /**
   * Opens an object that travels as a resource of {@code owner}'s class loader (the agent's jar),
   * under {@code resource}, e.g. "bpf/hold_tc.bpf.o".
   */
  public static BpfObject openResource(Class<?> owner, String resource) throws IOException {
    try (InputStream in = owner.getClassLoader().getResourceAsStream(resource)) {
      if (in == null) {
        throw new IOException(
            resource + " is missing from the class path: build bpf/ first (make -C bpf)");
      }
      return open(in.readAllBytes(), resource);
    }
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
   * Opens the object at {@code resource} on {@code owner}'s class path, pins its maps under {@code
   * pinDir} (or reuses those pinned there, see {@link #pinMapsUnder}) and loads it; closes it when
   * that fails.
   */
  public static BpfObject loadResource(Class<?> owner, String resource, Path pinDir)
      throws IOException {
    BpfObject object = openResource(owner, resource);
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

  private static final int BPF_MAP_TYPE_STRUCT_OPS = 26;

  /** linux/bpf.h: a struct_ops map registered only through a link, and only while it lives. */
  private static final int BPF_F_LINK = 1 << 13;

  /** enum bpf_attach_type (linux/bpf.h, Linux 6.4+). */
  private static final int BPF_STRUCT_OPS = 44;

  /**
   * Makes every struct_ops map register through a link ({@link #registerStructOps}) rather than on
   * its own; before {@link #load}. A map registered on its own stays registered after its process
   * exits, and its name is then taken until someone unregisters it by hand.
   */
  public void registerStructOpsThroughLinks() throws SyscallException {
    for (Pointer map = Native.Bpf.LIB.bpf_object__next_map(obj, null);
        map != null;
        map = Native.Bpf.LIB.bpf_object__next_map(obj, map)) {
      if (Native.Bpf.LIB.bpf_map__type(map) == BPF_MAP_TYPE_STRUCT_OPS) {
        String name = Native.Bpf.LIB.bpf_map__name(map);
        Bpf.check(
            Native.Bpf.LIB.bpf_map__set_map_flags(map, BPF_F_LINK),
            () -> "bpf_map__set_map_flags(" + name + ", BPF_F_LINK)");
      }
    }
  }

  /**
   * Registers the struct_ops map {@code name} (a congestion control, say) until the returned link
   * is closed or this process exits. EEXIST: another registration holds its name.
   */
  public BpfLink registerStructOps(String name) throws SyscallException {
    Pointer map = Native.Bpf.LIB.bpf_object__find_map_by_name(obj, name);
    if (map == null) {
      throw new SyscallException("struct_ops map " + name + " in " + file, Errno.ENOENT);
    }
    if (Native.Bpf.LIB.bpf_map__attach_struct_ops(map) == null) {
      throw new SyscallException("bpf_map__attach_struct_ops(" + name + ")", Native.errno());
    }
    // libbpf's own link object is not kept: for a BPF_F_LINK map it holds no registration, and
    // the map's descriptor it refers to is the object's.
    int mapFd = Bpf.check(Native.Bpf.LIB.bpf_map__fd(map), () -> "bpf_map__fd(" + name + ")");
    int link =
        Bpf.check(
            Native.Bpf.LIB.bpf_link_create(mapFd, 0, BPF_STRUCT_OPS, null),
            () -> "bpf_link_create(" + name + ", BPF_STRUCT_OPS)");
    return new BpfLink(link, name);
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
    Pointer map = Native.Bpf.LIB.bpf_object__find_map_by_name(obj, name);
    if (map == null) {
      throw new SyscallException("map " + name + " in " + file, Errno.ENOENT);
    }
    int fd = Bpf.check(Native.Bpf.LIB.bpf_map__fd(map), () -> "bpf_map__fd(" + name + ")");
    return BpfMap.borrowed(fd, name);
  }

  /** What one {@link #testRun} returned: the program's verdict and the packet it left. */
  public record TestRun(int verdict, byte[] packet) {}

  // struct bpf_test_run_opts (bpf.h): sz, data_in, data_out, data_size_in, data_size_out,
  // ctx_in, ctx_out, ctx_size_in, ctx_size_out, retval, repeat, duration, flags, cpu, batch_size.
  private static final int TEST_RUN_OPTS_SIZE = 80;

  /**
   * Runs a loaded program once on {@code packet} in the kernel (BPF_PROG_TEST_RUN), without
   * attaching it anywhere: how the programs' tests feed them crafted packets.
   */
  public TestRun testRun(String program, byte[] packet) throws SyscallException {
    int fd = programFd(program);
    int room = packet.length + 256;
    Pointer in = Memory.allocateDirect(Native.RUNTIME, packet.length);
    in.put(0, packet, 0, packet.length);
    Pointer out = Memory.allocateDirect(Native.RUNTIME, room, true);
    Pointer opts = Memory.allocateDirect(Native.RUNTIME, TEST_RUN_OPTS_SIZE, true);
    opts.putLong(0, TEST_RUN_OPTS_SIZE);
    opts.putAddress(8, in.address());
    opts.putAddress(16, out.address());
    opts.putInt(24, packet.length);
    opts.putInt(28, room);
    opts.putInt(60, 1);
    try {
      Bpf.check(
          Native.Bpf.LIB.bpf_prog_test_run_opts(fd, opts),
          () -> "bpf_prog_test_run_opts(" + program + ")");
      byte[] result = new byte[opts.getInt(28)];
      out.get(0, result, 0, result.length);
      return new TestRun(opts.getInt(56), result);
    } finally {
      Reference.reachabilityFence(in);
      Reference.reachabilityFence(out);
      Reference.reachabilityFence(opts);
    }
  }

  @Override
  public void close() {
    Native.Bpf.LIB.bpf_object__close(obj);
    Reference.reachabilityFence(image);
  }
}
