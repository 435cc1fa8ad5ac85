// SPDX-License-Identifier: Apache-2.0
package dev.ferry.helm;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.helm.HelmChart.ValueSet;
import dev.ferry.testbed.RbacCalls;
import dev.ferry.testbed.RbacCalls.Call;
import io.fabric8.kubernetes.api.model.ServiceAccount;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.rbac.ClusterRole;
import io.fabric8.kubernetes.api.model.rbac.ClusterRoleBinding;
import io.fabric8.kubernetes.api.model.rbac.PolicyRule;
import io.fabric8.kubernetes.api.model.rbac.Role;
import io.fabric8.kubernetes.api.model.rbac.RoleBinding;
import io.fabric8.kubernetes.api.model.rbac.RoleRef;
import io.fabric8.kubernetes.api.model.rbac.Subject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Least privilege, checked both ways against helm/rbac-calls.yaml, the list of every API call the
 * operator and the agent make: each call is allowed by the rules bound to its component's
 * ServiceAccount, and each rendered rule (group, resource, verb, where, which names) is needed by
 * some call.
 */
class RbacTest {
  private static final Path CALLS = Repo.path("helm/rbac-calls.yaml");
  private static final Map<String, String> SERVICE_ACCOUNTS = RbacCalls.SERVICE_ACCOUNTS;

  /** The conditions a call may be made under, each read from the rendered workloads (needs). */
  private static final List<String> WHEN = List.of("imds", "queue", "csi");

  /** One verb a rule grants: cluster-wide when namespace is null; on any name when names is. */
  record Grant(
      String component,
      String apiGroup,
      String resource,
      String verb,
      String namespace,
      Set<String> names,
      String from) {}

  /** One verb a call needs, in one place. */
  record Need(
      String component,
      String apiGroup,
      String resource,
      String verb,
      String scope,
      String namespace,
      String name,
      String where) {
    boolean clusterWide() {
      return !scope.equals("namespace");
    }
  }

  @Test
  void everyListedCallSaysWhereItIsMadeAndTheCodeStillMakesIt() throws IOException {
    for (Call c : calls()) {
      assertThat(c.component()).isIn(SERVICE_ACCOUNTS.keySet());
      assertThat(c.verbs()).isNotEmpty();
      assertThat(c.scope()).isIn("cluster", "all-namespaces", "namespace");
      if (c.when() != null) {
        assertThat(c.when()).as("%s %s: when", c.component(), c.resource()).isIn(WHEN);
      }
      assertThat(c.namespace() != null)
          .as("%s %s: a namespace exactly when the scope is namespace", c.component(), c.resource())
          .isEqualTo(c.scope().equals("namespace"));
      Path file = Repo.path(c.file());
      assertThat(file)
          .as("where %s %s %s is made", c.component(), c.verbs(), c.resource())
          .exists();
      assertThat(Files.readString(file))
          .as("%s still makes %s %s", c.file(), c.verbs(), c.resource())
          .contains(c.mark());
    }
  }

  @ParameterizedTest
  @EnumSource(ValueSet.class)
  void everyCallIsAllowed(ValueSet set) throws IOException {
    List<Grant> grants = grants(set);
    List<Need> needs = needs(set);
    assertThat(needs).isNotEmpty();
    List<String> refused = new ArrayList<>();
    for (Need n : needs) {
      if (grants.stream().noneMatch(g -> allows(g, n))) {
        refused.add(n.toString());
      }
    }
    assertThat(refused).as("calls the chart's RBAC refuses (%s)", set).isEmpty();
  }

  @ParameterizedTest
  @EnumSource(ValueSet.class)
  void everyRuleIsNeededByACall(ValueSet set) throws IOException {
    List<Need> needs = needs(set);
    List<String> extra = new ArrayList<>();
    for (Grant g : grants(set)) {
      if (!needed(g, needs)) {
        extra.add(g.toString());
      }
    }
    assertThat(extra).as("rights no listed call needs (%s)", set).isEmpty();
  }

