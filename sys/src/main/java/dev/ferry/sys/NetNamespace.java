// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import static dev.ferry.sys.Calls.check;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * A network namespace, held open by a descriptor, that the calling thread can enter for the length
 * of one call: sockets created inside belong to it for good.
 */
public final class NetNamespace implements AutoCloseable {
  private final int fd;
  private final String name;

  private NetNamespace(int fd, String name) {
    this.fd = fd;
    this.name = name;
  }

  /** A namespace named by {@code ip netns add NAME} (bind-mounted under /run/netns). */
  public static NetNamespace named(String name) throws SyscallException {
    return open(Path.of("/run/netns", name), name);
  }

  /** The namespace a process lives in. */
  public static NetNamespace ofProcess(long pid) throws SyscallException {
    return open(Path.of("/proc", Long.toString(pid), "ns", "net"), "pid " + pid);
  }

  /** The calling thread's own namespace. */
  public static NetNamespace current() throws SyscallException {
    return open(Path.of("/proc/thread-self/ns/net"), "current");
  }

  private static NetNamespace open(Path path, String name) throws SyscallException {
    String file = path.toString();
    int fd =
        check(
            () -> Native.LIBC.open(file, Native.O_RDONLY | Native.O_CLOEXEC),
            () -> "open(" + file + ") for network namespace " + name);
    return new NetNamespace(fd, name);
  }

  public String name() {
    return name;
  }

  /** The namespace's identity: its inode in nsfs, the same through every path that names it. */
  public long inode() throws SyscallException {
    return inodeOf(Path.of("/proc/self/fd", Integer.toString(fd)));
  }

  /** The identity of the namespace {@code pid} lives in, without entering or holding it. */
  public static long inodeOfProcess(long pid) throws SyscallException {
    return inodeOf(Path.of("/proc", Long.toString(pid), "ns", "net"));
  }

  private static long inodeOf(Path link) throws SyscallException {
    try {
      return (Long) Files.getAttribute(link, "unix:ino");
    } catch (NoSuchFileException e) {
      throw new SyscallException("stat(" + link + ")", 2 /* ENOENT: no such process */);
    } catch (AccessDeniedException e) {
      throw new SyscallException("stat(" + link + ")", 13 /* EACCES */);
    } catch (IOException e) {
      throw new SyscallException("stat(" + link + ")", 5 /* EIO */, e.getMessage());
    }
  }

  /** Work that runs inside a namespace. */
  @FunctionalInterface
  public interface Work<T, E extends Exception> {
    T run() throws E;
  }

  /**
   * Runs {@code work} on this thread inside this namespace, then returns the thread to the
   * namespace it came from, whatever {@code work} did.
   */
  public <T, E extends Exception> T call(Work<T, E> work) throws E, SyscallException {
    try (NetNamespace home = current()) {
      enter(this);
      try {
        return work.run();
      } finally {
        try {
          enter(home);
        } catch (SyscallException e) {
          // A thread left in the wrong namespace would create later sockets there: stop it.
          throw new InternalError("could not return thread to its network namespace", e);
        }
      }
    }
  }

  private static void enter(NetNamespace ns) throws SyscallException {
    check(
        () -> Native.LIBC.setns(ns.fd, Native.CLONE_NEWNET),
        () -> "setns(" + ns.name + ", CLONE_NEWNET)");
  }

  @Override
  public void close() {
    Native.LIBC.close(fd);
  }

  @Override
  public String toString() {
    return "netns " + name;
  }
}
