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

  /**
   * The agent reads a handoff caller's namespace through its pid; the pidfd taken when it connected
   * says whether that pid still names the caller, or may name another process by now.
   */
  @Test
  void aPeersPidfdSaysWhetherTheProcessThatConnectedStillLives() throws Exception {
    java.nio.file.Path dir = java.nio.file.Files.createTempDirectory("ferry-peerpidfd-");
    java.nio.file.Path path = dir.resolve("s.sock");
    Process peer = null;
    try (UnixSocket listener = UnixSocket.listen(path, 1)) {
      peer =
          new ProcessBuilder(
                  "python3",
                  "-c",
                  "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]);"
                      + " sys.stdin.read()",
                  path.toString())
              .start();
      try (UnixSocket accepted = listener.accept()) {
        UnixSocket.Credentials who = accepted.peerCredentials();
        assertThat((long) who.pid()).isEqualTo(peer.pid());
        try (Pidfd handle = accepted.peerPidfd(who.pid())) {
          assertThat(handle.alive()).as("while the peer runs").isTrue();

          peer.getOutputStream().close(); // it reads EOF and exits
          assertThat(peer.waitFor(60, java.util.concurrent.TimeUnit.SECONDS)).isTrue();

          assertThat(handle.alive()).as("once it has exited and been reaped").isFalse();
        }
      }
    } finally {
      if (peer != null) {
        peer.destroyForcibly();
      }
      java.nio.file.Files.deleteIfExists(path);
      java.nio.file.Files.deleteIfExists(dir);
    }
  }
}
