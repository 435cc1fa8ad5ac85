// SPDX-License-Identifier: Apache-2.0
package dev.ferry.e2e.bench;

import java.nio.charset.StandardCharsets;

/**
 * The bytes a token stream must carry, computed on the client from examples/README.md (prompt,
 * token count and KV cache size), independently of the servers: every byte a client receives is
 * checked against it, so a token lost, repeated, reordered or generated from a wrong cache fails
 * the stream. Allocation-free after construction: it runs for every byte of up to 10,000 streams.
 */
final class TokenOracle {
  static final byte[] HEAD =
      ("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
              + "Connection: close\r\n\r\n")
          .getBytes(StandardCharsets.US_ASCII);
  private static final byte[] DONE = "data: [DONE]\n\n".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] PREFIX = "data: {\"index\":".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] MIDDLE = ",\"token\":\"".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] SUFFIX = "\"}\n\n".getBytes(StandardCharsets.US_ASCII);
  private static final byte[][] WORDS;

  static {
    String[] words =
        ("ferry moves live streams across nodes while clients keep reading tokens from spot"
                + " instances that vanish with two minutes notice and nothing is lost or repeated"
                + " on the way to its target")
            .split(" ");
    WORDS = new byte[words.length][];
    for (int i = 0; i < words.length; i++) {
      WORDS[i] = words[i].getBytes(StandardCharsets.US_ASCII);
    }
  }

  /** What {@link #accept} found in a byte. */
  enum Step {
    /** The byte is the expected one, inside the head or an event. */
    MORE,
    /** The byte is the expected one and ends a token event ({@link #lastIndex()}). */
    TOKEN,
    /** The byte is the expected one and ends {@code data: [DONE]}: nothing may follow. */
    DONE,
    /** Not the expected byte: see {@link #mismatch()}. */
    WRONG
  }

  private final String prompt;
  private final int tokens;
  private final byte[] kv;
  private final byte[] chunk = new byte[128];
  private int chunkLength;
  private int chunkPos;
  private int next; // the index of the token whose event is in chunk (or comes next)
  private boolean inHead;
  private boolean done;
  private String mismatch;

  TokenOracle(String prompt, int tokens, int kvBytes) {
    this.prompt = prompt;
    this.tokens = tokens;
    this.kv = new byte[kvBytes];
    restart();
  }

  /** A new request for the same prompt: the head again, then token 0 from a fresh cache. */
  void restart() {
    int seed = 0x811c9dc5; // FNV-1a 32-bit of the prompt's UTF-8 bytes
    for (byte b : prompt.getBytes(StandardCharsets.UTF_8)) {
      seed = (seed ^ (b & 0xff)) * 0x01000193;
    }
    for (int j = 0; j < kv.length; j++) {
      kv[j] = (byte) (j * 131 + (seed >>> (8 * (j & 3))));
    }
    next = 0;
    inHead = true;
    done = false;
    mismatch = null;
    chunkPos = 0;
    chunkLength = 0;
  }

  /** Checks one received byte against the stream. */
  Step accept(byte got) {
    if (done) {
      mismatch = "a byte after data: [DONE]";
      return Step.WRONG;
    }
    byte want;
    if (inHead) {
      want = HEAD[chunkPos];
    } else {
      if (chunkPos == chunkLength) {
        fill();
      }
      want = chunk[chunkPos];
    }
    if (got != want) {
      mismatch =
          String.format(
              "%s: byte %d is '%s', expected '%s'",
              inHead ? "response head" : (next < tokens ? "event " + next : "data: [DONE]"),
              chunkPos,
              printable(got),
              printable(want));
      return Step.WRONG;
    }
    chunkPos++;
    if (inHead) {
      if (chunkPos == HEAD.length) {
        inHead = false;
        chunkPos = 0;
        chunkLength = 0;
      }
      return Step.MORE;
    }
    if (chunkPos < chunkLength) {
      return Step.MORE;
    }
    if (next >= tokens) {
      done = true;
      return Step.DONE;
    }
    next++;
    chunkPos = 0;
    chunkLength = 0;
    return Step.TOKEN;
  }

  /** The index of the last token whose event was received whole; -1 before the first. */
  int lastIndex() {
    return next - 1;
  }

  /** True once the head and at least one whole byte of the stream's end were received. */
  boolean finished() {
    return done;
  }

  String mismatch() {
    return mismatch;
  }

  /** Generates token {@code next}'s event (or [DONE]) into chunk, updating the cache. */
  private void fill() {
    chunkPos = 0;
    if (next >= tokens) {
      System.arraycopy(DONE, 0, chunk, 0, DONE.length);
      chunkLength = DONE.length;
      return;
    }
    int i = next;
    int pos = (int) (((long) i * 4099) % kv.length);
    byte[] word = WORDS[(kv[pos] & 0xff) % 32];
    kv[pos] = (byte) ((kv[pos] & 0xff) + i + 1);
    int n = put(PREFIX, 0);
    n = putDecimal(i, n);
    n = put(MIDDLE, n);
    n = put(word, n);
    chunkLength = put(SUFFIX, n);
  }

  private int put(byte[] bytes, int at) {
    System.arraycopy(bytes, 0, chunk, at, bytes.length);
    return at + bytes.length;
  }

  private int putDecimal(int value, int at) {
    int digits = 1;
    for (int v = value; v >= 10; v /= 10) {
      digits++;
    }
    for (int d = digits - 1, v = value; d >= 0; d--, v /= 10) {
      chunk[at + d] = (byte) ('0' + v % 10);
    }
    return at + digits;
  }

  private static String printable(byte b) {
    return b >= 32 && b < 127 ? String.valueOf((char) b) : String.format("\\x%02x", b & 0xff);
  }
}
