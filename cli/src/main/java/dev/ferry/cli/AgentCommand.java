// SPDX-License-Identifier: Apache-2.0
package dev.ferry.cli;

import dev.ferry.api.client.AgentChannels;
import dev.ferry.api.client.AgentClient;
import dev.ferry.api.client.CallerTls;
import dev.ferry.api.client.TlsFiles;
import dev.ferry.api.v1alpha1.PodRef;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;
import picocli.CommandLine.TypeConversionException;

/**
 * What every command shares: where its results go, the caller's certificates and the timeout of
 * each call to an agent. A command returns its exit code: 0 done, 1 the agents refused or rolled
 * back.
 */
abstract class AgentCommand implements Callable<Integer> {
  /** One run of the CLI: its output, and one TLS context for every agent it talks to. */
  static final class Session {
    final PrintStream out;
    private CallerTls tls;

    Session(PrintStream out) {
      this.out = out;
    }
  }

  @Spec CommandSpec spec;

  @Option(
      names = {"-h", "--help"},
      usageHelp = true,
      description = "Prints this command's help.")
  boolean help;

  @Option(
      names = "--certs",
      paramLabel = "DIR",
      description = "ca.crt, NAME.crt and NAME.key; default $FERRY_CERTS, else /etc/ferry/tls")
  String certs;

  @Option(
      names = "--as",
      paramLabel = "NAME",
      defaultValue = "admin",
      description = "whose certificate in DIR to call with (default: ${DEFAULT-VALUE})")
  String as;

  @Option(
      names = "--timeout",
      paramLabel = "SECONDS",
      defaultValue = "30",
      description = "how long each call to an agent may take, 1..3600 (default: ${DEFAULT-VALUE})")
  int timeout;

  final Session session;

  AgentCommand(Session session) {
    this.session = session;
  }

  PrintStream out() {
    return session.out;
  }

  /** A client of the agent at {@code target} (HOST:PORT, checked by {@link AgentAddress}). */
  AgentClient agent(String target) {
    Duration each = Duration.ofSeconds(within("--timeout", timeout, 1, 3600));
    if (session.tls == null) {
      String dir =
          certs != null ? certs : System.getenv().getOrDefault("FERRY_CERTS", "/etc/ferry/tls");
      session.tls = CallerTls.of(TlsFiles.inDirectory(Path.of(dir), as));
    }
    return new AgentClient(target, session.tls, each);
  }

  /** {@code value} if it lies in {@code min..max}; else a mistake that names {@code option}. */
  int within(String option, int value, int min, int max) {
    if (value < min || value > max) {
      throw mistake(option + " must be " + min + ".." + max + ", got " + value);
    }
    return value;
  }

  /** A command line to fix: picocli prints {@code message} with the usage, and exits 2. */
  ParameterException mistake(String message) {
    return new ParameterException(spec.commandLine(), message);
  }

  /** An agent's address, HOST:PORT. */
  static final class AgentAddress implements ITypeConverter<String> {
    @Override
    public String convert(String value) {
      try {
        return AgentChannels.checkTarget(value);
      } catch (IllegalArgumentException e) {
        throw new TypeConversionException(e.getMessage());
      }
    }
  }

  /** A TCP port, 1..65535; a list of them is split at commas. */
  static final class Port implements ITypeConverter<Integer> {
    @Override
    public Integer convert(String value) {
      try {
        int n = Integer.parseInt(value.trim());
        if (n >= 1 && n <= 65535) {
          return n;
        }
      } catch (NumberFormatException ignored) {
        // reported below
      }
      throw new TypeConversionException("must be a port 1..65535, got '" + value + "'");
    }
  }

  /** A pod, as {@link Pods} reads it. */
  static final class Pod implements ITypeConverter<PodRef> {
    @Override
    public PodRef convert(String value) {
      try {
        return Pods.parse(value);
      } catch (IllegalArgumentException e) {
        throw new TypeConversionException(e.getMessage());
      }
    }
  }
}
