// SPDX-License-Identifier: Apache-2.0
package dev.ferry.example.streamer;

import dev.ferry.protocol.Connection;
import dev.ferry.sdk.FerryAgent;
import dev.ferry.sdk.Handover;
import dev.ferry.sdk.IncomingState;
import dev.ferry.sdk.MigrationHandler;
import dev.ferry.sdk.MovedSocket;
import dev.ferry.sdk.OwnSockets;
import dev.ferry.sdk.StateOffer;
import dev.ferry.sdk.Takeover;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The demo server: an LLM-like token streamer whose streams can move to another node, KV cache and
 * all. One thread per stream, blocking sockets; {@code --io netty} serves with {@link
 * NettyTokenServer} instead.
 */
public final class TokenStreamer implements MigrationHandler {
  static final byte[] RESPONSE_HEAD =
      ("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
              + "Connection: close\r\n\r\n")
          .getBytes(StandardCharsets.US_ASCII);

  private final Options options;
  private final Map<Connection, TokenStream> streams = new ConcurrentHashMap<>();

  TokenStreamer(Options options) {
    this.options = options;
  }

  public static void main(String[] args) throws Exception {
    Options options;
    try {
      options = Options.parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println("token-streamer: " + e.getMessage());
      System.err.println(Options.USAGE);
      System.exit(2);
      return;
    }
    if (options.io() == Options.Io.NETTY) {
      new NettyTokenServer(options).serve();
    } else {
      new TokenStreamer(options).serve();
    }
  }

  private void serve() throws IOException {
    try (ServerSocket server = new ServerSocket()) {
      server.setReuseAddress(true);
      server.bind(options.listen(), 128);
      if (options.agent() != null) {
        FerryAgent agent = options.connect();
        agent.register(options.listen().getPort(), this);
      }
      say(
          "listening on "
              + options.listen().getAddress().getHostAddress()
              + ":"
              + options.listen().getPort()
              + (options.agent() == null ? "" : ", movable through " + options.agent()));
      while (true) {
        Socket client = server.accept();
        Thread t = new Thread(() -> serve(client), "stream-" + client.getRemoteSocketAddress());
        t.setDaemon(true);
        t.start();
      }
    }
  }

  private void serve(Socket client) {
    Connection c =
        new Connection(
            (InetSocketAddress) client.getLocalSocketAddress(),
            (InetSocketAddress) client.getRemoteSocketAddress());
    try {
      client.setTcpNoDelay(true);
      StreamRequest request;
      try {
        request = StreamRequest.read(client.getInputStream());
      } catch (StreamRequest.Rejected e) {
        reject(client.getOutputStream(), e.status, e.getMessage());
        client.close();
        return;
      }
      if (request == null) {
        client.close();
        return;
      }
      OutputStream out = client.getOutputStream();
      out.write(RESPONSE_HEAD);
      StreamState state =
          StreamState.start(request.prompt(), request.tokens(), options.rate(), options.kvBytes());
      run(c, new TokenStream(state, out, () -> closeQuietly(client)));
    } catch (IOException | InterruptedException e) {
      say("stream " + c + " ended: " + e.getMessage());
      closeQuietly(client);
    }
  }

  private void run(Connection c, TokenStream stream) throws IOException, InterruptedException {
    streams.put(c, stream);
    try {
      if (stream.run()) {
        say("stream " + c + " done");
      } else {
        say("stream " + c + " moved away at " + stream);
      }
    } finally {
      streams.remove(c, stream);
    }
  }

  @Override
  public Handover freeze(Connection c) throws Exception {
    TokenStream stream = streams.get(c);
    if (stream == null) {
      return Handover.decline("no stream on " + c + " (finished, or not begun)");
    }
    if (options.ignoreFreeze()) {
      Thread.sleep(Long.MAX_VALUE); // the misbehaving application the agent must survive
    }
    byte[] state = stream.pause();
    if (state == null) {
      return Handover.decline("the stream on " + c + " has just ended");
    }
    // Nothing said here: the freeze holds the client (run() says where the stream left, after).
    return Handover.give(OwnSockets.find(c), state, stream);
  }

  @Override
  public void precopy(Connection c, StateOffer offer) throws InterruptedException {
    TokenStream stream = streams.get(c);
    if (stream == null) {
      offer.decline("no stream on " + c + " (finished, or not begun)");
      return;
    }
    stream.offerTo(offer);
  }

