// SPDX-License-Identifier: Apache-2.0
package dev.ferry.cli;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A command's {@code --name value} flags. Every flag takes a value; a flag may repeat. Anything the
 * command did not ask for is an error, so a typo never passes silently.
 */
final class Flags {
  private final String command;
  private final Map<String, List<String>> values = new LinkedHashMap<>();

  private Flags(String command) {
    this.command = command;
  }

  /**
   * @param allowed the flags this command knows, without the dashes
   */
  static Flags parse(String command, List<String> args, Set<String> allowed) {
    Flags f = new Flags(command);
    for (int i = 0; i < args.size(); i++) {
      String arg = args.get(i);
      if (!arg.startsWith("--")) {
        throw new UsageException(command + ": unexpected argument '" + arg + "'");
      }
      String name = arg.substring(2);
      if (!allowed.contains(name)) {
        throw new UsageException(
            command
                + ": unknown option "
                + arg
                + " (known: --"
                + String.join(", --", allowed)
                + ")");
      }
      if (i + 1 >= args.size()) {
        throw new UsageException(command + ": " + arg + " needs a value");
      }
      f.values.computeIfAbsent(name, k -> new ArrayList<>()).add(args.get(++i));
    }
    return f;
  }

  String required(String name) {
    String v = optional(name, null);
    if (v == null) {
      throw new UsageException(command + ": --" + name + " is required");
    }
    return v;
  }

  String optional(String name, String otherwise) {
    List<String> v = values.get(name);
    if (v == null) {
      return otherwise;
    }
    if (v.size() > 1) {
      throw new UsageException(command + ": --" + name + " may be given once, got " + v);
    }
    return v.get(0);
  }

  List<String> all(String name) {
    return values.getOrDefault(name, List.of());
  }

  List<Integer> ports(String name) {
    List<Integer> ports = new ArrayList<>();
    for (String v : all(name)) {
      for (String one : v.split(",")) {
        ports.add(port(name, one.trim()));
      }
    }
    return ports;
  }

  int number(String name, int otherwise, int min, int max) {
    String v = optional(name, null);
    if (v == null) {
      return otherwise;
    }
    try {
      int n = Integer.parseInt(v);
      if (n >= min && n <= max) {
        return n;
      }
    } catch (NumberFormatException ignored) {
      // reported below
    }
    throw new UsageException(
        command + ": --" + name + " must be an integer " + min + ".." + max + ", got '" + v + "'");
  }

  private int port(String name, String v) {
    try {
      int n = Integer.parseInt(v);
      if (n >= 1 && n <= 65535) {
        return n;
      }
    } catch (NumberFormatException ignored) {
      // reported below
    }
    throw new UsageException(command + ": --" + name + " must be a port 1..65535, got '" + v + "'");
  }

  /** A command line the user must fix; the CLI prints it with the usage and exits 2. */
  static final class UsageException extends RuntimeException {
    UsageException(String message) {
      super(message);
    }
  }
}
