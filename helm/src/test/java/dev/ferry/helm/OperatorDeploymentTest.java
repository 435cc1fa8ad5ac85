// SPDX-License-Identifier: Apache-2.0
package dev.ferry.helm;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.helm.HelmChart.ValueSet;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.SecurityContext;
import io.fabric8.kubernetes.api.model.ServiceAccount;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The operator runs unprivileged, with probes on Quarkus' health endpoints, its certificate where
 * OperatorSettings looks, and (with the aws mover) an IRSA role on its ServiceAccount.
 */
class OperatorDeploymentTest {

  @ParameterizedTest
  @EnumSource(ValueSet.class)
  void theOperatorRunsAsNobodyWithNoCapability(ValueSet set) {
    PodSpec pod = operator(set).getSpec().getTemplate().getSpec();
    assertThat(pod.getHostNetwork()).isNotEqualTo(Boolean.TRUE);
    assertThat(pod.getHostPID()).isNotEqualTo(Boolean.TRUE);
    assertThat(pod.getSecurityContext().getRunAsNonRoot()).isTrue();
    assertThat(pod.getSecurityContext().getSeccompProfile().getType()).isEqualTo("RuntimeDefault");
    assertThat(pod.getVolumes()).noneMatch(v -> v.getHostPath() != null);
    SecurityContext sc = container(set).getSecurityContext();
    assertThat(sc.getPrivileged()).isFalse();
    assertThat(sc.getAllowPrivilegeEscalation()).isFalse();
    assertThat(sc.getReadOnlyRootFilesystem()).isTrue();
    assertThat(sc.getCapabilities().getDrop()).containsExactly("ALL");
    assertThat(sc.getCapabilities().getAdd()).isEmpty();
  }

  @ParameterizedTest
  @EnumSource(ValueSet.class)
  void probesAndMetricsAreOnQuarkusHttpPort(ValueSet set) {
    Container c = container(set);
    assertThat(c.getPorts())
        .singleElement()
        .satisfies(
            p -> {
              assertThat(p.getName()).isEqualTo("http");
              assertThat(p.getContainerPort()).isEqualTo(9401);
            });
    assertThat(c.getLivenessProbe().getHttpGet().getPath()).isEqualTo("/q/health/live");
    assertThat(c.getReadinessProbe().getHttpGet().getPath()).isEqualTo("/q/health/ready");
    assertThat(c.getStartupProbe().getHttpGet().getPath()).isEqualTo("/q/health/started");
    assertThat(env(c, "QUARKUS_HTTP_PORT")).isEqualTo("9401");
  }

  @ParameterizedTest
  @EnumSource(ValueSet.class)
  void theOperatorFindsItsCertificateAndTheAgents(ValueSet set) {
    Deployment d = operator(set);
    Container c = container(set);
    assertThat(env(c, "FERRY_OPERATOR_TLS_CA")).isEqualTo("/etc/ferry/tls/ca.crt");
    assertThat(env(c, "FERRY_OPERATOR_TLS_CERT")).isEqualTo("/etc/ferry/tls/operator.crt");
    assertThat(env(c, "FERRY_OPERATOR_TLS_KEY")).isEqualTo("/etc/ferry/tls/operator.key");
    Volume tls =
        d.getSpec().getTemplate().getSpec().getVolumes().stream()
            .filter(v -> v.getName().equals("tls"))
            .findFirst()
            .orElseThrow();
    assertThat(tls.getSecret().getSecretName()).isEqualTo("ferry-operator-tls");
    assertThat(tls.getSecret().getItems())
        .extracting(i -> i.getKey() + "->" + i.getPath())
        .containsExactlyInAnyOrder(
            "ca.crt->ca.crt", "tls.crt->operator.crt", "tls.key->operator.key");
    assertThat(tls.getSecret().getDefaultMode()).as("0440, for fsGroup").isEqualTo(0440);
    assertThat(d.getSpec().getTemplate().getSpec().getSecurityContext().getFsGroup())
        .isEqualTo(d.getSpec().getTemplate().getSpec().getSecurityContext().getRunAsUser());
    // The operator calls each agent at its node's InternalIP on the agents' API port.
    assertThat(env(c, "FERRY_OPERATOR_AGENT_PORT")).isEqualTo("9443");
    assertThat(env(c, "FERRY_OPERATOR_ADDRESS_MOVER"))
        .isEqualTo(set == ValueSet.AWS || set == ValueSet.CERT_MANAGER ? "aws" : "l2");
  }

