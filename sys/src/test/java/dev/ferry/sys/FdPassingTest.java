// SPDX-License-Identifier: Apache-2.0
package dev.ferry.sys;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** Descriptors cross process boundaries the two ways the agent uses: SCM_RIGHTS and pidfd. */
class FdPassingTest {

  @Test
  void aSocketSentOverScmRightsIsTheSameSocketOnTheOtherSide() throws Exception {
    UnixSocket[] pair = UnixSocket.pair();
    try (UnixSocket app = pair[0];
        UnixSocket agent = pair[1];
        TcpSocket listener = loopbackListener()) {
      app.send("fd".getBytes(StandardCharsets.US_ASCII), listener.fd());
      UnixSocket.Received got = agent.receive(16, 4);

      assertThat(new String(got.data(), StandardCharsets.US_ASCII)).isEqualTo("fd");
      assertThat(got.fds()).hasSize(1).doesNotContain(listener.fd());
      try (TcpSocket copy = TcpSocket.adopt(got.fds()[0])) {
        assertThat(copy.localAddress()).isEqualTo(listener.localAddress());
      }
    }
  }

  @Test
  void moreDescriptorsThanAskedForAreClosedAndReported() throws Exception {
    UnixSocket[] pair = UnixSocket.pair();
    try (UnixSocket app = pair[0];
        UnixSocket agent = pair[1];
        TcpSocket a = loopbackListener();
        TcpSocket b = loopbackListener()) {
      app.send(new byte[] {1}, a.fd(), b.fd(), a.fd());
      assertThatThrownBy(() -> agent.receive(16, 1))
          .isInstanceOf(SyscallException.class)
          .hasMessageContaining("more than 1 descriptors were sent");
    }
  }

  @Test
  void pidfdGetfdCopiesADescriptorOutOfAProcess() throws Exception {
    try (TcpSocket listener = loopbackListener();
        Pidfd self = Pidfd.open(ProcessHandle.current().pid());
        TcpSocket copy = TcpSocket.adopt(self.duplicate(listener.fd()))) {
      assertThat(copy.fd()).isNotEqualTo(listener.fd());
      assertThat(copy.localAddress()).isEqualTo(listener.localAddress());
    }
  }

  @Test
  void errorsNameTheCallTheObjectAndTheErrno() {
    assertThatThrownBy(() -> Pidfd.open(Integer.MAX_VALUE))
        .isInstanceOf(SyscallException.class)
        .hasMessageStartingWith("pidfd_open(pid=2147483647) failed: ESRCH");
    assertThatThrownBy(() -> TcpSocket.adopt(999_999).info())
        .hasMessageStartingWith(
            "getsockopt(fd=999999, TCP_INFO) failed: EBADF (Bad file descriptor)");
  }

  private static TcpSocket loopbackListener() throws SyscallException {
    TcpSocket s = TcpSocket.open(InetAddress.getLoopbackAddress());
    s.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
    s.listen(1);
    return s;
  }
}
