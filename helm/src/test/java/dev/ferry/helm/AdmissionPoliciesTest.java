// SPDX-License-Identifier: Apache-2.0
package dev.ferry.helm;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.NullValue;
import dev.cel.common.types.SimpleType;
import dev.cel.compiler.CelCompiler;
import dev.cel.compiler.CelCompilerFactory;
import dev.cel.parser.CelStandardMacro;
import dev.cel.runtime.CelRuntime;
import dev.cel.runtime.CelRuntimeFactory;
import dev.ferry.helm.HelmChart.ValueSet;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerBuilder;
import io.fabric8.kubernetes.api.model.EphemeralContainer;
import io.fabric8.kubernetes.api.model.EphemeralContainerBuilder;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.SecurityContext;
import io.fabric8.kubernetes.api.model.SecurityContextBuilder;
import io.fabric8.kubernetes.api.model.VolumeBuilder;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.fabric8.kubernetes.api.model.VolumeMountBuilder;
import io.fabric8.kubernetes.api.model.admissionregistration.v1.ValidatingAdmissionPolicy;
import io.fabric8.kubernetes.api.model.admissionregistration.v1.ValidatingAdmissionPolicyBinding;
import io.fabric8.kubernetes.api.model.admissionregistration.v1.Validation;
import io.fabric8.kubernetes.api.model.admissionregistration.v1.Variable;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
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
 * refused with the policy's message, and nobody else's requests are matched at all. The handoff
 * policy keeps application pods from writing the host directory of the agent's handoff socket.
 */
class AdmissionPoliciesTest {
  private static final String AGENT = "system:serviceaccount:ferry-system:ferry-node-agent";
  private static final String OPERATOR = "system:serviceaccount:ferry-system:ferry-operator";
  private static final String NODE_NAME = "authentication.kubernetes.io/node-name";
  private static final String DEPLOYER = "system:serviceaccount:kube-system:replicaset-controller";
  private static final String DAEMON_SETS =
      "system:serviceaccount:kube-system:daemon-set-controller";
  private static final String DEBUGGER = "alice@example.com";

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
  private final ValidatingAdmissionPolicy handoff =
      chart.one(ValidatingAdmissionPolicy.class, "ferry-node-agent-handoff-read-only");
  private final ValidatingAdmissionPolicy requestDeletes =
      chart.one(ValidatingAdmissionPolicy.class, "ferry-operator-request-deletes");

  /** The fix the handoff policy's messages give, with the chart's default socketDir. */
  private static final String FIX =
      "mount hostPath /run/ferry read-only (readOnly: true); the agent's socket needs no write"
          + " access";

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
  void theOperatorDeletesOnlyAPolicysRequestThatEnded() {
    String refused =
        "the Ferry operator may delete only a MigrationRequest that a MigrationPolicy made (label"
            + " ferry.dev/policy) and that has ended";
    for (String ended : List.of("Completed", "RolledBack", "Failed")) {
      assertThat(deleteRequest(OPERATOR, migrationRequest(true, ended)))
          .as(ended)
          .hasValue(List.of());
    }
    assertThat(deleteRequest(OPERATOR, migrationRequest(false, "Completed")))
        .as("a person's request")
        .hasValue(List.of(refused));
    assertThat(deleteRequest(OPERATOR, migrationRequest(true, "Moving")))
        .as("under way")
        .hasValue(List.of(refused));
    assertThat(deleteRequest(OPERATOR, migrationRequest(true, null)))
        .as("no status yet")
        .hasValue(List.of(refused));
    // A person deleting a request is not this policy's business.
    assertThat(deleteRequest(DEBUGGER, migrationRequest(false, "Moving"))).isEmpty();
  }

  /** The request-deletes policy on a DELETE of {@code mr} by {@code username}. */
  private Optional<List<String>> deleteRequest(String username, Map<String, Object> mr) {
    Map<String, Object> request =
        request(
            username,
            "shop",
            "DELETE",
            Map.of("group", "ferry.dev", "version", "v1alpha1", "resource", "migrationrequests"),
            "");
    // At a DELETE the API server gives the object as it was in oldObject, and object null.
    return refusals(requestDeletes, request, null, mr);
  }

