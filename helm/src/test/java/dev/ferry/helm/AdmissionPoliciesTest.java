// SPDX-License-Identifier: Apache-2.0
package dev.ferry.helm;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cel.common.types.SimpleType;
import dev.cel.compiler.CelCompiler;
import dev.cel.compiler.CelCompilerFactory;
import dev.cel.parser.CelStandardMacro;
import dev.cel.runtime.CelRuntime;
import dev.cel.runtime.CelRuntimeFactory;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.admissionregistration.v1.ValidatingAdmissionPolicy;
import io.fabric8.kubernetes.api.model.admissionregistration.v1.ValidatingAdmissionPolicyBinding;
import io.fabric8.kubernetes.api.model.admissionregistration.v1.Validation;
import io.fabric8.kubernetes.api.model.admissionregistration.v1.Variable;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * The chart's ValidatingAdmissionPolicies, evaluated with cel-java on the requests the API server
 * would give them: what the programs do passes, what a compromised agent or operator would try is
 * refused with the policy's message, and nobody else's requests are matched at all.
 */
class AdmissionPoliciesTest {
  private static final String AGENT = "system:serviceaccount:ferry-system:ferry-node-agent";
  private static final String OPERATOR = "system:serviceaccount:ferry-system:ferry-operator";
  private static final String NODE_NAME = "authentication.kubernetes.io/node-name";

  private static final CelCompiler COMPILER =
      CelCompilerFactory.standardCelCompilerBuilder()
          .setStandardMacros(CelStandardMacro.STANDARD_MACROS)
          .addVar("object", SimpleType.DYN)
          .addVar("oldObject", SimpleType.DYN)
          .addVar("request", SimpleType.DYN)
          .addVar("variables", SimpleType.DYN)
          .build();
  private static final CelRuntime RUNTIME = CelRuntimeFactory.standardCelRuntimeBuilder().build();
  private static final ObjectMapper JSON = new ObjectMapper();

  /** The agent writes its Node only where it watches the instance metadata service (aws). */
  private final Manifests chart = HelmChart.renderWith("addressMover: aws");

  private final ValidatingAdmissionPolicy ownNode =
      chart.one(ValidatingAdmissionPolicy.class, "ferry-node-agent-own-node");
  private final ValidatingAdmissionPolicy podMarks =
      chart.one(ValidatingAdmissionPolicy.class, "ferry-operator-pod-marks");

  @Test
  void anAgentUpdatesItsOwnNodesStatusAndNoOtherNodes() {
    assertThat(ownNode.getSpec().getMatchConstraints().getResourceRules())
        .singleElement()
        .satisfies(
            r -> {
              assertThat(r.getResources()).containsExactly("nodes/status");
              assertThat(r.getOperations()).containsExactly("UPDATE");
            });
    Map<String, Object> nodeA = node("node-a");

    assertThat(refusals(ownNode, user(AGENT, "node-a"), nodeA, nodeA)).hasValue(List.of());
    assertThat(refusals(ownNode, user(AGENT, "node-b"), nodeA, nodeA))
        .hasValue(List.of("a Ferry node-agent may update only the status of the Node it runs on"));
    // A token not bound to a pod carries no node: it may write no Node.
    assertThat(refusals(ownNode, user(AGENT, null), nodeA, nodeA)).get().asList().hasSize(1);
    // The kubelet, and anyone but the agent, is not this policy's business.
    assertThat(refusals(ownNode, user("system:node:node-b", "node-b"), nodeA, nodeA)).isEmpty();
  }

  @Test
  void theOperatorSetsAndLiftsItsEvictionGuardOnAPod() {
    Map<String, Object> plain = pod(p -> {});
    Map<String, Object> guarded =
        pod(
            p -> {
              p.getMetadata().getLabels().put("ferry.dev/migration", "0a1b2c3d");
              p.getMetadata()
                  .setAnnotations(
                      Map.of(
                          "karpenter.sh/do-not-disrupt", "true",
                          "ferry.dev/do-not-disrupt-by", "0a1b2c3d"));
            });

    assertThat(refusals(podMarks, user(OPERATOR, null), guarded, plain)).hasValue(List.of());
    assertThat(refusals(podMarks, user(OPERATOR, null), plain, guarded)).hasValue(List.of());
  }

