// SPDX-License-Identifier: Apache-2.0
package dev.ferry.agent.address;

import static org.assertj.core.api.Assertions.assertThat;

import dev.ferry.sys.RtNetlink;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** An address is announced from the interface whose subnet holds it, else from the uplink. */
class CarrierTest {
  private static RtNetlink.Assigned on(String ip, int prefix, int scope) throws Exception {
    return new RtNetlink.Assigned(InetAddress.getByName(ip), prefix, scope);
  }

  private static Map<String, List<RtNetlink.Assigned>> node() throws Exception {
    Map<String, List<RtNetlink.Assigned>> byInterface = new LinkedHashMap<>();
    byInterface.put("ens5", List.of(on("10.0.0.12", 24, 0), on("fe80::1", 64, 253)));
    byInterface.put("ens6", List.of(on("10.0.1.5", 24, 0), on("fd66::5", 64, 0)));
    return byInterface;
  }

  @Test
  void anAddressInTheServiceEnisSubnetIsAnnouncedThere() throws Exception {
    assertThat(AddressMover.carrier(ServiceAddress.parse("10.0.1.100/32"), node(), "ens5"))
        .isEqualTo("ens6");
    assertThat(AddressMover.carrier(ServiceAddress.parse("fd66::100/128"), node(), "ens5"))
        .isEqualTo("ens6");
  }

  @Test
  void anAddressInTheUplinksSubnetIsAnnouncedFromTheUplink() throws Exception {
    assertThat(AddressMover.carrier(ServiceAddress.parse("10.0.0.100/32"), node(), "ens5"))
        .isEqualTo("ens5");
  }

  @Test
  void anAddressNoSubnetCoversGoesOutOfTheFallbackAndLinkLocalPrefixesCoverNothing()
      throws Exception {
    assertThat(AddressMover.carrier(ServiceAddress.parse("192.0.2.1/32"), node(), "ens5"))
        .isEqualTo("ens5");
    Map<String, List<RtNetlink.Assigned>> linkOnly =
        Map.of("ens6", List.of(on("fe80::5", 10, 253)));
    assertThat(AddressMover.carrier(ServiceAddress.parse("fe80::100/128"), linkOnly, "ens5"))
        .isEqualTo("ens5");
  }

  @Test
  void theTunnelEndsAtTheNodesOwnAddressInTheSubnetThatCarriesTheServiceAddress() throws Exception {
    assertThat(AddressMover.tunnelCarrier(ServiceAddress.parse("10.0.1.100/32"), node()))
        .contains(new Carrier("ens6", (Inet4Address) InetAddress.getByName("10.0.1.5")));
    // The service address itself, held by the node (a /24 on ens6 too), is not the node's end.
    Map<String, List<RtNetlink.Assigned>> holding = new LinkedHashMap<>();
    holding.put("ens6", List.of(on("10.0.1.100", 24, 0), on("10.0.1.5", 24, 0)));
    assertThat(AddressMover.tunnelCarrier(ServiceAddress.parse("10.0.1.100/32"), holding))
        .contains(new Carrier("ens6", (Inet4Address) InetAddress.getByName("10.0.1.5")));
  }

  @Test
  void noTunnelForAnAddressNoSubnetCoversOrForIpv6() throws Exception {
    assertThat(AddressMover.tunnelCarrier(ServiceAddress.parse("192.0.2.1/32"), node())).isEmpty();
    assertThat(AddressMover.tunnelCarrier(ServiceAddress.parse("fd66::100/128"), node())).isEmpty();
  }
}