  @Override
  public Takeover takeover(Connection c, byte[] blob) {
    if (options.declineTakeover()) {
      say("declining " + c + ": started with --decline-takeover");
      return Takeover.decline("this server was started with --decline-takeover");
    }
    StreamState state;
    try {
      state = StreamState.decode(blob);
    } catch (IllegalArgumentException e) {
      return declined(c, e);
    }
    return accepted(c, state);
  }

  /**
   * Takes in the state handed ahead of the takeover as it arrives (on the SDK's reader thread): the
   * KV cache is copied and hashed as its bytes come, so that the takeover, inside the client's
   * pause, only applies the tail. Started with --decline-takeover, the server takes nothing in and
   * declines at the takeover, with the whole state, as before.
   */
  @Override
  public IncomingState arriving(Connection c) {
    return options.declineTakeover() ? null : new Arrival(c);
  }

  /** A stream's state taken in ahead of its takeover, checked as strictly as {@link #takeover}. */
  private final class Arrival implements IncomingState {
    private final Connection c;
    private StreamState.Intake intake = new StreamState.Intake(0);

    Arrival(Connection c) {
      this.c = c;
    }

    @Override
    public void snapshot(long length) {
      intake = new StreamState.Intake(length); // what came before is void
    }

    @Override
    public void bytes(byte[] chunk) {
      intake.take(chunk); // a fault declines what is handed ahead: the whole state comes instead
    }

    @Override
    public void append(long length) {
      intake.more(length); // token records, following the snapshot's
    }

    @Override
    public Takeover takeover(byte[] tail) {
      StreamState state;
      try {
        intake.more(tail.length);
        intake.take(tail);
        state = intake.finish();
      } catch (IllegalArgumentException e) {
        return declined(c, e);
      } finally {
        intake = null;
      }
      return accepted(c, state);
    }

    @Override
    public void dropped(String why) {
      intake = null; // lets go of the KV cache
    }
  }

  private static Takeover declined(Connection c, IllegalArgumentException e) {
    say("declining " + c + ": " + e.getMessage());
    return Takeover.decline(e.getMessage());
  }

  private Takeover accepted(Connection c, StreamState state) {
    say("taking over " + c + " at " + state + ", checksum verified");
    StreamState here = options.takenOver(state);
    return Takeover.accept(socket -> carryOn(socket, here));
  }

  private void carryOn(MovedSocket socket, StreamState state) {
    Thread t =
        new Thread(
            () -> {
              try {
                run(
                    socket.connection(),
                    new TokenStream(
                        state,
                        socket.output(),
                        () -> {
                          try {
                            socket.shutdownOutput();
                          } catch (IOException ignored) {
                            // the client went away; closing is all that is left
                          }
                          socket.close();
                        }));
              } catch (IOException | InterruptedException e) {
                say("stream " + socket.connection() + " ended: " + e.getMessage());
                socket.close();
              }
            },
            "stream-" + socket.connection());
    t.setDaemon(true);
    t.start();
  }

  private static void reject(OutputStream out, int status, String reason) throws IOException {
    out.write(rejection(status, reason));
    out.flush();
  }

  /** The whole response to a rejected request: head and one-line body. */
  static byte[] rejection(int status, String reason) {
    byte[] body = (reason + "\n").getBytes(StandardCharsets.UTF_8);
    byte[] head =
        ("HTTP/1.1 "
                + status
                + switch (status) {
                  case 404 -> " Not Found";
                  case 431 -> " Request Header Fields Too Large";
                  default -> " Bad Request";
                }
                + "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "
                + body.length
                + "\r\nConnection: close\r\n\r\n")
            .getBytes(StandardCharsets.US_ASCII);
    byte[] whole = Arrays.copyOf(head, head.length + body.length);
    System.arraycopy(body, 0, whole, head.length, body.length);
    return whole;
  }

  private static void closeQuietly(Socket s) {
    try {
      s.close();
    } catch (IOException ignored) {
      // nothing more to tell this client
    }
  }

  static void say(String line) {
    System.out.println("token-streamer: " + line);
    System.out.flush();
  }

