// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e;

import dev.ferry.api.crd.MigrationPolicy;
import dev.ferry.api.crd.MigrationRequest;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.base.CustomResourceDefinitionContext;
import io.fabric8.kubernetes.client.server.mock.KubernetesCrudDispatcher;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.mockwebserver.Context;
import io.fabric8.mockwebserver.MockWebServer;
import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * The agents' two-node cluster with an API server (Fabric8's mock, CRUD mode, on the nodes' LAN)
 * holding its Nodes and Pods, and the operator as a process (the Quarkus build) watching it.
 */
final class OperatorCluster implements AutoCloseable {
  static final String NAMESPACE = "shop";

  final AgentCluster agents;
  final KubernetesMockServer api;
  final KubernetesClient kube;
  final List<String> operatorLog = new CopyOnWriteArrayList<>();
  private Process operator;

  private OperatorCluster(AgentCluster agents) throws Exception {
    this.agents = agents;
    this.api =
        new KubernetesMockServer(
            new Context(),
            new MockWebServer(),
            new HashMap<>(),
            new KubernetesCrudDispatcher(),
            false);
    api.init(InetAddress.getByName(AgentCluster.LAN_SELF), 0);
    api.expectCustomResource(
        CustomResourceDefinitionContext.fromCustomResourceType(MigrationRequest.class));
    api.expectCustomResource(
        CustomResourceDefinitionContext.fromCustomResourceType(MigrationPolicy.class));
    this.kube = api.createClient();
    node(agents.a);
    node(agents.b);
    pod("pod-a", agents.a, AgentCluster.VIP);
    pod("pod-b", agents.b, null);
  }

  static OperatorCluster start() throws Exception {
    AgentCluster agents = AgentCluster.start();
    try {
      OperatorCluster c = new OperatorCluster(agents);
      c.startOperator();
      return c;
    } catch (Exception | Error e) {
      agents.close();
      throw e;
    }
  }

  private void node(AgentCluster.Node n) {
    kube.nodes()
        .resource(
            new NodeBuilder()
                .withNewMetadata()
                .withName(n.name)
                .endMetadata()
                .withNewStatus()
                .addNewAddress()
                .withType("InternalIP")
                .withAddress(n.ip)
                .endAddress()
                .addNewCondition()
                .withType("Ready")
                .withStatus("True")
                .endCondition()
                .endStatus()
                .build())
        .create();
  }

  /** A pod as the kubelet reports it; the test bed names its network namespace. */
  Pod pod(String name, AgentCluster.Node n, String ip) {
    PodBuilder b =
        new PodBuilder()
            .withNewMetadata()
            .withName(name)
            .withNamespace(NAMESPACE)
            .withUid(java.util.UUID.randomUUID().toString())
            .withLabels(Map.of("app", "token-streamer"))
            .withAnnotations(Map.of("ferry.dev/netns", n.podNetns()))
            .endMetadata()
            .withNewSpec()
            .withNodeName(n.name)
            .addNewContainer()
            .withName("streamer")
            .withImage("ferry/token-streamer")
            .addNewPort()
            .withContainerPort(AgentCluster.PORT)
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
    return kube.pods().inNamespace(NAMESPACE).resource(b.build()).create();
  }

  void startOperator() throws Exception {
    operatorLog.clear();
    ProcessBuilder pb =
        new ProcessBuilder(
                AgentCluster.java(),
                "-jar",
                AgentCluster.repoFile("operator/target/quarkus-app/quarkus-run.jar").toString())
            .redirectErrorStream(true)
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
    Map<String, String> env = pb.environment();
    env.put("KUBERNETES_MASTER", "http://" + AgentCluster.LAN_SELF + ":" + api.getPort());
    env.put("KUBERNETES_AUTH_TRYKUBECONFIG", "false");
    env.put("KUBERNETES_AUTH_TRYSERVICEACCOUNT", "false");
    env.put("KUBERNETES_NAMESPACE", NAMESPACE);
    env.put("FERRY_OPERATOR_TLS_CA", agents.certs.resolve("ca.crt").toString());
    env.put("FERRY_OPERATOR_TLS_CERT", agents.certs.resolve("operator.crt").toString());
    env.put("FERRY_OPERATOR_TLS_KEY", agents.certs.resolve("operator.key").toString());
    operator = pb.start();
    CountDownLatch up = new CountDownLatch(1);
    Thread t =
        new Thread(
            () -> {
              try (BufferedReader in =
                  new BufferedReader(
                      new InputStreamReader(operator.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null) {
                  System.out.println("    [operator] " + line);
                  operatorLog.add(line);
                  if (line.contains("started in")) {
                    up.countDown();
                  }
                }
              } catch (IOException ended) {
                // the process ended
              }
            },
            "operator-log");
    t.setDaemon(true);
    t.start();
    if (!up.await(60, TimeUnit.SECONDS)) {
      operator.destroyForcibly();
      throw new IllegalStateException("the operator did not start within 60 s");
    }
  }

  void killOperator() throws InterruptedException {
    operator.destroyForcibly();
    operator.waitFor(10, TimeUnit.SECONDS);
  }

  @Override
  public void close() {
    if (operator != null) {
      operator.destroyForcibly();
      try {
        operator.waitFor(10, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    api.destroy();
    agents.close();
  }
}
