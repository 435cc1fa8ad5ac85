// SPDX-License-Identifier: Apache-2.0
package dev.ferry.example.streamer;

import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

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

  /** How much of the cache a snapshot copies at a time, its writer held off meanwhile. */
  private static final int SNAPSHOT_CHUNK = 1 << 20;

  final String prompt;
  final int tokens;
  final int rate;
  private final byte[] kv;
  private int next;

  /**
   * While a {@link Snapshot} is being taken: each byte of the cache a token changed since it began,
   * with the value it had then (the first change of a byte is the one kept). Guarded by {@link
   * #kv}, as are the cache's bytes while it is being taken.
   */
  private Map<Integer, Byte> before;

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

  /**
   * This stream at another rate, from its next token on. It shares the cache: the caller goes on
   * with the one returned and drops this one.
   */
  StreamState at(int tokensPerSecond) {
    return new StreamState(prompt, tokens, tokensPerSecond, kv, next);
  }

  /**
   * Begins a snapshot of this state as it is now, between two tokens, without copying the cache:
   * the tokens that follow keep the bytes they overwrite until the snapshot has its copy. A cache
   * of a gibibyte cloned between two events held the stream's client for 2–3 s; this takes a
   * moment, and the copy is made on the caller's thread, a megabyte at a time, while the stream
   * goes on. One snapshot at a time.
   */
  Snapshot snapshot() {
    synchronized (kv) {
      if (before != null) {
        throw new IllegalStateException("a snapshot of this stream is being taken already");
      }
      before = new HashMap<>();
      return new Snapshot(next);
    }
  }

  /** This state as it was when {@link #snapshot} began. */
  final class Snapshot {
    private final int at;

    private Snapshot(int at) {
      this.at = at;
    }

    /** The token the snapshot was taken before. */
    int next() {
      return at;
    }

    /** Encodes the state as {@link #encode} would have when the snapshot began; then ends it. */
    byte[] encode() {
      byte[] p = prompt.getBytes(StandardCharsets.UTF_8);
      int head = 4 + 12 + 2 + p.length + 8;
      byte[] out = new byte[head + kv.length + 32];
      ByteBuffer.wrap(out)
          .put(MAGIC)
          .putInt(tokens)
          .putInt(at)
          .putInt(rate)
          .putShort((short) p.length)
          .put(p)
          .putLong(kv.length);
      try {
        for (int off = 0; off < kv.length; off += SNAPSHOT_CHUNK) {
          int n = Math.min(SNAPSHOT_CHUNK, kv.length - off);
          synchronized (kv) {
            System.arraycopy(kv, off, out, head + off, n);
          }
        }
        synchronized (kv) {
          // A byte copied after a token changed it gets its old value back; one copied before
          // holds that value already.
          before.forEach((pos, old) -> out[head + pos] = old);
        }
      } finally {
        synchronized (kv) {
          before = null;
        }
      }
      System.arraycopy(sha256(out, head, kv.length), 0, out, head + kv.length, 32);
      return out;
    }
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
    synchronized (kv) {
      if (before != null) {
        before.putIfAbsent(pos, kv[pos]);
      }
      kv[pos] = (byte) ((kv[pos] & 0xff) + i + 1);
    }
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

  /**
   * Reads a handed-over state as it arrives, in pieces of any size: the KV cache goes straight into
   * its array and through SHA-256, the checksum is checked as soon as its 32 bytes are in, and
   * token records are applied as they come. Given the blob's length up front, it accepts exactly
   * the blobs {@link #decode} accepts, with the same state, and refuses the others (the reasons may
   * be worded differently).
   *
   * <p>The length may also be announced part by part ({@link #more}): the KV cache, its array made
   * as soon as its length is read, must then lie within the bytes announced so far. A state whose
   * cache runs past the part that holds its head is refused here (no streamer hands one ahead);
   * refused ahead of the takeover, it arrives whole at the takeover and meets decode.
   */
  static final class Intake {
    /** Magic, tokens, next, rate, then u16 the prompt's length. */
    private static final int FIXED = 4 + 12 + 2;

    private byte[] head = new byte[FIXED]; // the part before the KV cache
    private int headFilled;
    private byte[] kv; // once its length is known
    private int kvFilled;
    private MessageDigest digest;
    private final byte[] sum = new byte[32];
    private int sumFilled;
    private StreamState state; // once the checksum and the progress are checked
    private final byte[] record = new byte[RECORD];
    private int recordFilled;
    private long taken;
    private long announced; // bytes the state is known to hold so far
    private String refused; // once a check failed, every later call fails with it

    /**
     * @param length the bytes the state holds, or those announced so far
     */
    Intake(long length) {
      announced = length;
    }

    /** {@code length} more bytes are announced. */
    void more(long length) {
      announced += length;
    }

    /** Takes the next bytes of the state; throws, naming what is wrong, at the first fault. */
    void take(byte[] bytes) {
      if (refused != null) {
        throw new IllegalArgumentException(refused);
      }
      try {
        take(bytes, 0, bytes.length);
      } catch (IllegalArgumentException e) {
        refused = e.getMessage();
        throw e;
      }
    }

    private void take(byte[] b, int off, int len) {
      while (len > 0) {
        int n;
        if (kv == null) {
          n = Math.min(len, head.length - headFilled);
          System.arraycopy(b, off, head, headFilled, n);
          headFilled += n;
          if (headFilled == head.length) {
            headDone();
          } else if (headFilled >= MAGIC.length) {
            checkMagic();
          }
        } else if (kvFilled < kv.length) {
          n = Math.min(len, kv.length - kvFilled);
          System.arraycopy(b, off, kv, kvFilled, n);
          digest.update(b, off, n);
          kvFilled += n;
        } else if (state == null) {
          n = Math.min(len, sum.length - sumFilled);
          System.arraycopy(b, off, sum, sumFilled, n);
          sumFilled += n;
          if (sumFilled == sum.length) {
            checked();
          }
        } else {
          n = Math.min(len, RECORD - recordFilled);
          System.arraycopy(b, off, record, recordFilled, n);
          recordFilled += n;
          if (recordFilled == RECORD) {
            recordFilled = 0;
            apply(ByteBuffer.wrap(record));
          }
        }
        off += n;
        len -= n;
        taken += n;
      }
    }

    private void checkMagic() {
      if (!Arrays.equals(head, 0, MAGIC.length, MAGIC, 0, MAGIC.length)) {
        throw new IllegalArgumentException("state does not start with FTS1: not a token stream");
      }
    }

    /** The fixed fields are in: wait for the prompt and the KV length; those are in: make room. */
    private void headDone() {
      checkMagic();
      ByteBuffer b = ByteBuffer.wrap(head);
      int prompt = b.getShort(FIXED - 2) & 0xffff;
      if (head.length == FIXED) {
        head = Arrays.copyOf(head, FIXED + prompt + 8);
        return;
      }
      long kvLength = b.getLong(FIXED + prompt);
      if (kvLength < 1
          || kvLength > Integer.MAX_VALUE - 8
          || kvLength > announced - head.length - 32) {
        throw new IllegalArgumentException(
            "KV cache length "
                + kvLength
                + " does not match the state's size "
                + announced
                + " (so far)");
      }
      try {
        kv = new byte[(int) kvLength];
        digest = MessageDigest.getInstance("SHA-256");
      } catch (OutOfMemoryError e) {
        throw new IllegalArgumentException("no memory for a KV cache of " + kvLength + " bytes");
      } catch (NoSuchAlgorithmException impossible) {
        throw new AssertionError(impossible);
      }
    }

    /** The KV cache and its checksum are in: check them, then the progress, as decode does. */
    private void checked() {
      if (!MessageDigest.isEqual(sum, digest.digest())) {
        throw new IllegalArgumentException("KV cache checksum (SHA-256) does not match");
      }
      ByteBuffer b = ByteBuffer.wrap(head);
      b.position(MAGIC.length);
      int tokens = b.getInt();
      int next = b.getInt();
      int rate = b.getInt();
      if (tokens < 1 || next < 0 || next > tokens || rate < 1) {
        throw new IllegalArgumentException(
            "progress is impossible: next " + next + " of " + tokens + " at rate " + rate);
      }
      String prompt = new String(head, FIXED, (b.getShort() & 0xffff), StandardCharsets.UTF_8);
      state = new StreamState(prompt, tokens, rate, kv, next);
    }

    private void apply(ByteBuffer r) {
      byte tag = r.get();
      int index = r.getInt();
      if (tag != TOKEN || index != state.next || index >= state.tokens) {
        throw new IllegalArgumentException(
            "token record for " + index + " does not follow token " + (state.next - 1));
      }
      state.advance();
    }

    /**
     * The state is all in: returns it, checked whole.
     *
     * @throws IllegalArgumentException naming what is wrong; the takeover is then declined
     */
    StreamState finish() {
      if (refused != null) {
        throw new IllegalArgumentException(refused);
      }
      if (state == null || recordFilled != 0) {
        throw new IllegalArgumentException("state is cut short at " + taken + " bytes");
      }
      return state;
    }
  }

  static byte[] sha256(byte[] data) {
    return sha256(data, 0, data.length);
  }

  /**
   * A megabyte at a time: SHA-256 over a gibibyte in one call runs 2-3 s without a safepoint poll,
   * and every thread of the JVM, the stream's writer among them, then waits that long at the next
   * garbage collection (0.6-1.0 s seen with -Xlog:safepoint, while a snapshot was taken).
   */
  private static byte[] sha256(byte[] data, int from, int length) {
    MessageDigest sha = sha256();
    for (int off = 0; off < length; off += SNAPSHOT_CHUNK) {
      sha.update(data, from + off, Math.min(SNAPSHOT_CHUNK, length - off));
    }
    return sha.digest();
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException impossible) {
      throw new AssertionError(impossible);
    }
  }

  @Override
  public String toString() {
    return "token " + next + " of " + tokens + ", KV cache " + kv.length + " bytes";
  }
}