  /** A MigrationRequest as JSON: made by a policy or not, in {@code phase} (null: no status). */
  private static Map<String, Object> migrationRequest(boolean byPolicy, String phase) {
    Map<String, Object> metadata = new LinkedHashMap<>();
    metadata.put("name", "move-1");
    metadata.put("namespace", "shop");
    if (byPolicy) {
      metadata.put("labels", Map.of("ferry.dev/policy", "spot"));
    }
    Map<String, Object> mr = new LinkedHashMap<>();
    mr.put("apiVersion", "ferry.dev/v1alpha1");
    mr.put("kind", "MigrationRequest");
    mr.put("metadata", metadata);
    mr.put("spec", Map.of("source", Map.of("name", "pod-a")));
    if (phase != null) {
      mr.put("status", Map.of("phase", phase));
    }
    return mr;
  }

  @Test
  void eachPolicyIsBoundToDenyAndAllCanBeLeftOut() {
    assertThat(chart.all(ValidatingAdmissionPolicyBinding.class))
        .extracting(b -> b.getSpec().getPolicyName() + " " + b.getSpec().getValidationActions())
        .containsExactlyInAnyOrder(
            "ferry-node-agent-own-node [Deny]",
            "ferry-operator-pod-marks [Deny]",
            "ferry-operator-request-deletes [Deny]",
            "ferry-node-agent-handoff-read-only [Deny]");
    assertThat(ownNode.getSpec().getFailurePolicy()).isEqualTo("Fail");
    assertThat(podMarks.getSpec().getFailurePolicy()).isEqualTo("Fail");
    assertThat(requestDeletes.getSpec().getFailurePolicy()).isEqualTo("Fail");
    assertThat(handoff.getSpec().getFailurePolicy()).isEqualTo("Fail");
    Manifests without = HelmChart.renderWith("rbac: {admissionPolicies: false}");
    assertThat(without.all(ValidatingAdmissionPolicy.class)).isEmpty();
    assertThat(without.all(ValidatingAdmissionPolicyBinding.class)).isEmpty();
  }

  @Test
  void theHandoffPolicyJudgesPodsAsTheyAreCreatedAndAsContainersAreAddedToThem() {
    assertThat(handoff.getSpec().getMatchConstraints().getResourceRules())
        .singleElement()
        .satisfies(
            r -> {
              assertThat(r.getApiGroups()).containsExactly("");
              assertThat(r.getResources()).containsExactly("pods", "pods/ephemeralcontainers");
              assertThat(r.getOperations()).containsExactly("CREATE", "UPDATE");
            });
  }

  @Test
  void anApplicationMountsTheHandoffDirectoryReadOnly() {
    assertThat(create(appPod("/run/ferry", true))).hasValue(List.of());
    // The socket itself, or a directory below it, cannot replace the socket.
    assertThat(create(appPod("/run/ferry/handoff.sock", false))).hasValue(List.of());
  }

  @Test
  void readWriteIsRefusedNamingTheContainerTheVolumeAndTheFix() {
    String message =
        "container \"app\" mounts hostPath volume \"ferry\" (/run/ferry) read-write, where a"
            + " process could replace the Ferry agent's handoff socket with its own: "
            + FIX;

    assertThat(create(appPod("/run/ferry", null))).hasValue(List.of(message));
    assertThat(create(appPod("/run/ferry", false))).hasValue(List.of(message));
    // One read-write container is enough, beside read-only ones.
    assertThat(
            create(
                appPod(
                    "/run/ferry",
                    true,
                    p -> p.getSpec().getContainers().add(container("sidecar", false, null)))))
        .get()
        .asList()
        .singleElement()
        .asString()
        .startsWith("container \"sidecar\" mounts hostPath volume \"ferry\"")
        .endsWith(FIX);
  }

