// A minimal SMTP sink for the benchmark and the memory tests, run as its own process so that
// its memory is not counted with the client's: it accepts every message on 127.0.0.1, keeps
// none, and prints its port. SIGTERM stops it.
import * as net from "node:net"

const server = net.createServer((socket) => {
  socket.on("error", () => {})
  socket.setNoDelay(true)
  socket.write("220 sink.test ESMTP\r\n")
  let inData = false
  let tail = Buffer.alloc(0)
  let pending = ""
  socket.on("data", (chunk) => {
    if (inData) {
      const joined = Buffer.concat([tail, chunk])
      if (joined.includes("\r\n.\r\n")) {
        inData = false
        tail = Buffer.alloc(0)
        socket.write("250 2.0.0 Ok\r\n")
      } else {
        tail = joined.subarray(-4)
      }
      return
    }
    pending += chunk.toString("latin1")
    for (let end = pending.indexOf("\r\n"); end >= 0; end = pending.indexOf("\r\n")) {
      const line = pending.slice(0, end)
      pending = pending.slice(end + 2)
      if (/^EHLO/i.test(line)) socket.write("250-sink.test\r\n250 PIPELINING\r\n")
      else if (/^(MAIL|RCPT|RSET)/i.test(line)) socket.write("250 Ok\r\n")
      else if (/^QUIT/i.test(line)) socket.end("221 Bye\r\n")
      else if (/^DATA/i.test(line)) {
        inData = true
        pending = ""
        socket.write("354 go\r\n")
        break
      } else socket.write("502 unknown\r\n")
    }
  })
})
server.listen(0, "127.0.0.1", () => process.stdout.write(`${server.address().port}\n`))
process.on("SIGTERM", () => process.exit(0))
