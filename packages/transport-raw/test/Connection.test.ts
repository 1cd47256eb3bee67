import * as net from "node:net"
import {
  type ScriptedSmtpServer,
  Script,
  readFixture,
  startScriptedSmtpServer,
} from "@spoc-mail/testkit"
import { afterEach, describe, expect, it } from "vitest"
import { make } from "../src/RawTransport.ts"
import { compose, failure, policyFor, run, success, tlsOptionsFor } from "./support/harness.ts"

const { lines } = Script

const closers: Array<() => Promise<void>> = []
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()))
})

const start = async (options: Parameters<typeof startScriptedSmtpServer>[0]) => {
  const server = await startScriptedSmtpServer(options)
  closers.push(server.close)
  return server
}

const greet = Script.send(lines("220 mx.test ESMTP"))
const ehlo = Script.expect(/^EHLO /i, lines("250-mx.test", "250 8BITMIME"))
const envelope = [
  Script.expect(/^MAIL FROM:/i, lines("250 2.1.0 Ok")),
  Script.expect(/^RCPT TO:/i, lines("250 2.1.5 Ok")),
  Script.expect(/^DATA$/i, lines("354 go ahead")),
  Script.data(lines("250 2.0.0 Ok: queued")),
]

const send = async (
  server: { host: string; port: number },
  overrides: Parameters<typeof policyFor>[1] = {},
) => run(make().send(await compose(), policyFor(server, overrides)))

/** One step per character, each after a pause: a server that drips its reply. */
const drip = (text: string, pauseMs: number) =>
  [...text].flatMap((ch) => [Script.send(ch), Script.delay(pauseMs)])

const commandLines = (server: ScriptedSmtpServer) =>
  server.clientLines().filter((l) => /^(EHLO|HELO|AUTH|MAIL|RCPT)/i.test(l))