  @Test
  void aContainerThatCouldRemountTheDirectoryMayNotMountItEvenReadOnly() {
    for (var sc :
        List.<Consumer<Container>>of(
            c -> c.setSecurityContext(sc(true, null)),
            c -> c.setSecurityContext(sc(null, "SYS_ADMIN")),
            c -> c.setSecurityContext(sc(false, "CAP_SYS_ADMIN")),
            c -> c.setSecurityContext(sc(null, "sys_admin")),
            c -> c.setSecurityContext(sc(null, "ALL")))) {
      Map<String, Object> pod =
          appPod("/run/ferry", true, p -> sc.accept(p.getSpec().getContainers().get(0)));
      assertThat(create(pod))
          .describedAs("%s", pod)
          .get()
          .asList()
          .singleElement()
          .asString()
          .startsWith(
              "container \"app\" mounts hostPath volume \"ferry\" (/run/ferry) and is privileged"
                  + " or adds capability SYS_ADMIN, so it could remount it read-write")
          .endsWith("give it neither privileged nor SYS_ADMIN, and " + FIX);
    }
    // Read-write and privileged: both said.
    assertThat(
            create(
                appPod(
                    "/run/ferry",
                    false,
                    p -> p.getSpec().getContainers().get(0).setSecurityContext(sc(true, null)))))
        .get()
        .asList()
        .hasSize(2);
    // Other capabilities cannot remount it; nor can a privileged container that does not mount it
    // (Pod Security Admission's business: a privileged container is root on its node anyway).
    assertThat(
            create(
                appPod(
                    "/run/ferry",
                    true,
                    p -> {
                      p.getSpec().getContainers().get(0).setSecurityContext(sc(false, "NET_ADMIN"));
                      Container tool = container("tool", null, null);
                      tool.setVolumeMounts(List.of());
                      tool.setSecurityContext(sc(true, "SYS_ADMIN"));
                      p.getSpec().getContainers().add(tool);
                    })))
        .hasValue(List.of());
  }

  @Test
  void aHostPathAboveTheDirectoryCountsAsTheDirectory() {
    for (String path :
        List.of(
            "/run",
            "/",
            "/run/ferry/",
            "/run/",
            "//run//ferry",
            "/run/./ferry/.",
            "/./",
            // A symlink to /run on most distributions, which the kubelet follows.
            "/var/run/ferry",
            "/var/run")) {
      assertThat(create(appPod(path, false)))
          .describedAs(path)
          .get()
          .asList()
          .singleElement()
          .asString()
          .contains("mounts hostPath volume \"ferry\" (" + path + ") read-write")
          .endsWith(FIX);
      assertThat(create(appPod(path, true))).describedAs(path).hasValue(List.of());
    }
    // Beside it, below it, or named alike: not the socket's directory.
    for (String path :
        List.of(
            "/var/log", "/var", "/run/ferry2", "/run/ferry/sub", "/runx", "/run.", "/srv/run")) {
      assertThat(create(appPod(path, false))).describedAs(path).hasValue(List.of());
    }
  }

  @Test
  void initAndEphemeralContainersAreJudgedToo() {
    assertThat(
            create(
                appPod(
                    "/run/ferry",
                    true,
                    p -> p.getSpec().getInitContainers().add(container("setup", false, null)))))
        .get()
        .asList()
        .singleElement()
        .asString()
        .startsWith("container \"setup\" mounts hostPath volume \"ferry\"");
    assertThat(
            create(
                appPod(
                    "/run/ferry",
                    true,
                    p ->
                        p.getSpec()
                            .getEphemeralContainers()
                            .add(ephemeral("debugger", null, sc(null, "SYS_ADMIN"))))))
        .get()
        .asList()
        .hasSize(2)
        .allSatisfy(m -> assertThat(m).asString().startsWith("container \"debugger\""));
  }

  @Test
  void podsWithoutTheDirectoryAreNotAffected() {
    // No hostPath at all: not even evaluated.
    assertThat(create(pod(p -> {}))).isEmpty();
    Map<String, Object> logs =
        pod(
            p -> {
              p.getSpec()
                  .getVolumes()
                  .add(
                      new VolumeBuilder()
                          .withName("logs")
                          .withNewHostPath()
                          .withPath("/var/log")
                          .endHostPath()
                          .build());
              p.getSpec()
                  .getContainers()
                  .get(0)
                  .setVolumeMounts(
                      List.of(
                          new VolumeMountBuilder()
                              .withName("logs")
                              .withMountPath("/var/log")
                              .build()));
              p.getSpec().getContainers().get(0).setSecurityContext(sc(true, null));
            });
    assertThat(create(logs)).hasValue(List.of());
  }

