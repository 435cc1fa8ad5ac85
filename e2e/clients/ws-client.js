// SPDX-License-Identifier: Apache-2.0
// A WebSocket client built on the `ws` package from npm, as a Node.js application would use it:
//   node ws-client.js URL OUT
// Writes every message's payload to OUT, one after the other; prints "received N bytes in M
// messages" after each MiB, and at the end "closed CODE clean|unclean after N bytes in M
// messages, sizes MIN..MAX". Exits 0 only on a clean close with status 1000; an error (a reset,
// a bad frame) is printed and exits 1. It never reconnects.
"use strict";
const fs = require("fs");
const WebSocket = require("ws");

const [url, out] = process.argv.slice(2);
if (!url || !out) {
  console.error("usage: node ws-client.js URL OUT");
  process.exit(2);
}
const file = fs.openSync(out, "w");
const MIB = 1 << 20;
let bytes = 0;
let messages = 0;
let min = Infinity;
let max = 0;
let report = MIB;
let failed = false;

// No compression: the frames on the wire are the server's, byte for byte.
const ws = new WebSocket(url, { perMessageDeflate: false });
ws.on("message", (data) => {
  fs.writeSync(file, data);
  bytes += data.length;
  messages++;
  min = Math.min(min, data.length);
  max = Math.max(max, data.length);
  if (bytes >= report) {
    console.log(`received ${bytes} bytes in ${messages} messages`);
    report = (Math.floor(bytes / MIB) + 1) * MIB;
  }
});
ws.on("error", (e) => {
  failed = true;
  console.log(`error ${e.code || ""} ${e.message}`);
});
ws.on("close", (code) => {
  fs.closeSync(file);
  // The close frame seen and answered: ws then waits for the server to close the TCP connection.
  const clean = !failed && code === 1000;
  console.log(
    `closed ${code} ${clean ? "clean" : "unclean"} after ${bytes} bytes in ${messages}` +
      ` messages, sizes ${messages ? min : 0}..${max}`,
  );
  process.exitCode = clean ? 0 : 1;
});
