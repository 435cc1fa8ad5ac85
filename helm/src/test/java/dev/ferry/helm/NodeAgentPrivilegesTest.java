// SPDX-License-Identifier: Apache-2.0
package dev.ferry.helm;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.helm.HelmChart.ValueSet;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.SecurityContext;
import io.fabric8.kubernetes.api.model.Toleration;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The node-agent's DaemonSet has the privileges the agent needs and no others: the node's network
 * and processes, these capabilities and no other, three host directories and no other, root but not
 * privileged, a read-only root filesystem and the runtime's default seccomp profile.
 */
class NodeAgentPrivilegesTest {
  /**
   * Every capability the agent gets, and why (the template says the same beside each). SYS_ADMIN
   * also passes the kernel's bpf_capable() and perfmon_capable(), so BPF and PERFMON would add
   * nothing; SYS_RESOURCE is not needed on the 5.18+ kernels the hold requires, where BPF memory is
   * charged to the cgroup; SCM_RIGHTS needs no capability.
   */
  static final Map<String, String> CAPABILITIES =
      Map.of(
          "NET_ADMIN",
          "netlink address/route/neighbour changes, the TC and XDP attachment of the hold,"
              + " TCP_REPAIR, SO_SNDBUFFORCE/SO_RCVBUFFORCE on restored sockets",
          "NET_RAW",
          "gratuitous ARP and unsolicited neighbour advertisements, frames sent through AF_PACKET",
          "SYS_ADMIN",
          "setns(CLONE_NEWNET) into a pod's network namespace; also covers loading the hold's BPF"
              + " programs and creating and pinning their maps",
          "SYS_PTRACE",
          "opening /proc/<pid>/ns/net of an application of another user or with more"
              + " capabilities (ptrace access mode READ_FSCREDS)");

  /** The host directories the agent mounts, and the only ones. */
  static final Map<String, String> HOST_PATHS =
      Map.of(
          "/run/ferry", "DirectoryOrCreate",
          "/var/lib/ferry", "DirectoryOrCreate",
          "/sys/fs/bpf", "Directory");

  @ParameterizedTest
  @EnumSource(ValueSet.class)
  void theAgentSharesTheNodesNetworkAndProcessesAndNothingElse(ValueSet set) {
    PodSpec pod = agent(set).getSpec().getTemplate().getSpec();
    assertThat(pod.getHostNetwork()).as("hostNetwork").isTrue();
    assertThat(pod.getHostPID()).as("hostPID").isTrue();
    assertThat(pod.getHostIPC()).as("hostIPC").isNotEqualTo(Boolean.TRUE);
    assertThat(pod.getDnsPolicy()).isEqualTo("ClusterFirstWithHostNet");
    assertThat(pod.getInitContainers()).isEmpty();
    assertThat(pod.getContainers()).hasSize(1);
    assertThat(pod.getSecurityContext().getSeccompProfile().getType()).isEqualTo("RuntimeDefault");
    assertThat(pod.getServiceAccountName()).isEqualTo("ferry-node-agent");
  }

  @ParameterizedTest
  @EnumSource(ValueSet.class)
  void theAgentIsRootWithTheseCapabilitiesOnly(ValueSet set) {
    SecurityContext sc = container(set).getSecurityContext();
    assertThat(sc.getPrivileged()).as("privileged").isFalse();
    assertThat(sc.getRunAsUser()).as("runAsUser").isZero();
    assertThat(sc.getReadOnlyRootFilesystem()).as("readOnlyRootFilesystem").isTrue();
    assertThat(sc.getCapabilities().getDrop()).as("capabilities dropped").containsExactly("ALL");
    assertThat(sc.getCapabilities().getAdd())
        .as("capabilities added")
        .containsExactlyInAnyOrderElementsOf(CAPABILITIES.keySet());
    // The API server refuses allowPrivilegeEscalation: false with SYS_ADMIN added.
    assertThat(sc.getAllowPrivilegeEscalation()).isTrue();
    assertThat(sc.getSeccompProfile())
        .as("the container keeps the pod's seccomp profile, not Unconfined")
        .isNull();
  }