  @Test
  void podsOfAnExemptNamespaceAreLeftAloneAndOnlyThose() {
    Map<String, Object> nodeTool = appPod("/", false);
    assertThat(createIn(handoff, "kube-system", nodeTool))
        .as("kube-system, exempt by default")
        .isEmpty();
    assertThat(createIn(handoff, "monitoring", nodeTool))
        .as("another namespace")
        .get()
        .asList()
        .isNotEmpty();

    ValidatingAdmissionPolicy listed =
        handoffPolicy("rbac:\n  handoffMountExemptNamespaces: [monitoring]");
    assertThat(createIn(listed, "monitoring", nodeTool)).isEmpty();
    assertThat(createIn(listed, "kube-system", nodeTool))
        .as("no longer listed")
        .get()
        .asList()
        .isNotEmpty();
    ValidatingAdmissionPolicy none = handoffPolicy("rbac:\n  handoffMountExemptNamespaces: []");
    assertThat(createIn(none, "kube-system", nodeTool)).get().asList().isNotEmpty();
  }

  /** {@code policy} on a pod CREATE in {@code namespace}. */
  private static Optional<List<String>> createIn(
      ValidatingAdmissionPolicy policy, String namespace, Map<String, Object> pod) {
    return refusals(policy, request(DEPLOYER, namespace, "CREATE", ""), pod, null);
  }

  /** The handoff policy as the chart renders it with {@code values}. */
  private static ValidatingAdmissionPolicy handoffPolicy(String values) {
    return HelmChart.renderWith(values)
        .one(ValidatingAdmissionPolicy.class, "ferry-node-agent-handoff-read-only");
  }

  @Test
  void theAgentsOwnPodIsAdmittedAndOnlyInItsNamespace() {
    for (ValueSet set : ValueSet.values()) {
      Manifests m = HelmChart.render(set);
      ValidatingAdmissionPolicy policy =
          m.one(ValidatingAdmissionPolicy.class, "ferry-node-agent-handoff-read-only");
      DaemonSet ds = m.one(DaemonSet.class, "ferry-node-agent");

      // As the DaemonSet controller creates it: the policy leaves it alone.
      assertThat(
              refusals(
                  policy,
                  request(DAEMON_SETS, HelmChart.NAMESPACE, "CREATE", ""),
                  agentPod(ds, HelmChart.NAMESPACE, null),
                  null))
          .describedAs("%s", set)
          .isEmpty();
      // The same pod elsewhere, under a ServiceAccount of that name in its own namespace, is
      // judged like any other: read-write and with SYS_ADMIN.
      assertThat(
              refusals(
                  policy,
                  request(DAEMON_SETS, "shop", "CREATE", ""),
                  agentPod(ds, "shop", null),
                  null))
          .describedAs("%s", set)
          .get()
          .asList()
          .hasSize(2)
          .allSatisfy(
              s -> assertThat(s).asString().startsWith("container \"node-agent\" mounts hostPath"));
      // And so is it in the release's namespace under another ServiceAccount.
      assertThat(
              refusals(
                  policy,
                  request(DAEMON_SETS, HelmChart.NAMESPACE, "CREATE", ""),
                  agentPod(ds, HelmChart.NAMESPACE, "default"),
                  null))
          .describedAs("%s", set)
          .get()
          .asList()
          .hasSize(2);
    }
  }