  /** The command line. */
  record Options(
      InetSocketAddress listen,
      Path agent,
      Path agentCa,
      String name,
      int rate,
      int takenOverRate,
      int kvBytes,
      boolean ignoreFreeze,
      boolean declineTakeover,
      Io io) {
    static final String USAGE =
        "usage: TokenStreamer --listen HOST:PORT [--agent SOCKET [--agent-ca CA_FILE]] [--name NAME]"
            + " [--rate TOKENS_PER_S] [--taken-over-rate TOKENS_PER_S] [--kv-bytes N]"
            + " [--ignore-freeze] [--decline-takeover]"
            + " [--io blocking|netty]";

    /** How the server does its I/O: a thread per stream, or Netty's epoll event loops. */
    enum Io {
      BLOCKING,
      NETTY
    }

    static Options parse(String[] args) {
      InetSocketAddress listen = null;
      Path agent = null;
      Path agentCa = null; // the cluster CA: the agent must prove itself (protocol version 3)
      String name = "token-streamer";
      int rate = 50;
      int takenOverRate = 0; // 0: a stream taken over goes on at the rate it came with
      int kvBytes = 2_400_000;
      boolean ignoreFreeze = false;
      boolean declineTakeover = false;
      Io io = Io.BLOCKING;
      for (int i = 0; i < args.length; i++) {
        String flag = args[i];
        if (flag.equals("--ignore-freeze")) {
          ignoreFreeze = true;
          continue;
        }
        if (flag.equals("--decline-takeover")) {
          declineTakeover = true; // the application that refuses a connection the agent brings
          continue;
        }
        if (i + 1 >= args.length) {
          throw new IllegalArgumentException(flag + " needs a value");
        }
        String value = args[++i];
        switch (flag) {
          case "--listen" -> {
            int colon = value.lastIndexOf(':');
            if (colon < 0) {
              throw new IllegalArgumentException("--listen must be HOST:PORT, got " + value);
            }
            listen =
                new InetSocketAddress(
                    value.substring(0, colon).replace("[", "").replace("]", ""),
                    number(flag, value.substring(colon + 1), 1, 65535));
          }
          case "--agent" -> agent = Path.of(value);
          case "--agent-ca" -> agentCa = Path.of(value);
          case "--name" -> name = value;
          case "--rate" -> rate = number(flag, value, 1, 1_000_000);
          case "--taken-over-rate" -> takenOverRate = number(flag, value, 1, 1_000_000);
          case "--kv-bytes" -> kvBytes = number(flag, value, 1, Integer.MAX_VALUE - 1024);
          case "--io" ->
              io =
                  switch (value) {
                    case "blocking" -> Io.BLOCKING;
                    case "netty" -> Io.NETTY;
                    default ->
                        throw new IllegalArgumentException(
                            "--io must be blocking or netty, got '" + value + "'");
                  };
          default -> throw new IllegalArgumentException("unknown option " + flag);
        }
      }
      if (listen == null) {
        throw new IllegalArgumentException("--listen HOST:PORT is required");
      }
      if (agentCa != null && agent == null) {
        throw new IllegalArgumentException("--agent-ca checks the agent of --agent: give both");
      }
      if (ignoreFreeze && io == Io.NETTY) {
        // A freeze handler that never returns would stall an event loop and every stream on it.
        throw new IllegalArgumentException("--ignore-freeze needs --io blocking");
      }
      return new Options(
          listen,
          agent,
          agentCa,
          name,
          rate,
          takenOverRate,
          kvBytes,
          ignoreFreeze,
          declineTakeover,
          io);
    }

    /**
     * A stream this server takes over, at the rate it goes on with here. Tests that slow a stream
     * down so that it outlasts a long move (a gibibyte's pre-copy) set a faster one, so that the
     * stream does not crawl to its end once it has moved; what it sends does not depend on the
     * rate.
     */
    StreamState takenOver(StreamState state) {
      return takenOverRate == 0 ? state : state.at(takenOverRate);
    }

    /** The session with the agent, proved when {@code --agent-ca} is given. */
    FerryAgent connect() throws java.io.IOException {
      return agentCa == null
          ? FerryAgent.connect(agent, name)
          : FerryAgent.connect(agent, name, agentCa);
    }

    private static int number(String flag, String value, int min, int max) {
      try {
        int n = Integer.parseInt(value);
        if (n >= min && n <= max) {
          return n;
        }
      } catch (NumberFormatException ignored) {
        // reported below
      }
      throw new IllegalArgumentException(
          flag + " must be an integer " + min + ".." + max + ", got '" + value + "'");
    }
  }
}