  @ParameterizedTest
  @EnumSource(ValueSet.class)
  void theAgentMountsTheseHostDirectoriesOnly(ValueSet set) {
    DaemonSet ds = agent(set);
    Map<String, Volume> volumes =
        ds.getSpec().getTemplate().getSpec().getVolumes().stream()
            .collect(Collectors.toMap(Volume::getName, v -> v));
    Map<String, String> hostPaths =
        volumes.values().stream()
            .filter(v -> v.getHostPath() != null)
            .collect(
                Collectors.toMap(v -> v.getHostPath().getPath(), v -> v.getHostPath().getType()));
    assertThat(hostPaths).isEqualTo(HOST_PATHS);
    assertThat(volumes.values())
        .as("besides those: the TLS files and a scratch /tmp")
        .filteredOn(v -> v.getHostPath() == null)
        .extracting(Volume::getName)
        .containsExactlyInAnyOrder("tls", "tmp");
    Volume tls = volumes.get("tls");
    if (set == ValueSet.CSI_DRIVER) {
      assertThat(tls.getSecret()).as("no shared Secret").isNull();
      assertThat(tls.getCsi().getDriver())
          .as("this agent's own certificate, from cert-manager's csi-driver")
          .isEqualTo("csi.cert-manager.io");
      assertThat(tls.getCsi().getReadOnly()).as("the csi-driver refuses a writable one").isTrue();
    } else {
      assertThat(tls.getCsi()).isNull();
      assertThat(tls.getSecret().getSecretName()).isEqualTo("ferry-agent-tls");
      assertThat(tls.getSecret().getDefaultMode()).as("0400").isEqualTo(0400);
    }
    assertThat(volumes.get("tmp").getEmptyDir()).isNotNull();

    Map<String, VolumeMount> mounts =
        container(set).getVolumeMounts().stream()
            .collect(Collectors.toMap(VolumeMount::getMountPath, m -> m));
    assertThat(mounts.keySet())
        .containsExactlyInAnyOrder(
            "/run/ferry", "/var/lib/ferry", "/sys/fs/bpf", "/etc/ferry/tls", "/tmp");
    for (VolumeMount m : mounts.values()) {
      Volume v = volumes.get(m.getName());
      if (v.getHostPath() != null) {
        assertThat(m.getMountPath())
            .as("host directories appear at the same path in the agent")
            .isEqualTo(v.getHostPath().getPath());
      }
    }
    assertThat(mounts.get("/etc/ferry/tls").getReadOnly()).isTrue();
    assertThat(mounts.get("/sys/fs/bpf").getMountPropagation()).isEqualTo("HostToContainer");
  }

  @ParameterizedTest
  @EnumSource(ValueSet.class)
  void theAgentsSettingsPointIntoItsMounts(ValueSet set) {
    Container c = container(set);
    assertThat(c.getEnv())
        .filteredOn(e -> e.getName().equals("FERRY_AGENT_NODE_NAME"))
        .singleElement()
        .satisfies(
            e ->
                assertThat(e.getValueFrom().getFieldRef().getFieldPath())
                    .isEqualTo("spec.nodeName"));
    assertThat(c.getEnv())
        .filteredOn(e -> e.getName().equals("FERRY_AGENT_NAMESPACE"))
        .as("the only namespace whose pods may be agents: the agent's own")
        .singleElement()
        .satisfies(
            e ->
                assertThat(e.getValueFrom().getFieldRef().getFieldPath())
                    .isEqualTo("metadata.namespace"));
    assertThat(env(c, "FERRY_AGENT_PEER_IDENTITY"))
        .as("required only where each agent's certificate names it; else it refuses every transfer")
        .isEqualTo(set == ValueSet.CSI_DRIVER ? "required" : "off");
    assertThat(env(c, "FERRY_AGENT_HANDOFF_SOCKET")).isEqualTo("/run/ferry/handoff.sock");
    assertThat(env(c, "FERRY_AGENT_STATE_DIR")).isEqualTo("/var/lib/ferry");
    assertThat(env(c, "FERRY_AGENT_BPF_PIN_DIR")).isEqualTo("/sys/fs/bpf/ferry");
    assertThat(env(c, "FERRY_AGENT_TLS_CERT")).isEqualTo("/etc/ferry/tls/agent.crt");
    assertThat(env(c, "FERRY_AGENT_TLS_KEY")).isEqualTo("/etc/ferry/tls/agent.key");
    assertThat(env(c, "FERRY_AGENT_TLS_CA")).isEqualTo("/etc/ferry/tls/ca.crt");
    assertThat(env(c, "FERRY_AGENT_API_PORT")).isEqualTo("9443");
    assertThat(env(c, "FERRY_AGENT_HOLD_LIMIT")).matches("([0-9]+(ms|s|m|h))+");
    assertThat(env(c, "FERRY_AGENT_IMDS_ENABLED"))
        .as("the metadata watch is on with the aws mover")
        .isEqualTo(String.valueOf(set == ValueSet.AWS || set == ValueSet.CERT_MANAGER));
    assertThat(c.getPorts())
        .extracting(p -> p.getName() + "=" + p.getContainerPort())
        .containsExactlyInAnyOrder("api=9443", "http=9400");
    assertThat(c.getReadinessProbe().getHttpGet().getPath()).isEqualTo("/q/health/ready");
    assertThat(c.getLivenessProbe().getHttpGet().getPath()).isEqualTo("/q/health/live");
  }

  @ParameterizedTest
  @EnumSource(ValueSet.class)
  void theAgentRunsOnEveryNodeSpotAndDrainingOnesIncludedAndIsNotEvicted(ValueSet set) {
    PodSpec pod = agent(set).getSpec().getTemplate().getSpec();
    assertThat(pod.getTolerations())
        .as("a toleration of every taint: spot, drain and NoExecute ones")
        .anySatisfy(
            (Toleration t) -> {
              assertThat(t.getOperator()).isEqualTo("Exists");
              assertThat(t.getKey()).isNull();
              assertThat(t.getEffect()).isNull();
            });
    assertThat(pod.getPriorityClassName()).isEqualTo("system-node-critical");
  }

  private static DaemonSet agent(ValueSet set) {
    return HelmChart.render(set).one(DaemonSet.class, "ferry-node-agent");
  }

  private static Container container(ValueSet set) {
    return agent(set).getSpec().getTemplate().getSpec().getContainers().get(0);
  }

  private static String env(Container c, String name) {
    return Manifests.env(c.getEnv(), name);
  }
}