  @Test
  void anUpdateJudgesOnlyTheContainersItAdds() {
    // A pod created read-write before the policy keeps taking label changes (the operator's
    // eviction guard among them) and finalizer removals.
    Map<String, Object> before = appPod("/run/ferry", false);
    Map<String, Object> labelled =
        appPod(
            "/run/ferry", false, p -> p.getMetadata().getLabels().put("ferry.dev/migration", "1"));
    assertThat(refusals(handoff, request(OPERATOR, "shop", "UPDATE", ""), labelled, before))
        .hasValue(List.of());

    // kubectl debug adds an ephemeral container through pods/ephemeralcontainers.
    Map<String, Object> running = appPod("/run/ferry", true);
    Map<String, Object> debugRw =
        appPod(
            "/run/ferry",
            true,
            p -> p.getSpec().getEphemeralContainers().add(ephemeral("debugger", false, null)));
    Map<String, Object> debugRo =
        appPod(
            "/run/ferry",
            true,
            p -> p.getSpec().getEphemeralContainers().add(ephemeral("debugger", true, null)));
    Map<String, Object> debugPrivileged =
        appPod(
            "/run/ferry",
            true,
            p ->
                p.getSpec()
                    .getEphemeralContainers()
                    .add(ephemeral("debugger", true, sc(true, null))));
    Map<String, Object> debugging = request(DEBUGGER, "shop", "UPDATE", "ephemeralcontainers");

    assertThat(refusals(handoff, debugging, debugRw, running))
        .get()
        .asList()
        .singleElement()
        .asString()
        .startsWith(
            "container \"debugger\" mounts hostPath volume \"ferry\" (/run/ferry) read-write")
        .endsWith(FIX);
    assertThat(refusals(handoff, debugging, debugPrivileged, running))
        .get()
        .asList()
        .singleElement()
        .asString()
        .startsWith(
            "container \"debugger\" mounts hostPath volume \"ferry\" (/run/ferry) and is"
                + " privileged");
    assertThat(refusals(handoff, debugging, debugRo, running)).hasValue(List.of());
    // A second debugger beside a read-only one already there: only the new one is judged.
    Map<String, Object> twoDebuggers =
        appPod(
            "/run/ferry",
            true,
            p -> {
              p.getSpec().getEphemeralContainers().add(ephemeral("debugger", true, null));
              p.getSpec().getEphemeralContainers().add(ephemeral("debugger-2", null, null));
            });
    assertThat(refusals(handoff, debugging, twoDebuggers, debugRo))
        .get()
        .asList()
        .singleElement()
        .asString()
        .startsWith("container \"debugger-2\"");
  }

  @Test
  void aCustomSocketDirMovesThePolicyWithIt() {
    Manifests custom = HelmChart.renderWith("agent: {socketDir: /var/run/ferry-x}");
    ValidatingAdmissionPolicy policy =
        custom.one(ValidatingAdmissionPolicy.class, "ferry-node-agent-handoff-read-only");
    String fix =
        "mount hostPath /var/run/ferry-x read-only (readOnly: true); the agent's socket needs no"
            + " write access";

    for (String path :
        List.of(
            "/var/run/ferry-x",
            "/var/run/ferry-x/",
            "/var/run",
            "/var",
            "/",
            "/run/ferry-x",
            "/run")) {
      assertThat(
              refusals(policy, request(DEPLOYER, "shop", "CREATE", ""), appPod(path, false), null))
          .describedAs(path)
          .get()
          .asList()
          .singleElement()
          .asString()
          .contains("(" + path + ") read-write")
          .endsWith(fix);
      assertThat(
              refusals(policy, request(DEPLOYER, "shop", "CREATE", ""), appPod(path, true), null))
          .describedAs(path)
          .hasValue(List.of());
    }
    // The default's directory is no longer the socket's.
    assertThat(
            refusals(
                policy, request(DEPLOYER, "shop", "CREATE", ""), appPod("/run/ferry", false), null))
        .hasValue(List.of());
    assertThat(
            refusals(
                policy,
                request(DAEMON_SETS, HelmChart.NAMESPACE, "CREATE", ""),
                agentPod(
                    custom.one(DaemonSet.class, "ferry-node-agent"), HelmChart.NAMESPACE, null),
                null))
        .isEmpty();
  }

