// SPDX-License-Identifier: Apache-2.0
package dev.ferry.testbed;

import java.util.Collection;
import java.util.List;
import java.util.Map;

/** The XML EC2's Query API answers with: elements in lowerCamelCase, lists as {@code <item>}s. */
final class FakeEc2Xml {
  static final String NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15/";

  private final StringBuilder xml = new StringBuilder("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");

  private FakeEc2Xml() {}

  static String describe(String requestId, Collection<FakeEc2Interface> interfaces) {
    FakeEc2Xml x = response("DescribeNetworkInterfaces", requestId);
    x.open("networkInterfaceSet");
    for (FakeEc2Interface i : interfaces) {
      x.open("item");
      x.leaf("networkInterfaceId", i.id);
      x.leaf("subnetId", i.subnetId);
      x.leaf("status", i.attached() ? "in-use" : "available");
      x.leaf("privateIpAddress", i.primaryIp);
      x.leaf("sourceDestCheck", "true");
      x.leaf("interfaceType", "interface");
      if (i.attached()) {
        x.open("attachment");
        x.leaf("attachmentId", "eni-attach-" + i.id.substring(i.id.indexOf('-') + 1));
        x.leaf("instanceId", i.instanceId);
        x.leaf("deviceIndex", String.valueOf(i.deviceIndex));
        x.leaf("networkCardIndex", "0");
        x.leaf("status", "attached");
        x.close("attachment");
      }
      x.open("tagSet");
      for (Map.Entry<String, String> t : i.tags.entrySet()) {
        x.open("item");
        x.leaf("key", t.getKey());
        x.leaf("value", t.getValue());
        x.close("item");
      }
      x.close("tagSet");
      x.open("privateIpAddressesSet");
      for (String a : i.addresses()) {
        x.open("item");
        x.leaf("privateIpAddress", a);
        x.leaf("primary", String.valueOf(a.equals(i.primaryIp)));
        x.close("item");
      }
      x.close("privateIpAddressesSet");
      x.close("item");
    }
    x.close("networkInterfaceSet");
    return x.end("DescribeNetworkInterfaces");
  }

  static String assigned(String requestId, String eni, List<String> addresses) {
    FakeEc2Xml x = response("AssignPrivateIpAddresses", requestId);
    x.leaf("networkInterfaceId", eni);
    x.open("assignedPrivateIpAddressesSet");
    for (String a : addresses) {
      x.open("item");
      x.leaf("privateIpAddress", a);
      x.close("item");
    }
    x.close("assignedPrivateIpAddressesSet");
    return x.end("AssignPrivateIpAddresses");
  }

  static String unassigned(String requestId) {
    FakeEc2Xml x = response("UnassignPrivateIpAddresses", requestId);
    x.leaf("return", "true");
    return x.end("UnassignPrivateIpAddresses");
  }

  /** EC2's error document, unlike its answers, has no namespace and spells RequestID so. */
  static String error(String requestId, String code, String message) {
    FakeEc2Xml x = new FakeEc2Xml();
    x.open("Response");
    x.open("Errors");
    x.open("Error");
    x.leaf("Code", code);
    x.leaf("Message", message);
    x.close("Error");
    x.close("Errors");
    x.leaf("RequestID", requestId);
    x.close("Response");
    return x.xml.toString();
  }

  private static FakeEc2Xml response(String action, String requestId) {
    FakeEc2Xml x = new FakeEc2Xml();
    x.xml.append('<').append(action).append("Response xmlns=\"").append(NAMESPACE).append("\">");
    x.leaf("requestId", requestId);
    return x;
  }

  private String end(String action) {
    close(action + "Response");
    return xml.toString();
  }

  private void open(String element) {
    xml.append('<').append(element).append('>');
  }

  private void close(String element) {
    xml.append("</").append(element).append('>');
  }

  private void leaf(String element, String text) {
    open(element);
    escape(text);
    close(element);
  }

  private void escape(String text) {
    for (char c : text.toCharArray()) {
      switch (c) {
        case '<' -> xml.append("&lt;");
        case '>' -> xml.append("&gt;");
        case '&' -> xml.append("&amp;");
        case '"' -> xml.append("&quot;");
        default -> xml.append(c);
      }
    }
  }
}
