// SPDX-License-Identifier: Apache-2.0
package dev.ferry.example.streamer;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;

/** {@code GET /v1/stream?prompt=…&tokens=N}, read from a client and checked. */
record StreamRequest(String prompt, int tokens) {
  static final int MAX_TOKENS = 1_000_000;
  private static final int MAX_HEAD = 8192;

  /** A request the server answers with {@code status} and a one-line reason. */
  static final class Rejected extends Exception {
    final int status;

    Rejected(int status, String reason) {
      super(reason);
      this.status = status;
    }
  }

  /** Reads the request head; null if the client closed before sending one. */
  static StreamRequest read(InputStream in) throws IOException, Rejected {
    ByteArrayOutputStream head = new ByteArrayOutputStream();
    int matched = 0;
    // Byte by byte: nothing after the head may be read, it is not ours to consume.
    while (matched < 4) {
      int b = in.read();
      if (b < 0) {
        return null;
      }
      head.write(b);
      matched = (b == "\r\n\r\n".charAt(matched)) ? matched + 1 : (b == '\r' ? 1 : 0);
      if (head.size() > MAX_HEAD) {
        throw new Rejected(431, "request head is over " + MAX_HEAD + " bytes");
      }
    }
    String line = head.toString(StandardCharsets.ISO_8859_1).split("\r\n", 2)[0];
    String[] parts = line.split(" ");
    if (parts.length != 3 || !parts[0].equals("GET")) {
      throw new Rejected(400, "expected 'GET /v1/stream?prompt=...&tokens=N HTTP/1.1'");
    }
    String target = parts[1];
    int q = target.indexOf('?');
    String path = q < 0 ? target : target.substring(0, q);
    if (!path.equals("/v1/stream")) {
      throw new Rejected(404, "no such path " + path + "; try /v1/stream?prompt=hello&tokens=100");
    }
    String prompt = "hello";
    String tokens = "100";
    if (q >= 0) {
      for (String pair : target.substring(q + 1).split("&")) {
        int eq = pair.indexOf('=');
        String key = eq < 0 ? pair : pair.substring(0, eq);
        String value;
        try {
          value = eq < 0 ? "" : URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8);
        } catch (IllegalArgumentException e) {
          throw new Rejected(400, "query parameter " + key + " is not URL-encoded: " + pair);
        }
        if (key.equals("prompt")) {
          prompt = value;
        } else if (key.equals("tokens")) {
          tokens = value;
        }
      }
    }
    int n;
    try {
      n = Integer.parseInt(tokens);
    } catch (NumberFormatException e) {
      n = -1;
    }
    if (n < 1 || n > MAX_TOKENS) {
      throw new Rejected(
          400, "tokens must be an integer 1.." + MAX_TOKENS + ", got '" + tokens + "'");
    }
    if (prompt.getBytes(StandardCharsets.UTF_8).length > 65535) {
      throw new Rejected(400, "prompt is over 65535 bytes");
    }
    return new StreamRequest(prompt, n);
  }
}
