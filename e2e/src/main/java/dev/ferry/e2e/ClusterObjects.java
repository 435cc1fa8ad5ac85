// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import dev.ferry.testbed.RbacCalls;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import java.io.File;
import java.nio.file.Path;
import java.util.Map;
import java.util.UUID;

/** What the test clusters put in the API server and start beside it, made one way for all. */
public final class ClusterObjects {
  private ClusterObjects() {}

  /**
   * A pod as the kubelet reports it once it runs and is ready: on {@code node}, serving TCP {@code
   * port}, with {@code ip} as its pod IP when not null.
   */
  public static Pod runningPod(
      String name,
      String namespace,
      String node,
      String ip,
      int port,
      Map<String, String> labels,
      Map<String, String> annotations) {
    PodBuilder b =
        new PodBuilder()
            .withNewMetadata()
            .withName(name)
            .withNamespace(namespace)
            .withUid(UUID.randomUUID().toString())
            .withLabels(labels)
            .withAnnotations(annotations)
            .endMetadata()
            .withNewSpec()
            .withNodeName(node)
            .addNewContainer()
            .withName("app")
            .withImage("ferry/token-streamer")
            .addNewPort()
            .withContainerPort(port)
            .withProtocol("TCP")
            .endPort()
            .endContainer()
            .endSpec()
            .withNewStatus()
            .withPhase("Running")
            .addNewCondition()
            .withType("Ready")
            .withStatus("True")
            .endCondition()
            .endStatus();
    if (ip != null) {
      b.editStatus().withPodIP(ip).addNewPodIP().withIp(ip).endPodIP().endStatus();
    }
    return b.build();
  }

  /**
   * The operator (the Quarkus build) as a process against the API server at {@code apiUrl}, with
   * the certificates in {@code certs} (scripts/ferry-certs.sh), taking its Lease as {@code
   * identity}. Add FERRY_OPERATOR_* to its environment for anything else.
   */
  public static ProcessBuilder operatorProcess(
      String apiUrl, Path certs, String namespace, String identity) {
    ProcessBuilder pb =
        new ProcessBuilder(
                Builds.java(),
                // The operator's JVM options, as its image starts it.
                "@" + Builds.repoFile("operator/src/main/jvm/operator-jvm.options"),
                "-jar",
                Builds.repoFile("operator/target/quarkus-app/quarkus-run.jar").toString())
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
    Map<String, String> env = pb.environment();
    env.put("JDK_JAVA_OPTIONS", ChartMemory.operator()); // the heap the chart's pod gives it
    env.put("KUBERNETES_MASTER", apiUrl);
    env.put("KUBERNETES_AUTH_TRYKUBECONFIG", "false");
    env.put("KUBERNETES_AUTH_TRYSERVICEACCOUNT", "false");
    // Its ServiceAccount's rights, no more: the API server refuses what the chart does not grant.
    env.put("KUBERNETES_AUTH_TOKEN", RbacCalls.Caller.of("operator").in(namespace).token());
    env.put("KUBERNETES_NAMESPACE", namespace);
    env.put("FERRY_OPERATOR_TLS_CA", certs.resolve("ca.crt").toString());
    env.put("FERRY_OPERATOR_TLS_CERT", certs.resolve("operator.crt").toString());
    env.put("FERRY_OPERATOR_TLS_KEY", certs.resolve("operator.key").toString());
    env.put("FERRY_OPERATOR_LEADER_ELECTION_IDENTITY", identity);
    return pb;
  }
}
