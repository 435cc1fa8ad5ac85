// SPDX-License-Identifier: Apache-2.0
package dev.ferry.example.streamer;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;

/**
 * One stream's progress and its simulated KV cache: what the model would need to go on. The
 * formulas and the handover layout are in examples/README.md, shared with the Python streamer.
 */
final class StreamState {
  private static final byte[] MAGIC = "FTS1".getBytes(StandardCharsets.US_ASCII);

  /** A token record: 'T', then u32 the index of a token written since the snapshot. */
  private static final byte TOKEN = 'T';

  private static final int RECORD = 5;
  private static final String[] WORDS =
      ("ferry moves live streams across nodes while clients keep reading tokens from spot"
              + " instances that vanish with two minutes notice and nothing is lost or repeated on"
              + " the way to its target")
          .split(" ");

  final String prompt;
  final int tokens;
  final int rate;
  private final byte[] kv;
  private int next;

  private StreamState(String prompt, int tokens, int rate, byte[] kv, int next) {
    this.prompt = prompt;
    this.tokens = tokens;
    this.rate = rate;
    this.kv = kv;
    this.next = next;
  }

  /** A new stream: the cache as the prompt's prefill leaves it. */
  static StreamState start(String prompt, int tokens, int rate, int kvBytes) {
    int seed = 0x811c9dc5;
    for (byte b : prompt.getBytes(StandardCharsets.UTF_8)) {
      seed = (seed ^ (b & 0xff)) * 0x01000193;
    }
    byte[] kv = new byte[kvBytes];
    for (int j = 0; j < kvBytes; j++) {
      kv[j] = (byte) (j * 131 + (seed >>> (8 * (j & 3))));
    }
    return new StreamState(prompt, tokens, rate, kv, 0);
  }

  int next() {
    return next;
  }

  boolean finished() {
    return next >= tokens;
  }

  /** Generates the next token, which reads and changes the cache, and returns its event. */
  byte[] nextEvent() {
    int i = next;
    int pos = (int) (((long) i * 4099) % kv.length);
    String word = WORDS[(kv[pos] & 0xff) % 32];
    advance();
    return ("data: {\"index\":" + i + ",\"token\":\"" + word + "\"}\n\n")
        .getBytes(StandardCharsets.UTF_8);
  }

  /** What token {@code next} does to the cache, without its event. */
  private void advance() {
    int i = next;
    int pos = (int) (((long) i * 4099) % kv.length);
    kv[pos] = (byte) ((kv[pos] & 0xff) + i + 1);
    next++;
  }

  /**
   * The token records of tokens {@code from} up to {@code to} (excluded): what a state encoded when
   * {@code next} was {@code from} needs appended to be this state, now that it is {@code to}.
   */
  static byte[] tokenRecords(int from, int to) {
    ByteBuffer b = ByteBuffer.allocate(RECORD * Math.max(0, to - from));
    for (int i = from; i < to; i++) {
      b.put(TOKEN).putInt(i);
    }
    return b.array();
  }

  byte[] encode() {
    byte[] p = prompt.getBytes(StandardCharsets.UTF_8);
    return ByteBuffer.allocate(4 + 12 + 2 + p.length + 8 + kv.length + 32)
        .put(MAGIC)
        .putInt(tokens)
        .putInt(next)
        .putInt(rate)
        .putShort((short) p.length)
        .put(p)
        .putLong(kv.length)
        .put(kv)
        .put(sha256(kv))
        .array();
  }

  /**
   * Reads a handed-over state and checks it whole.
   *
   * @throws IllegalArgumentException naming what is wrong; the takeover is then declined
   */
  static StreamState decode(byte[] blob) {
    try {
      ByteBuffer b = ByteBuffer.wrap(blob);
      byte[] magic = new byte[4];
      b.get(magic);
      if (!Arrays.equals(magic, MAGIC)) {
        throw new IllegalArgumentException("state does not start with FTS1: not a token stream");
      }
      int tokens = b.getInt();
      int next = b.getInt();
      int rate = b.getInt();
      byte[] p = new byte[b.getShort() & 0xffff];
      b.get(p);
      long kvLength = b.getLong();
      long records = b.remaining() - 32 - kvLength;
      if (kvLength < 1 || records < 0 || records % RECORD != 0) {
        throw new IllegalArgumentException(
            "KV cache length " + kvLength + " does not match the state's size " + blob.length);
      }
      byte[] kv = new byte[(int) kvLength];
      b.get(kv);
      byte[] sum = new byte[32];
      b.get(sum);
      if (!MessageDigest.isEqual(sum, sha256(kv))) {
        throw new IllegalArgumentException("KV cache checksum (SHA-256) does not match");
      }
      if (tokens < 1 || next < 0 || next > tokens || rate < 1) {
        throw new IllegalArgumentException(
            "progress is impossible: next " + next + " of " + tokens + " at rate " + rate);
      }
      StreamState state =
          new StreamState(new String(p, StandardCharsets.UTF_8), tokens, rate, kv, next);
      while (b.hasRemaining()) {
        byte tag = b.get();
        int index = b.getInt();
        if (tag != TOKEN || index != state.next || index >= tokens) {
          throw new IllegalArgumentException(
              "token record for " + index + " does not follow token " + (state.next - 1));
        }
        state.advance();
      }
      return state;
    } catch (BufferUnderflowException e) {
      throw new IllegalArgumentException("state is cut short at " + blob.length + " bytes");
    }
  }

  static byte[] sha256(byte[] data) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(data);
    } catch (NoSuchAlgorithmException impossible) {
      throw new AssertionError(impossible);
    }
  }

  @Override
  public String toString() {
    return "token " + next + " of " + tokens + ", KV cache " + kv.length + " bytes";
  }
}
