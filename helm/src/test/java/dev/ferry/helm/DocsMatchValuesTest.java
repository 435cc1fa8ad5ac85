// SPDX-License-Identifier: Apache-2.0
package dev.ferry.helm;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Every value that the templates read, that NOTES.txt names, and that helm/README.md sets or names
 * is one of values.yaml's: a renamed or removed value cannot linger in what users read.
 */
class DocsMatchValuesTest {
  private static final Pattern VALUES_REF = Pattern.compile("\\.Values\\.([A-Za-z0-9_.]+)");
  private static final Pattern DOTTED =
      Pattern.compile("(?<![\\w./-])([a-z][A-Za-z0-9]*(?:\\.[A-Za-z0-9]+)+)");
  private static final Pattern SET = Pattern.compile("--set ([A-Za-z0-9_.]+)=");
  private static final Pattern BACKTICKED =
      Pattern.compile("`([a-z][A-Za-z0-9]*(?:\\.[A-Za-z0-9]+)+)`");

  /**
   * Names in the README that are not the chart's values: keys of a MigrationRequest's
   * status.phaseMillis, and the value of trust-manager's own chart that applicationTrust needs.
   */
  private static final Set<String> NOT_VALUES =
      Set.of("agent.source.freeze", "agent.target.stage", "app.trust.namespace");

  private final JsonNode values = values();

  @Test
  void everyValueTheTemplatesReadIsInValuesYaml() throws IOException {
    List<String> missing = new ArrayList<>();
    try (Stream<Path> files = Files.list(Repo.chart().resolve("templates"))) {
      for (Path f : (Iterable<Path>) files.sorted()::iterator) {
        for (String name : matches(VALUES_REF, Files.readString(f))) {
          if (!exists(name)) {
            missing.add(f.getFileName() + ": .Values." + name);
          }
        }
      }
    }
    assertThat(missing).isEmpty();
  }

  @Test
  void everyValueNotesTxtNamesIsInValuesYaml() throws IOException {
    String notes = Files.readString(Repo.chart().resolve("templates/NOTES.txt"));
    Set<String> named = new TreeSet<>(matches(VALUES_REF, notes));
    named.addAll(valueLike(matches(DOTTED, notes)));
    assertThat(named).as("NOTES.txt names values").isNotEmpty();
    assertThat(named)
        .filteredOn(n -> !exists(n))
        .as("named in NOTES.txt, not in values.yaml")
        .isEmpty();
  }

  @Test
  void everyValueTheReadmeSetsOrNamesIsInValuesYaml() throws IOException {
    String readme = Files.readString(Repo.path("helm/README.md"));
    Set<String> named = new TreeSet<>(matches(SET, readme));
    named.addAll(valueLike(matches(BACKTICKED, readme)));
    named.removeAll(NOT_VALUES);
    assertThat(named).as("helm/README.md names values").hasSizeGreaterThan(10);
    assertThat(named)
        .filteredOn(n -> !exists(n))
        .as("named in helm/README.md, not in values.yaml")
        .isEmpty();
  }

  /**
   * docs/aws.md tells EKS users which chart values to set for their nodes (the hold's interfaces);
   * each one it names is one of values.yaml's.
   */
  @Test
  void everyValueDocsAwsMdSetsOrNamesIsInValuesYaml() throws IOException {
    String aws = Files.readString(Repo.path("docs/aws.md"));
    Set<String> named = new TreeSet<>(matches(SET, aws));
    named.addAll(valueLike(matches(BACKTICKED, aws)));
    assertThat(named).as("docs/aws.md names the agent's values").contains("agent.holdInterfaces");
    assertThat(named)
        .filteredOn(n -> !exists(n))
        .as("named in docs/aws.md, not in values.yaml")
        .isEmpty();
  }

  /** The names whose first part is a top-level value, as {@code certManager.enabled}. */
  private List<String> valueLike(List<String> names) {
    return names.stream().filter(n -> values.has(n.substring(0, n.indexOf('.')))).toList();
  }

  private boolean exists(String dotted) {
    JsonNode node = values;
    for (String part : dotted.split("\\.")) {
      if (node == null || !node.isObject() || !node.has(part)) {
        return false;
      }
      node = node.get(part);
    }
    return true;
  }

  private static List<String> matches(Pattern p, String text) {
    List<String> out = new ArrayList<>();
    Matcher m = p.matcher(text);
    while (m.find()) {
      out.add(m.group(1).replaceAll("\\.+$", ""));
    }
    return out;
  }

  private static JsonNode values() {
    try {
      return Manifests.yaml(Files.readString(Repo.chart().resolve("values.yaml")));
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }
}
