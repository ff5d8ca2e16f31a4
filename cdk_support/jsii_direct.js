// The jsii kernel of @jsii/runtime in this node process, speaking the jsii protocol on stdin / stdout.
//
// jsii's own entry point (bin/jsii-runtime.js) spawns a second node process for the kernel and relays the
// protocol between its stdin / stdout and the kernel's fd 3, every request and response through one more
// process: about a seventh of a large app's synth CPU (docs/design.md, "Synth time per customer: the jsii
// kernel without its relay process"). Here the kernel's reads and writes of fd 3 go to fd 0 and fd 1, and
// what JavaScript prints goes to stderr as the relay sends it ({"stdout"|"stderr": base64} lines, which the
// Python client decodes), so stdout carries the protocol alone. cdk_support/jsii_runtime.py chooses this
// entry point only for a kernel program it recognises (TTP_JSII_PROGRAM).
"use strict";
const fs = require("fs");
const { readSync, writeSync } = fs;
const API_CHANNEL = 3;
fs.readSync = function (fd, ...rest) {
  return readSync.call(this, fd === API_CHANNEL ? 0 : fd, ...rest);
};
fs.writeSync = function (fd, ...rest) {
  return writeSync.call(this, fd === API_CHANNEL ? 1 : fd, ...rest);
};
const writeStderr = process.stderr.write.bind(process.stderr);
function relayed(stream) {
  return (chunk, encoding, callback) => {
    const data = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk), typeof encoding === "string" ? encoding : "utf8");
    const done = typeof encoding === "function" ? encoding : callback;
    return writeStderr(JSON.stringify({ [stream]: data.toString("base64") }) + "\n", done);
  };
}
process.stdout.write = relayed("stdout");
process.stderr.write = relayed("stderr");
require(process.env.TTP_JSII_PROGRAM);
