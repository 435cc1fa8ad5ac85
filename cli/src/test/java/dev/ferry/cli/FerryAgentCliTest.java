// SPDX-License-Identifier: Apache-2.0
package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What a user who mistypes gets: the option named, how to fix it, exit 2; no call is made. */
class FerryAgentCliTest {
  private final ByteArrayOutputStream printed = new ByteArrayOutputStream();
  private final ByteArrayOutputStream complaints = new ByteArrayOutputStream();

  private int run(String... args) {
    printed.reset();
    complaints.reset();
    return FerryAgentCli.commandLine(
            new PrintStream(printed, true, StandardCharsets.UTF_8),
            new PrintStream(complaints, true, StandardCharsets.UTF_8))
        .execute(args);
  }

  private String err() {
    return complaints.toString(StandardCharsets.UTF_8);
  }

  @Test
  void withoutACommandItPrintsTheUsageAndExitsTwo() {
    assertThat(run()).isEqualTo(2);
    assertThat(err())
        .contains("a COMMAND is required")
        .contains("Usage: ferry-agent [-h] COMMAND")
        .contains("migrate")
        .contains("rollback");
  }

  @Test
  void helpIsAskedForAndExitsZero() {
    assertThat(run("--help")).isZero();
    assertThat(printed.toString(StandardCharsets.UTF_8))
        .contains("Usage: ferry-agent")
        .contains("connections")
        .contains("$FERRY_CERTS");
    assertThat(run("help", "migrate")).isZero();
    assertThat(printed.toString(StandardCharsets.UTF_8))
        .contains("--from-pod=POD")
        .contains("--hold-limit=SECONDS")
        .contains("certificates name their nodes");
  }

  @Test
  void mistakesNameTheOptionAndTheFix() {
    assertThat(run("teleport")).isEqualTo(2);
    assertThat(err()).contains("Unmatched argument at index 0: 'teleport'");
    assertThat(run("status", "--agent", "10.0.0.1:9443")).isEqualTo(2);
    assertThat(err()).contains("Missing required option: '--id=ID'");
    assertThat(run("status", "--id", "m", "--agent", "a:1", "--tiemout", "5")).isEqualTo(2);
    assertThat(err())
        .contains("Unknown options: '--tiemout', '5'")
        .contains("Possible solutions: --timeout");
    assertThat(run("status", "--id")).isEqualTo(2);
    assertThat(err()).contains("Missing required parameter for option '--id'");
    assertThat(run("connections", "--agent", "a:1", "--pod", "p", "--port", "80,99999"))
        .isEqualTo(2);
    assertThat(err())
        .contains("Invalid value for option '--port'")
        .contains("must be a port 1..65535, got '99999'");
    assertThat(run("connections", "--agent", "a:1", "--pod", "bad name")).isEqualTo(2);
    assertThat(err())
        .contains("Invalid value for option '--pod'")
        .contains("'bad name' is not a namespace name")
        .contains("uid:POD-UID");
    assertThat(run("address", "--agent", "a:1", "--op", "teleport", "--address", "x", "--pod", "p"))
        .isEqualTo(2);
    assertThat(err())
        .contains("Invalid value for option '--op'")
        .contains("[add, announce, remove]");
    assertThat(run("migrate", "--id", "m")).isEqualTo(2);
    assertThat(err()).contains("Missing required options").contains("'--port=N'");
    assertThat(
            run(
                "migrate",
                "--id",
                "m",
                "--from",
                "a:1",
                "--from-pod",
                "p",
                "--to",
                "b:1",
                "--to-pod",
                "q",
                "--port",
                "80",
                "--hold-limit",
                "9999",
                "--certs",
                "/nowhere"))
        .isEqualTo(2);
    assertThat(err()).contains("--hold-limit must be 0..3600, got 9999");
    assertThat(run("freeze", "--id", "m"))
        .as("the step-by-step commands are gone: the agents run a move with one call")
        .isEqualTo(2);
    assertThat(err()).contains("Unmatched arguments from index 0: 'freeze'");
  }

  @Test
  void aWrongAgentAddressOrMissingCertificatesAreNamed(@TempDir Path empty) {
    assertThat(run("status", "--id", "m", "--agent", "node-a")).isEqualTo(2);
    assertThat(err())
        .contains("Invalid value for option '--agent'")
        .contains("must be HOST:PORT")
        .contains("'node-a'");
    assertThat(run("status", "--id", "m", "--agent", "127.0.0.1:1", "--certs", empty.toString()))
        .as("no command line to fix: the certificates are missing")
        .isEqualTo(1);
    assertThat(err())
        .startsWith("ferry-agent: ")
        .contains(empty.resolve("ca.crt").toString())
        .contains("scripts/ferry-certs.sh")
        .doesNotContain("Usage:");
  }
}
