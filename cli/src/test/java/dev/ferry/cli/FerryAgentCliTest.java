// SPDX-License-Identifier: Apache-2.0
package dev.ferry.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What a user who mistypes gets: the flag named, and how to fix it; no call is made. */
class FerryAgentCliTest {
  private final ByteArrayOutputStream printed = new ByteArrayOutputStream();
  private final FerryAgentCli cli =
      new FerryAgentCli(new PrintStream(printed, true, StandardCharsets.UTF_8));

  @Test
  void withoutACommandItPrintsTheUsageAndExitsTwo() {
    assertThat(cli.run(List.of())).isEqualTo(2);
    assertThat(printed.toString(StandardCharsets.UTF_8)).contains("usage: ferry-agent COMMAND");
  }

  @Test
  void mistakesNameTheFlagAndTheFix() {
    assertThatThrownBy(() -> cli.run(List.of("teleport")))
        .hasMessageContaining("unknown command 'teleport'");
    assertThatThrownBy(() -> cli.run(List.of("status", "--agent", "10.0.0.1:9443")))
        .hasMessageContaining("--id is required");
    assertThatThrownBy(() -> cli.run(List.of("status", "--id", "m", "--agnet", "x")))
        .hasMessageContaining("unknown option --agnet");
    assertThatThrownBy(() -> cli.run(List.of("status", "--id")))
        .hasMessageContaining("--id needs a value");
    assertThatThrownBy(
            () ->
                cli.run(
                    List.of("connections", "--agent", "a:1", "--pod", "p", "--port", "80,99999")))
        .hasMessageContaining("--port must be a port 1..65535, got '99999'");
    assertThatThrownBy(() -> cli.run(List.of("connections", "--agent", "a:1", "--pod", "bad name")))
        .hasMessageContaining("--pod: 'bad name' is not a namespace name")
        .hasMessageContaining("uid:POD-UID");
    assertThatThrownBy(
            () ->
                cli.run(
                    List.of(
                        "address",
                        "--agent",
                        "a:1",
                        "--op",
                        "teleport",
                        "--address",
                        "x",
                        "--pod",
                        "p")))
        .hasMessageContaining("--op must be add, announce or remove");
    assertThatThrownBy(() -> cli.run(List.of("migrate", "--id", "m")))
        .hasMessageContaining("--port is required");
    assertThatThrownBy(() -> cli.run(List.of("freeze", "--id", "m")))
        .as("the step-by-step commands are gone: the agents run a move with one call")
        .hasMessageContaining("unknown command 'freeze'");
  }

  @Test
  void aWrongAgentAddressOrMissingCertificatesAreNamed(@TempDir Path empty) {
    assertThatThrownBy(() -> cli.run(List.of("status", "--id", "m", "--agent", "node-a")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("must be HOST:PORT")
        .hasMessageContaining("'node-a'");
    assertThatThrownBy(
            () ->
                cli.run(
                    List.of(
                        "status",
                        "--id",
                        "m",
                        "--agent",
                        "127.0.0.1:1",
                        "--certs",
                        empty.toString())))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(empty.resolve("ca.crt").toString())
        .hasMessageContaining("scripts/ferry-certs.sh");
  }
}