  @Test
  void theOperatorChangesNothingElseOnAPod() {
    Map<String, Object> plain = pod(p -> {});
    String labels = "the Ferry operator may change only the ferry.dev/migration label of a pod";

    assertThat(
            refusals(
                podMarks,
                user(OPERATOR, null),
                pod(p -> p.getMetadata().getLabels().put("app", "other")),
                plain))
        .hasValue(List.of(labels));
    assertThat(
            refusals(
                podMarks,
                user(OPERATOR, null),
                pod(p -> p.getMetadata().getLabels().remove("app")),
                plain))
        .hasValue(List.of(labels));
    assertThat(
            refusals(
                podMarks,
                user(OPERATOR, null),
                pod(p -> p.getMetadata().setAnnotations(Map.of("ferry.dev/netns", "/x"))),
                plain))
        .get()
        .asList()
        .singleElement()
        .asString()
        .startsWith("the Ferry operator may change only the karpenter.sh/do-not-disrupt");
    assertThat(
            refusals(
                podMarks,
                user(OPERATOR, null),
                pod(p -> p.getSpec().getContainers().get(0).setImage("evil/shell")),
                plain))
        .hasValue(List.of("the Ferry operator may not change a pod's spec"));
    // A tenant editing their own pod is not this policy's business.
    assertThat(
            refusals(
                podMarks,
                user("system:serviceaccount:shop:deployer", null),
                pod(p -> p.getMetadata().getLabels().put("app", "other")),
                plain))
        .isEmpty();
  }

  @Test
  void eachPolicyIsBoundToDenyAndBothCanBeLeftOut() {
    assertThat(chart.all(ValidatingAdmissionPolicyBinding.class))
        .extracting(b -> b.getSpec().getPolicyName() + " " + b.getSpec().getValidationActions())
        .containsExactlyInAnyOrder(
            "ferry-node-agent-own-node [Deny]", "ferry-operator-pod-marks [Deny]");
    assertThat(ownNode.getSpec().getFailurePolicy()).isEqualTo("Fail");
    assertThat(podMarks.getSpec().getFailurePolicy()).isEqualTo("Fail");
    Manifests without = HelmChart.renderWith("rbac: {admissionPolicies: false}");
    assertThat(without.all(ValidatingAdmissionPolicy.class)).isEmpty();
    assertThat(without.all(ValidatingAdmissionPolicyBinding.class)).isEmpty();
  }

  /**
   * The messages of the validations that fail, as the API server evaluates a policy: empty when its
   * match conditions leave the request alone, else variables in order, then each validation.
   */
  private static Optional<List<String>> refusals(
      ValidatingAdmissionPolicy policy,
      Map<String, Object> request,
      Map<String, Object> object,
      Map<String, Object> oldObject) {
    Map<String, Object> vars = new HashMap<>();
    vars.put("request", request);
    vars.put("object", object);
    vars.put("oldObject", oldObject);
    Map<String, Object> variables = new HashMap<>();
    vars.put("variables", variables);
    for (var c : policy.getSpec().getMatchConditions()) {
      if (!(Boolean) eval(c.getExpression(), vars)) {
        return Optional.empty();
      }
    }
    for (Variable v : Optional.ofNullable(policy.getSpec().getVariables()).orElse(List.of())) {
      variables.put(v.getName(), eval(v.getExpression(), vars));
    }
    List<String> out = new ArrayList<>();
    for (Validation v : policy.getSpec().getValidations()) {
      if (!(Boolean) eval(v.getExpression(), vars)) {
        out.add(v.getMessage().trim());
      }
    }
    return Optional.of(out);
  }

  private static Object eval(String expression, Map<String, Object> vars) {
    try {
      return RUNTIME.createProgram(COMPILER.compile(expression).getAst()).eval(vars);
    } catch (Exception e) {
      throw new AssertionError("CEL `" + expression + "`: " + e.getMessage(), e);
    }
  }

  /** An admission request's user info; {@code node} is what a pod-bound token carries. */
  private static Map<String, Object> user(String username, String node) {
    Map<String, Object> extra = new LinkedHashMap<>();
    if (node != null) {
      extra.put(NODE_NAME, List.of(node));
    }
    return Map.of("userInfo", Map.of("username", username, "extra", extra));
  }

  private static Map<String, Object> node(String name) {
    return cel(new NodeBuilder().withNewMetadata().withName(name).endMetadata().build());
  }

  private static Map<String, Object> pod(Consumer<Pod> change) {
    Pod p =
        new PodBuilder()
            .withNewMetadata()
            .withName("pod-a")
            .withNamespace("shop")
            .withLabels(new HashMap<>(Map.of("app", "streamer")))
            .endMetadata()
            .withNewSpec()
            .addNewContainer()
            .withName("app")
            .withImage("shop/streamer:1")
            .addNewPort()
            .withContainerPort(8080)
            .endPort()
            .endContainer()
            .endSpec()
            .build();
    change.accept(p);
    return cel(p);
  }

  /** An object as CEL sees it: JSON, with every integer a 64-bit one. */
  @SuppressWarnings("unchecked")
  private static Map<String, Object> cel(Object o) {
    return (Map<String, Object>) longs(JSON.convertValue(o, Map.class));
  }

  private static Object longs(Object o) {
    if (o instanceof Integer i) {
      return i.longValue();
    }
    if (o instanceof Map<?, ?> m) {
      Map<Object, Object> out = new LinkedHashMap<>();
      m.forEach((k, v) -> out.put(k, longs(v)));
      return out;
    }
    if (o instanceof List<?> l) {
      return l.stream().map(AdmissionPoliciesTest::longs).toList();
    }
    return o;
  }
}
