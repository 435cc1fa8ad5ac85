// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.spot;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Instant;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Reading the two documents EC2 serves, and what becomes of the ones it should not serve. */
class NoticeParserTest {

  @Test
  void instanceActionGivesActionAndTime() {
    SpotNotice n =
        NoticeParser.parse(
            NoticeKind.INTERRUPTION, "{\"action\":\"stop\",\"time\":\"2026-11-23T10:00:00Z\"}");

    assertThat(n)
        .isEqualTo(
            new SpotNotice(
                NoticeKind.INTERRUPTION, "stop", Instant.parse("2026-11-23T10:00:00Z"), true));
    assertThat(n.message()).isEqualTo("EC2 will stop this spot instance at 2026-11-23T10:00:00Z");
  }

  @Test
  void rebalanceGivesNoticeTime() {
    SpotNotice n =
        NoticeParser.parse(NoticeKind.REBALANCE, "{\"noticeTime\":\"2026-11-23T09:45:00Z\"}");

    assertThat(n.readable()).isTrue();
    assertThat(n.time()).isEqualTo(Instant.parse("2026-11-23T09:45:00Z"));
    assertThat(n.action()).isNull();
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "",
        "terminate",
        "[]",
        "{\"action\":\"terminate\"",
        "{\"action\":\"terminate\"}",
        "{\"action\":\"terminate\",\"time\":\"tomorrow\"}",
        "{\"action\":7,\"time\":\"2026-11-23T10:00:00Z\"}"
      })
  void unreadableInstanceActionIsStillANoticeWithUnknownTime(String body) {
    SpotNotice n = NoticeParser.parse(NoticeKind.INTERRUPTION, body);

    assertThat(n).isEqualTo(SpotNotice.unreadable(NoticeKind.INTERRUPTION));
    assertThat(n.message()).contains("unknown time");
  }

  @Test
  void twoReadsOfOneNoticeAreEqualAndNameTheSameEvent() {
    String body = "{\"action\":\"terminate\",\"time\":\"2026-11-23T10:00:00Z\"}";
    SpotNotice a = NoticeParser.parse(NoticeKind.INTERRUPTION, body);
    SpotNotice b = NoticeParser.parse(NoticeKind.INTERRUPTION, body);

    assertThat(a).isEqualTo(b);
    assertThat(NoticeEvents.name("n1", a)).isEqualTo(NoticeEvents.name("n1", b));
    assertThat(NoticeEvents.name("n1", a)).startsWith("n1.interruption.");
  }
}
