// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.store;

import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * Writes keys and values in the text format {@link java.util.Properties#load(java.io.InputStream)}
 * reads, as {@link java.util.Properties#store} would but without its date comment.
 *
 * <p>Why not {@code Properties.store}: its comment line is {@code new Date().toString()}, and the
 * first one in a JVM loads the time-zone names (CLDR), 25 ms on the 2-core test machine. A source
 * agent writes a migration's metadata while the clients are held, so every agent's first move as a
 * source paid those 25 ms in the clients' pause.
 */
final class PropertiesText {
  private PropertiesText() {}

  /** One {@code key=value} line per entry, in the map's order, ISO 8859-1 with \\u escapes. */
  static byte[] encode(Map<String, String> entries) {
    StringBuilder out = new StringBuilder();
    entries.forEach(
        (k, v) -> {
          escape(k, true, out);
          out.append('=');
          escape(v, false, out);
          out.append('\n');
        });
    return out.toString().getBytes(StandardCharsets.ISO_8859_1);
  }

  /**
   * The escapes of Properties.store: a backslash before the characters load would read as syntax
   * (separators, comment marks, a leading space in a value, every space in a key), control
   * characters by name, and anything outside printable ASCII as a unicode escape.
   */
  private static void escape(String s, boolean key, StringBuilder out) {
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '\\', '=', ':', '#', '!' -> out.append('\\').append(c);
        case ' ' -> out.append(key || i == 0 ? "\\ " : " ");
        case '\t' -> out.append("\\t");
        case '\n' -> out.append("\\n");
        case '\r' -> out.append("\\r");
        case '\f' -> out.append("\\f");
        default -> {
          if (c < 0x20 || c > 0x7e) {
            out.append("\\u");
            for (int shift = 12; shift >= 0; shift -= 4) {
              out.append(Character.forDigit((c >> shift) & 0xf, 16));
            }
          } else {
            out.append(c);
          }
        }
      }
    }
  }
}