  @ParameterizedTest
  @EnumSource(ValueSet.class)
  void rulesNameNoWildcardAndBindingsOnlyTheChartsRoles(ValueSet set) {
    Manifests m = HelmChart.render(set);
    List<PolicyRule> rules = new ArrayList<>();
    m.all(ClusterRole.class).forEach(r -> rules.addAll(r.getRules()));
    m.all(Role.class).forEach(r -> rules.addAll(r.getRules()));
    assertThat(rules)
        .allSatisfy(
            r -> {
              assertThat(r.getApiGroups()).doesNotContain("*");
              assertThat(r.getResources()).isNotEmpty().doesNotContain("*");
              assertThat(r.getVerbs()).isNotEmpty().doesNotContain("*");
              assertThat(r.getNonResourceURLs()).isEmpty();
            });
    for (ClusterRoleBinding b : m.all(ClusterRoleBinding.class)) {
      assertThat(b.getRoleRef().getKind()).isEqualTo("ClusterRole");
      m.one(ClusterRole.class, b.getRoleRef().getName());
    }
    for (RoleBinding b : m.all(RoleBinding.class)) {
      if (b.getRoleRef().getKind().equals("Role")) {
        Role r = m.one(Role.class, b.getRoleRef().getName());
        assertThat(r.getMetadata().getNamespace()).isEqualTo(b.getMetadata().getNamespace());
      } else {
        m.one(ClusterRole.class, b.getRoleRef().getName());
      }
    }
  }

  @Test
  void anAgentWithoutTheMetadataWatchGetsNoRights() throws IOException {
    assertThat(grants(ValueSet.L2)).noneMatch(g -> g.component().equals("node-agent"));
    assertThat(grants(ValueSet.AWS)).anyMatch(g -> g.component().equals("node-agent"));
  }

  /**
   * An agent whose certificate is its own (certManager.csiDriver) may read pods of its own
   * namespace, to learn a calling agent's node; with the shared certificate it reads no pod.
   */
  @ParameterizedTest
  @EnumSource(ValueSet.class)
  void onlyAnAgentWithItsOwnCertificateMayGetPodsAndOnlyInItsNamespace(ValueSet set) {
    List<String> pods =
        grants(set).stream()
            .filter(g -> g.component().equals("node-agent") && g.resource().equals("pods"))
            .map(g -> g.verb() + " in " + g.namespace() + " names " + g.names())
            .toList();
    if (set == ValueSet.CSI_DRIVER) {
      assertThat(pods).containsExactly("get in " + HelmChart.NAMESPACE + " names null");
      assertThat(grants(set))
          .as("no other right: the metadata watch is off with the l2 mover")
          .filteredOn(g -> g.component().equals("node-agent"))
          .hasSize(1);
    } else {
      assertThat(pods).isEmpty();
    }
  }

  private static boolean allows(Grant g, Need n) {
    return g.component().equals(n.component())
        && g.apiGroup().equals(n.apiGroup())
        && g.resource().equals(n.resource())
        && g.verb().equals(n.verb())
        && (g.namespace() == null || (!n.clusterWide() && g.namespace().equals(n.namespace())))
        && (g.names() == null || (n.name() != null && g.names().contains(n.name())));
  }

  /**
   * A rule is needed when some call needs its verb where it grants it: a cluster-wide rule by a
   * cluster-wide call (a call in one namespace wants a Role there), a rule on any name by a call
   * that names none, a rule on names by calls on each of them.
   */
  private static boolean needed(Grant g, List<Need> needs) {
    List<Need> same =
        needs.stream()
            .filter(
                n ->
                    n.component().equals(g.component())
                        && n.apiGroup().equals(g.apiGroup())
                        && n.resource().equals(g.resource())
                        && n.verb().equals(g.verb())
                        && (g.namespace() == null
                            ? n.clusterWide()
                            : !n.clusterWide() && g.namespace().equals(n.namespace())))
            .toList();
    if (g.names() == null) {
      return same.stream().anyMatch(n -> n.name() == null);
    }
    Set<String> named =
        same.stream().map(Need::name).filter(Objects::nonNull).collect(Collectors.toSet());
    return !g.names().isEmpty() && named.containsAll(g.names());
  }

  /** Every call helm/rbac-calls.yaml lists, read as the tests' API server reads them. */
  static List<Call> calls() throws IOException {
    return RbacCalls.read(CALLS).calls();
  }

  /** The value of {@code name} in the environment of the DaemonSet's first container. */
  private static String env(DaemonSet d, String name) {
    return Manifests.env(d.getSpec().getTemplate().getSpec().getContainers().get(0).getEnv(), name);
  }

  /** The value of {@code name} in the environment of the Deployment's first container. */
  private static String env(Deployment d, String name) {
    return Manifests.env(d.getSpec().getTemplate().getSpec().getContainers().get(0).getEnv(), name);
  }