  @ParameterizedTest
  @EnumSource(ValueSet.class)
  void replicasElectALeaderThroughTheirLease(ValueSet set) {
    Deployment d = operator(set);
    assertThat(d.getSpec().getReplicas()).isEqualTo(2);
    assertThat(d.getSpec().getStrategy().getType()).isEqualTo("RollingUpdate");
    Container c = container(set);
    assertThat(env(c, "FERRY_OPERATOR_LEADER_ELECTION_LEASE_NAME"))
        .isEqualTo("ferry-operator-leader");
    assertThat(c.getEnv())
        .filteredOn(e -> e.getName().equals("FERRY_OPERATOR_LEADER_ELECTION_LEASE_NAMESPACE"))
        .singleElement()
        .satisfies(
            e ->
                assertThat(e.getValueFrom().getFieldRef().getFieldPath())
                    .isEqualTo("metadata.namespace"));
    assertThat(env(c, "FERRY_OPERATOR_LEADER_ELECTION_LEASE_DURATION")).isEqualTo("15s");
    assertThat(env(c, "FERRY_OPERATOR_LEADER_ELECTION_RENEW_DEADLINE")).isEqualTo("10s");
    assertThat(env(c, "FERRY_OPERATOR_LEADER_ELECTION_RETRY_PERIOD")).isEqualTo("2s");
  }

  @ParameterizedTest
  @EnumSource(ValueSet.class)
  void theMigrationLimitsReachTheOperator(ValueSet set) {
    Container c = container(set);
    assertThat(env(c, "FERRY_OPERATOR_LIMITS_PER_CLUSTER")).isEqualTo("5");
    assertThat(env(c, "FERRY_OPERATOR_LIMITS_PER_NODE")).isEqualTo("2");
    assertThat(env(c, "FERRY_OPERATOR_POLICY_REQUESTS_KEPT")).isEqualTo("168h");
  }

  @Test
  void withTheAwsMoverTheOperatorsServiceAccountCarriesTheIrsaRole() {
    assertThat(serviceAccount(ValueSet.AWS, "ferry-operator").getMetadata().getAnnotations())
        .containsEntry(
            "eks.amazonaws.com/role-arn", "arn:aws:iam::123456789012:role/ferry-operator");
    Container c = container(ValueSet.AWS);
    assertThat(env(c, "FERRY_OPERATOR_AWS_REGION")).isEqualTo("eu-west-1");
    assertThat(env(c, "FERRY_OPERATOR_AWS_SETTLE_TIMEOUT")).isEqualTo("60s");
    assertThat(env(c, "FERRY_OPERATOR_AWS_MAX_ATTEMPTS")).isEqualTo("8");
  }

  @Test
  void queueModeOnPassesTheQueueToTheOperator() {
    Container c = container(ValueSet.AWS);
    assertThat(env(c, "FERRY_OPERATOR_QUEUE_ENABLED")).isEqualTo("true");
    assertThat(env(c, "FERRY_OPERATOR_QUEUE_URL"))
        .isEqualTo("https://sqs.eu-west-1.amazonaws.com/123456789012/ferry-ec2-notices");
    assertThat(env(c, "FERRY_OPERATOR_QUEUE_REGION")).as("aws.region").isEqualTo("eu-west-1");
  }

  @ParameterizedTest
  @EnumSource(
      value = ValueSet.class,
      names = {"DEFAULT", "L2", "CERT_MANAGER"})
  void queueModeIsOffByDefault(ValueSet set) {
    assertThat(container(set).getEnv())
        .noneMatch(e -> e.getName().startsWith("FERRY_OPERATOR_QUEUE_"));
  }

  @ParameterizedTest
  @EnumSource(
      value = ValueSet.class,
      names = {"DEFAULT", "L2", "CERT_MANAGER"})
  void noOtherServiceAccountCarriesAnAwsRole(ValueSet set) {
    for (ServiceAccount sa : HelmChart.render(set).all(ServiceAccount.class)) {
      assertThat(sa.getMetadata().getAnnotations())
          .as("%s in %s", sa.getMetadata().getName(), set)
          .doesNotContainKey("eks.amazonaws.com/role-arn");
    }
    assertThat(serviceAccount(ValueSet.AWS, "ferry-node-agent").getMetadata().getAnnotations())
        .as("the agent calls no AWS API")
        .doesNotContainKey("eks.amazonaws.com/role-arn");
    if (set != ValueSet.CERT_MANAGER) {
      assertThat(container(set).getEnv())
          .noneMatch(e -> e.getName().startsWith("FERRY_OPERATOR_AWS_"));
    }
  }

  private static Deployment operator(ValueSet set) {
    return HelmChart.render(set).one(Deployment.class, "ferry-operator");
  }

  private static Container container(ValueSet set) {
    return operator(set).getSpec().getTemplate().getSpec().getContainers().get(0);
  }

  private static ServiceAccount serviceAccount(ValueSet set, String name) {
    return HelmChart.render(set).one(ServiceAccount.class, name);
  }

  private static String env(Container c, String name) {
    return Manifests.env(c.getEnv(), name);
  }
}
