// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.store;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;
import org.junit.jupiter.api.Test;

class PropertiesTextTest {
  private static Properties loaded(byte[] text) throws Exception {
    Properties p = new Properties();
    p.load(new ByteArrayInputStream(text));
    return p;
  }

  @Test
  void whatPropertiesLoadReadsBackIsWhatWasWritten() throws Exception {
    Map<String, String> entries = new LinkedHashMap<>();
    entries.put("address.cidr", "fd00:198:18::100/128");
    entries.put("target.agent", "[fd00::3]:9443");
    entries.put("pod.netns", "/var/run/netns/pod a#1!");
    entries.put("key with = and : in it", " leading space, trailing space ");
    entries.put("control", "tab\there\nnewline\rreturn\fform feed\\backslash");
    entries.put("unicode", "café ☃ \u0001");
    entries.put("empty", "");

    Properties p = loaded(PropertiesText.encode(entries));

    assertThat(p).hasSize(entries.size());
    entries.forEach((k, v) -> assertThat(p.getProperty(k)).as(k).isEqualTo(v));
  }

  @Test
  void writesNoDateComment() {
    String text =
        new String(PropertiesText.encode(Map.of("role", "source")), StandardCharsets.ISO_8859_1);

    assertThat(text).isEqualTo("role=source\n");
  }
}