  /** The calls that apply with {@code set}'s values, one per verb. */
  private static List<Need> needs(ValueSet set) throws IOException {
    Manifests m = HelmChart.render(set);
    boolean imds =
        "true".equals(env(m.one(DaemonSet.class, "ferry-node-agent"), "FERRY_AGENT_IMDS_ENABLED"));
    boolean queue =
        "true"
            .equals(env(m.one(Deployment.class, "ferry-operator"), "FERRY_OPERATOR_QUEUE_ENABLED"));
    boolean csi =
        "required"
            .equals(env(m.one(DaemonSet.class, "ferry-node-agent"), "FERRY_AGENT_PEER_IDENTITY"));
    String lease =
        env(m.one(Deployment.class, "ferry-operator"), "FERRY_OPERATOR_LEADER_ELECTION_LEASE_NAME");
    List<Need> out = new ArrayList<>();
    for (Call c : calls()) {
      if (c.grantedBy() != null
          || ("imds".equals(c.when()) && !imds)
          || ("queue".equals(c.when()) && !queue)
          || ("csi".equals(c.when()) && !csi)) {
        continue;
      }
      String ns = "release".equals(c.namespace()) ? HelmChart.NAMESPACE : c.namespace();
      String name = c.name();
      if (name != null && c.resource().equals("leases")) {
        assertThat(name).as("the Lease the chart names").isEqualTo(lease);
      }
      for (String verb : c.verbs()) {
        out.add(
            new Need(
                c.component(), c.apiGroup(), c.resource(), verb, c.scope(), ns, name, c.file()));
      }
    }
    return out;
  }

  /** Every verb the rendered bindings give each component's ServiceAccount. */
  private static List<Grant> grants(ValueSet set) {
    Manifests m = HelmChart.render(set);
    assertThat(m.all(ServiceAccount.class))
        .extracting(sa -> sa.getMetadata().getName())
        .containsExactlyInAnyOrderElementsOf(SERVICE_ACCOUNTS.values());
    List<Grant> out = new ArrayList<>();
    for (Map.Entry<String, String> sa : SERVICE_ACCOUNTS.entrySet()) {
      for (ClusterRoleBinding b : m.all(ClusterRoleBinding.class)) {
        if (binds(b.getSubjects(), sa.getValue())) {
          add(
              out,
              sa.getKey(),
              null,
              rules(m, b.getRoleRef(), null),
              "ClusterRoleBinding/" + b.getMetadata().getName());
        }
      }
      for (RoleBinding b : m.all(RoleBinding.class)) {
        if (binds(b.getSubjects(), sa.getValue())) {
          String ns = b.getMetadata().getNamespace();
          add(
              out,
              sa.getKey(),
              ns,
              rules(m, b.getRoleRef(), ns),
              "RoleBinding/" + ns + "/" + b.getMetadata().getName());
        }
      }
    }
    // No binding names a ServiceAccount the chart does not make.
    for (ClusterRoleBinding b : m.all(ClusterRoleBinding.class)) {
      assertThat(b.getSubjects()).allMatch(s -> SERVICE_ACCOUNTS.containsValue(s.getName()));
    }
    for (RoleBinding b : m.all(RoleBinding.class)) {
      assertThat(b.getSubjects()).allMatch(s -> SERVICE_ACCOUNTS.containsValue(s.getName()));
    }
    return out;
  }

  private static boolean binds(List<Subject> subjects, String serviceAccount) {
    return subjects.stream()
        .anyMatch(
            s ->
                s.getKind().equals("ServiceAccount")
                    && s.getName().equals(serviceAccount)
                    && HelmChart.NAMESPACE.equals(s.getNamespace()));
  }

  private static List<PolicyRule> rules(Manifests m, RoleRef ref, String namespace) {
    if (ref.getKind().equals("ClusterRole")) {
      return m.one(ClusterRole.class, ref.getName()).getRules();
    }
    Role r = m.one(Role.class, ref.getName());
    assertThat(r.getMetadata().getNamespace()).isEqualTo(namespace);
    return r.getRules();
  }

  private static void add(
      List<Grant> out, String component, String namespace, List<PolicyRule> rules, String from) {
    for (PolicyRule r : rules) {
      Set<String> names = r.getResourceNames().isEmpty() ? null : Set.copyOf(r.getResourceNames());
      for (String group : r.getApiGroups()) {
        for (String resource : r.getResources()) {
          for (String verb : r.getVerbs()) {
            out.add(new Grant(component, group, resource, verb, namespace, names, from));
          }
        }
      }
    }
  }
}
