// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.hold;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * Payload a held client sent that the hold's XDP program dropped or answered, kept for the restored
 * socket: a record of the {@code ferry_kept} ring, {@code struct kept_bytes} in bpf/hold.h (a
 * 48-byte head: the key, then seq and len in host order) followed by the payload. Records come in
 * arrival order, retransmissions and overlaps included; FIN and other flags are not kept.
 *
 * @param key the connection, as held
 * @param seq the TCP sequence number of {@code data}'s first byte
 * @param data the segment's payload, as long as its IP header says (no Ethernet padding)
 */
public record KeptBytes(HoldKey key, int seq, byte[] data) {
  static final int HEAD_SIZE = 48;

  /** Decodes one record; {@code record} is read from its position, in any byte order. */
  static KeptBytes decode(ByteBuffer record) {
    ByteBuffer b = record.slice().order(ByteOrder.nativeOrder());
    if (b.remaining() < HEAD_SIZE) {
      throw new IllegalArgumentException("kept record of " + b.remaining() + " bytes");
    }
    byte[] key = new byte[HoldKey.SIZE];
    b.get(key);
    int seq = b.getInt(40);
    int len = b.getInt(44);
    // The ring knows each record's length; a head that disagrees is not one of ours.
    if (len < 0 || HEAD_SIZE + len != b.limit()) {
      throw new IllegalArgumentException(
          "kept record of " + b.limit() + " bytes says " + len + " bytes of payload");
    }
    byte[] data = new byte[len];
    b.get(HEAD_SIZE, data);
    return new KeptBytes(HoldKey.decode(key), seq, data);
  }

  /** The program's kept-bytes counters, summed over CPUs: segments, not bytes. */
  public record Counts(long kept, long notKept) {
    static final Counts NONE = new Counts(0, 0);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof KeptBytes k
        && k.key.equals(key)
        && k.seq == seq
        && Arrays.equals(k.data, data);
  }

  @Override
  public int hashCode() {
    return 31 * (31 * key.hashCode() + seq) + Arrays.hashCode(data);
  }

  @Override
  public String toString() {
    return key + " seq " + Integer.toUnsignedString(seq) + ", " + data.length + " bytes";
  }
}
