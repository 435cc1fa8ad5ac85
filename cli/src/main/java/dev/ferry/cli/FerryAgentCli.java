// SPDX-License-Identifier: Apache-2.0
package dev.ferry.cli;

import dev.ferry.api.client.AgentClient;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code ferry-agent}: drives node-agents over their API, without Kubernetes. Exit codes: 0 done, 1
 * the agents refused or the migration was rolled back, 2 a command line to fix (picocli's parser
 * names the option and prints the usage).
 */
@Command(
    name = "ferry-agent",
    synopsisSubcommandLabel = "COMMAND",
    description = "Drives Ferry's node-agents over their mutual-TLS API, without Kubernetes.",
    footer = {
      "%nEach command takes --certs DIR, --as NAME and --timeout SECONDS. DIR is where the"
          + " caller's certificates are (ca.crt, NAME.crt and NAME.key, as"
          + " scripts/ferry-certs.sh writes them): $FERRY_CERTS if not given, else"
          + " /etc/ferry/tls. NAME is admin if not given.",
      "%nExit codes: 0 done; 1 the agents refused, or the migration was rolled back; 2 a command"
          + " line to fix."
    })
public final class FerryAgentCli implements Runnable {
  @Spec private CommandSpec spec;

  @Option(
      names = {"-h", "--help"},
      usageHelp = true,
      description = "Prints this help; `ferry-agent help COMMAND` prints a command's.")
  private boolean help;

  public static void main(String[] args) {
    System.exit(commandLine(System.out, System.err).execute(args));
  }

  /**
   * The command line with its commands, printing results to {@code out} and mistakes, with the
   * usage, to {@code err}.
   */
  static CommandLine commandLine(PrintStream out, PrintStream err) {
    AgentCommand.Session session = new AgentCommand.Session(out);
    CommandLine cli =
        new CommandLine(new FerryAgentCli())
            .addSubcommand(new AgentCommands.Connections(session))
            .addSubcommand(new AgentCommands.Migrate(session))
            .addSubcommand(new AgentCommands.Rollback(session))
            .addSubcommand(new AgentCommands.Status(session))
            .addSubcommand(new AgentCommands.Address(session))
            .addSubcommand(new CommandLine.HelpCommand());
    cli.setOut(new PrintWriter(out, true, StandardCharsets.UTF_8));
    cli.setErr(new PrintWriter(err, true, StandardCharsets.UTF_8));
    cli.setCaseInsensitiveEnumValuesAllowed(true);
    // An agent that refuses, or a certificate that cannot be read, is no command line to fix: its
    // message alone, exit 1, no stack trace.
    cli.setExecutionExceptionHandler(
        (e, line, parsed) -> {
          if (e instanceof AgentClient.Failed || e instanceof IllegalArgumentException) {
            line.getErr().println("ferry-agent: " + e.getMessage());
            return 1;
          }
          throw e;
        });
    return cli;
  }

  @Override
  public void run() {
    throw new ParameterException(spec.commandLine(), "a COMMAND is required");
  }
}
