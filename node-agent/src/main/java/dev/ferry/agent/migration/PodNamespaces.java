// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.migration;

import dev.ferry.api.v1alpha1.PodRef;
import dev.ferry.sys.NetNamespace;
import dev.ferry.sys.SyscallException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/** Finds a pod's network namespace on this node. */
public final class PodNamespaces {
  private static final Pattern NAMED = Pattern.compile("/(?:var/)?run/netns/([A-Za-z0-9._-]+)");
  private static final Pattern PROCESS = Pattern.compile("/proc/([0-9]+)/ns/net");

  private final Path proc;

  public PodNamespaces(Path proc) {
    this.proc = proc;
  }

  /** The pod's network namespace by inode: which applications on the node are the pod's. */
  public long inode(PodRef pod, String field) throws SyscallException {
    try (NetNamespace ns = open(pod, field)) {
      return ns.inode();
    }
  }

  /** The caller closes the namespace. */
  public NetNamespace open(PodRef pod, String field) throws SyscallException {
    if (!pod.getNetns().isEmpty()) {
      Matcher named = NAMED.matcher(pod.getNetns());
      if (named.matches()) {
        return NetNamespace.named(named.group(1));
      }
      Matcher process = PROCESS.matcher(pod.getNetns());
      if (process.matches()) {
        return NetNamespace.ofProcess(Long.parseLong(process.group(1)));
      }
      throw new BadRequest(
          field
              + ".netns must be /var/run/netns/NAME or /proc/PID/ns/net, got '"
              + pod.getNetns()
              + "'");
    }
    if (pod.getUid().isEmpty()) {
      throw new BadRequest(field + " needs a uid (a Kubernetes pod) or a netns path");
    }
    long pid =
        processOf(pod.getUid())
            .orElseThrow(
                () ->
                    new BadRequest(
                        field
                            + ".uid "
                            + pod.getUid()
                            + ": no process of that pod runs on this node (is it scheduled here,"
                            + " and does the agent run with hostPID?)"));
    return NetNamespace.ofProcess(pid);
  }

  /**
   * A process in the pod: the kubelet names a pod's cgroup after its uid, with dashes (cgroupfs
   * driver) or underscores (systemd driver).
   */
  public Optional<Long> processOf(String uid) {
    String dashed = "pod" + uid;
    String underscored = "pod" + uid.replace('-', '_');
    try (Stream<Path> entries = Files.list(proc)) {
      return entries
          .filter(p -> p.getFileName().toString().chars().allMatch(Character::isDigit))
          .filter(p -> inCgroup(p.resolve("cgroup"), dashed, underscored))
          .map(p -> Long.parseLong(p.getFileName().toString()))
          .findFirst();
    } catch (IOException e) {
      throw new IllegalStateException("cannot list " + proc + ": " + e.getMessage(), e);
    }
  }

  private static boolean inCgroup(Path cgroup, String dashed, String underscored) {
    try {
      String text = Files.readString(cgroup);
      return text.contains(dashed) || text.contains(underscored);
    } catch (IOException gone) {
      return false; // the process ended while we looked
    }
  }
}