  /**
   * The messages of the validations that fail, as the API server evaluates a policy: empty when its
   * match conditions leave the request alone, else variables in order, then each validation. {@code
   * oldObject} is null for a CREATE, {@code object} for a DELETE.
   */
  private static Optional<List<String>> refusals(
      ValidatingAdmissionPolicy policy,
      Map<String, Object> request,
      Map<String, Object> object,
      Map<String, Object> oldObject) {
    Map<String, Object> vars = new HashMap<>();
    vars.put("request", request);
    // null at DELETE, and oldObject null at CREATE, as the API server gives them.
    vars.put("object", object == null ? NullValue.NULL_VALUE : object);
    vars.put("oldObject", oldObject == null ? NullValue.NULL_VALUE : oldObject);
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
        // The API server says messageExpression's result where there is one (message only if it
        // fails, which the tests count as a fault: it must work), on one line.
        String message =
            v.getMessageExpression() == null
                ? v.getMessage().trim()
                : (String) eval(v.getMessageExpression(), vars);
        assertThat(message).doesNotContain("\n").isNotBlank();
        out.add(message);
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

  /** The handoff policy on a tenant's pod CREATE. */
  private Optional<List<String>> create(Map<String, Object> pod) {
    return refusals(handoff, request(DEPLOYER, "shop", "CREATE", ""), pod, null);
  }

  /**
   * An admission request for a pod in {@code namespace}: {@code subResource} "" for the pod itself.
   */
  private static Map<String, Object> request(
      String username, String namespace, String operation, String subResource) {
    return request(
        username,
        namespace,
        operation,
        Map.of("group", "", "version", "v1", "resource", "pods"),
        subResource);
  }

  /** An admission request for an object of {@code resource} (group, version, resource). */
  private static Map<String, Object> request(
      String username,
      String namespace,
      String operation,
      Map<String, String> resource,
      String subResource) {
    return Map.of(
        "userInfo", Map.of("username", username, "extra", Map.of()),
        "namespace", namespace,
        "operation", operation,
        "resource", resource,
        "subResource", subResource);
  }

  /**
   * A tenant's pod whose container "app" mounts the hostPath {@code path} as volume "ferry" at
   * /run/ferry, with {@code readOnly} (null: left out).
   */
  private static Map<String, Object> appPod(String path, Boolean readOnly) {
    return appPod(path, readOnly, p -> {});
  }

  private static Map<String, Object> appPod(String path, Boolean readOnly, Consumer<Pod> change) {
    return pod(
        p -> {
          p.getSpec()
              .getVolumes()
              .add(
                  new VolumeBuilder()
                      .withName("ferry")
                      .withNewHostPath()
                      .withPath(path)
                      .withType("Directory")
                      .endHostPath()
                      .build());
          p.getSpec().getContainers().set(0, container("app", readOnly, null));
          change.accept(p);
        });
  }

  /** A container that mounts volume "ferry" at /run/ferry. */
  private static Container container(String name, Boolean readOnly, SecurityContext sc) {
    return new ContainerBuilder()
        .withName(name)
        .withImage("shop/streamer:1")
        .withVolumeMounts(ferryMount(readOnly))
        .withSecurityContext(sc)
        .build();
  }

  private static EphemeralContainer ephemeral(String name, Boolean readOnly, SecurityContext sc) {
    return new EphemeralContainerBuilder()
        .withName(name)
        .withImage("busybox:1")
        .withVolumeMounts(ferryMount(readOnly))
        .withSecurityContext(sc)
        .build();
  }

  private static VolumeMount ferryMount(Boolean readOnly) {
    return new VolumeMountBuilder()
        .withName("ferry")
        .withMountPath("/run/ferry")
        .withReadOnly(readOnly)
        .build();
  }

  /** A security context: {@code privileged} (null: left out), and one capability added. */
  private static SecurityContext sc(Boolean privileged, String add) {
    SecurityContextBuilder b = new SecurityContextBuilder().withPrivileged(privileged);
    if (add != null) {
      b.withNewCapabilities().withAdd(add).endCapabilities();
    }
    return b.build();
  }

  /**
   * A pod of the agent's DaemonSet as the chart renders it, in {@code namespace}, under the
   * ServiceAccount the DaemonSet names or {@code serviceAccount}.
   */
  private static Map<String, Object> agentPod(
      DaemonSet ds, String namespace, String serviceAccount) {
    Pod p =
        new PodBuilder()
            .withNewMetadata()
            .withName("ferry-node-agent-x7k2p")
            .withNamespace(namespace)
            .withLabels(ds.getSpec().getTemplate().getMetadata().getLabels())
            .endMetadata()
            .withSpec(ds.getSpec().getTemplate().getSpec())
            .build();
    assertThat(p.getSpec().getServiceAccountName()).isEqualTo("ferry-node-agent");
    Map<String, Object> pod = cel(p);
    if (serviceAccount != null) {
      @SuppressWarnings("unchecked")
      Map<String, Object> spec = (Map<String, Object>) pod.get("spec");
      spec.put("serviceAccountName", serviceAccount);
    }
    return pod;
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