describe("connecting, TLS from the first byte, and deadlines", () => {
  it("fails fast with a plain-text hint when SSL_TLS meets a plain greeting (C01)", async () => {
    const server = await start({
      script: [Script.send(lines("220 mail.example.com ESMTP")), Script.silent()],
    })
    const ran = await send(server, { mode: "SSL_TLS", connectionTimeoutMs: 10_000 })
    const error = failure(ran)
    expect(error).toMatchObject({ reason: "PlaintextWhereTlsExpected", phase: "tls" })
    expect(error.hint).toContain("STARTTLS")
    expect(ran.ms).toBeLessThan(2_000)
    expect(commandLines(server)).toEqual([])
  })

  it.each(["STARTTLS", "NONE"] as const)(
    "times out the greeting of an implicit-TLS port under %s, with the SSL_TLS hint (C02)",
    async (mode) => {
      const server = await start({ implicitTls: {}, script: [greet, ehlo, ...envelope] })
      const ran = await send(server, {
        mode,
        connectionTimeoutMs: 3_000,
        commandTimeoutMs: 60_000,
      })
      const error = failure(ran)
      expect(error).toMatchObject({ reason: "GreetingTimeout", phase: "greeting" })
      expect(error.hint).toContain("SSL_TLS")
      expect(ran.ms).toBeGreaterThanOrEqual(2_900)
      expect(ran.ms).toBeLessThan(10_000)
    },
  )

  it("reports a connection lost before the greeting, hinting at SSL_TLS (C02)", async () => {
    const server = await start({ implicitTls: { handshakeTimeoutMs: 100 }, script: [greet] })
    const ran = await send(server, { mode: "STARTTLS", connectionTimeoutMs: 3_000 })
    const error = failure(ran)
    expect(error).toMatchObject({ reason: "ConnectionLost", phase: "greeting" })
    expect(error.hint).toContain("SSL_TLS")
    expect(ran.ms).toBeLessThan(1_000)
  })

  it("delivers over TLS from the first byte, without SNI for an IP host", async () => {
    const server = await start({ implicitTls: {}, script: [greet, ehlo, ...envelope] })
    const receipt = success(await send(server, { mode: "SSL_TLS" }))
    expect(receipt.tls).toMatchObject({ via: "SSL_TLS" })
    expect(receipt.tls?.peer?.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/)
    const session = server.transcript.find((e) => e.kind === "tls")
    expect(session).toMatchObject({ kind: "tls", servername: undefined })
  })

  it("sends SNI for a host name", async () => {
    const server = await start({ implicitTls: {}, script: [greet, ehlo, ...envelope] })
    const policy = { host: "localhost", port: server.port }
    success(await send(policy, { mode: "SSL_TLS", tls: tlsOptionsFor("localhost") }))
    expect(server.transcript.find((e) => e.kind === "tls")).toMatchObject({
      servername: "localhost",
    })
  })

  it("refuses a certificate for another host, and one from an untrusted CA", async () => {
    const wrongHost = await start({ implicitTls: { certificate: "wrong-host" }, script: [greet] })
    const mismatch = failure(await send(wrongHost, { mode: "SSL_TLS" }))
    expect(mismatch).toMatchObject({ reason: "HostnameMismatch", phase: "tls" })

    const server = await start({ implicitTls: {}, script: [greet] })
    const untrusted = failure(
      await send(server, {
        mode: "SSL_TLS",
        tls: tlsOptionsFor(server.host, [readFixture("pki/unrelated-ca.crt", "utf8")]),
      }),
    )
    expect(untrusted).toMatchObject({ reason: "CertificateUntrusted", phase: "tls" })
  })

  it("refuses a STARTTLS certificate nobody trusts (C03)", async () => {
    const server = await start({
      script: [
        greet,
        Script.expect(/^EHLO/i, lines("250-mx.test", "250 STARTTLS")),
        Script.expect(/^STARTTLS/i, lines("220 go")),
        Script.startTls({ certificate: "self-signed" }),
      ],
    })
    const error = failure(
      await send(
        { host: "localhost", port: server.port },
        { mode: "STARTTLS", tls: tlsOptionsFor("localhost") },
      ),
    )
    expect(error).toMatchObject({ reason: "CertificateUntrusted", phase: "tls" })
  })

  it("reports a refused connection", async () => {
    const probe = net.createServer()
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve))
    const port = (probe.address() as net.AddressInfo).port
    await new Promise<void>((resolve) => probe.close(() => resolve()))
    expect(failure(await send({ host: "127.0.0.1", port }))).toMatchObject({
      reason: "ConnectionRefused",
      phase: "connect",
    })
  })

  it("keeps the greeting deadline when the server drips its greeting", async () => {
    const server = await start({ script: drip("220 mx.test slowly\r\n", 250) })
    const ran = await send(server, { connectionTimeoutMs: 1_000, commandTimeoutMs: 60_000 })
    expect(failure(ran)).toMatchObject({ reason: "GreetingTimeout", phase: "greeting" })
    expect(ran.ms).toBeLessThan(2_500)
  })

  it("keeps a command's deadline when the server drips its reply", async () => {
    const server = await start({
      script: [greet, Script.expect(/^EHLO/i), ...drip("250-mx.test\r\n250 8BITMIME\r\n", 200)],
    })
    const ran = await send(server, { commandTimeoutMs: 1_000 })
    expect(failure(ran)).toMatchObject({
      reason: "CommandTimeout",
      phase: "ehlo",
      command: "EHLO controller.test",
    })
    expect(ran.ms).toBeLessThan(2_500)
  })

  it("refuses a reply line longer than the limit, before it ends", async () => {
    const server = await start({
      script: [Script.send(`220 ${"x".repeat(10_000)}`), Script.silent()],
    })
    const ran = await send(server, { connectionTimeoutMs: 10_000 })
    expect(failure(ran)).toMatchObject({ reason: "ProtocolViolation", phase: "greeting" })
    expect(ran.ms).toBeLessThan(2_000)
  })

  it("refuses a reply larger than the limit, even of short lines", async () => {
    const server = await start({
      script: [
        greet,
        Script.expect(/^EHLO/i, `250-${"x".repeat(1_000)}\r\n`.repeat(100)),
        Script.silent(),
      ],
    })
    expect(failure(await send(server))).toMatchObject({
      reason: "ProtocolViolation",
      phase: "ehlo",
    })
  })

  it("refuses a server that does not speak SMTP", async () => {
    const server = await start({
      script: [Script.send("HTTP/1.1 400 Bad Request\r\n\r\n"), Script.close()],
    })
    expect(failure(await send(server))).toMatchObject({
      reason: "ProtocolViolation",
      phase: "greeting",
    })
  })

  it("fails when the server stops taking the message, instead of waiting forever", async () => {
    const sockets = new Set<net.Socket>()
    const server = net.createServer((socket) => {
      sockets.add(socket)
      socket.on("error", () => {})
      socket.write("220 mx.test\r\n")
      let buffered = ""
      const onData = (chunk: Buffer) => {
        buffered += chunk.toString("latin1")
        while (buffered.includes("\r\n")) {
          const line = buffered.slice(0, buffered.indexOf("\r\n"))
          buffered = buffered.slice(line.length + 2)
          if (/^EHLO/i.test(line)) socket.write("250 mx.test\r\n")
          else if (/^(MAIL|RCPT)/i.test(line)) socket.write("250 ok\r\n")
          else if (/^DATA/i.test(line)) {
            socket.write("354 go\r\n")
            socket.off("data", onData)
            socket.pause() // reads nothing more: the client's writes back up
            return
          }
        }
      }
      socket.on("data", onData)
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    closers.push(async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    })
    const port = (server.address() as net.AddressInfo).port
    const message = await compose({
      attachments: [{ filename: "big.bin", content: new Uint8Array(24 * 1024 * 1024).fill(65) }],
    })

    const ran = await run(
      make().send(message, policyFor({ host: "127.0.0.1", port }, { commandTimeoutMs: 1_000 })),
    )
    expect(failure(ran)).toMatchObject({ reason: "CommandTimeout", phase: "message" })
    expect(ran.ms).toBeLessThan(15_000)
  })
})
