import * as net from "node:net"
import * as tls from "node:tls"
import { afterEach, describe, expect, it } from "vitest"
import nodemailer from "nodemailer"
import { rootCa } from "../src/Fixtures.ts"
import {
  awaitBytes,
  data,
  delay,
  expect as expectLine,
  lines,
  type ScriptedSmtpServer,
  type ScriptedSmtpServerOptions,
  send,
  silent,
  startScriptedSmtpServer,
  startTls,
  close,
} from "../src/ScriptedSmtpServer.ts"

const servers: Array<ScriptedSmtpServer> = []
const start = async (options: ScriptedSmtpServerOptions) => {
  const server = await startScriptedSmtpServer(options)
  servers.push(server)
  return server
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

const waitUntil = async (predicate: () => boolean) => {
  for (let i = 0; i < 200 && !predicate(); i++) await new Promise((r) => setTimeout(r, 10))
  return predicate()
}

/** A raw client: collects every byte the server sends. */
const connect = async (server: ScriptedSmtpServer) => {
  const socket = net.connect(server.port, server.host)
  let received = ""
  let ended = false
  socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")))
  socket.on("close", () => (ended = true))
  await new Promise<void>((resolve) => socket.once("connect", resolve))
  const waitFor = waitUntil
  return {
    socket,
    write: (text: string) => socket.write(text),
    received: () => received,
    ended: () => ended,
    waitFor,
    until: (text: string) => waitFor(() => received.includes(text)),
  }
}

describe("ScriptedSmtpServer", () => {
  it("sends replies byte for byte and records the client's lines", async () => {
    const server = await start({
      script: [
        send("220 mail.example.com ESMTP\r\n"),
        expectLine(/^EHLO /i, lines("250-mail.example.com", "250 STARTTLS")),
        expectLine(/^QUIT/i, "221 bye\r\n"),
        close(),
      ],
    })
    const client = await connect(server)
    expect(await client.until("ESMTP\r\n")).toBe(true)
    client.write("EHLO client.test\r\n")
    expect(await client.until("250 STARTTLS\r\n")).toBe(true)
    client.write("QUIT\r\n")
    expect(await client.waitFor(client.ended)).toBe(true)

    expect(client.received()).toBe(
      "220 mail.example.com ESMTP\r\n250-mail.example.com\r\n250 STARTTLS\r\n221 bye\r\n",
    )
    expect(server.clientLines()).toEqual(["EHLO client.test", "QUIT"])
    // The client may see the end before the server's side of the socket has closed.
    expect(await waitUntil(() => server.transcript.at(-1)?.kind === "closed")).toBe(true)
    expect(server.transcript.at(-1)).toEqual({ kind: "closed", connection: 1, by: "server" })
  })

  it("refuses an unexpected line and keeps waiting for the expected one", async () => {
    const server = await start({
      script: [send("220 hi\r\n"), expectLine(/^MAIL FROM:/i, "250 ok\r\n")],
    })
    const client = await connect(server)
    await client.until("220 hi\r\n")
    client.write("NOOP\r\n")
    await client.until("500 5.5.2")
    client.write("MAIL FROM:<a@example.com>\r\n")
    expect(await client.until("250 ok\r\n")).toBe(true)
    expect(server.clientLines()).toEqual(["NOOP", "MAIL FROM:<a@example.com>"])
  })

  it("records a DATA transfer exactly as sent, dot-stuffing included", async () => {
    const server = await start({
      script: [
        send("220 hi\r\n"),
        expectLine(/^DATA/i, "354 go ahead\r\n"),
        data("250 queued\r\n"),
        expectLine(/^QUIT/i, "221 bye\r\n"),
      ],
    })
    const client = await connect(server)
    await client.until("220 hi")
    client.write("DATA\r\n")
    await client.until("354")
    client.write("Subject: x\r\n\r\n..leading dot\r\n")
    client.write(".\r\nQUIT\r\n")
    expect(await client.until("221 bye")).toBe(true)

    expect(server.dataTransfers.map((d) => d.toString())).toEqual([
      "Subject: x\r\n\r\n..leading dot\r\n.\r\n",
    ])
    expect(server.clientLines()).toEqual(["DATA", "QUIT"])
  })

  it("answers QUIT after the script ends and refuses anything else", async () => {
    const server = await start({ script: [send("220 hi\r\n")] })
    const client = await connect(server)
    await client.until("220 hi")
    client.write("RSET\r\n")
    await client.until("503 5.5.1")
    client.write("QUIT\r\n")
    expect(await client.until("221 2.0.0 Bye")).toBe(true)
    expect(await client.waitFor(client.ended)).toBe(true)
  })

  it("stays silent, and waits between steps", async () => {
    const server = await start({ script: [delay(100), send("220 late\r\n"), silent()] })
    const client = await connect(server)
    const started = Date.now()
    await client.until("220 late")
    expect(Date.now() - started).toBeGreaterThanOrEqual(90)
    client.write("EHLO x\r\n")
    await client.waitFor(() => server.clientLines().length === 1)
    expect(server.clientLines()).toEqual(["EHLO x"])
    expect(client.received()).toBe("220 late\r\n")
  })

  it("starts TLS on cue and marks what came before and after", async () => {
    const server = await start({
      script: [
        send("220 hi\r\n"),
        expectLine(/^EHLO/i, lines("250-hi", "250 STARTTLS")),
        expectLine(/^STARTTLS/i, "220 2.0.0 ready\r\n"),
        startTls(),
        expectLine(/^EHLO/i, lines("250-hi", "250 AUTH LOGIN")),
        expectLine(/^QUIT/i, "221 bye\r\n"),
        close(),
      ],
    })
    const plain = await connect(server)
    await plain.until("220 hi")
    plain.write("EHLO c\r\n")
    await plain.until("STARTTLS\r\n")
    plain.write("STARTTLS\r\n")
    await plain.until("220 2.0.0 ready\r\n")

    const secure = tls.connect({ socket: plain.socket, ca: [rootCa()], servername: "localhost" })
    await new Promise<void>((resolve, reject) => {
      secure.once("secureConnect", resolve)
      secure.once("error", reject)
    })
    let received = ""
    secure.on("data", (chunk: Buffer) => (received += chunk.toString()))
    secure.write("EHLO c\r\n")
    await plain.waitFor(() => received.includes("AUTH LOGIN"))
    secure.write("QUIT\r\n")
    await plain.waitFor(() => received.includes("221 bye"))
    secure.destroy()

    expect(server.clientLines({ tls: false })).toEqual(["EHLO c", "STARTTLS"])
    expect(server.clientLines({ tls: true })).toEqual(["EHLO c", "QUIT"])
    const session = server.transcript.find((e) => e.kind === "tls")
    expect(session).toMatchObject({ kind: "tls", servername: "localhost" })
    expect((session as { protocol: string }).protocol).toMatch(/^TLSv1\.[23]$/)
  })

  it("records plain text sent after STARTTLS as discarded, never as commands", async () => {
    const server = await start({
      script: [send("220 hi\r\n"), expectLine(/^STARTTLS/i, "220 ready\r\n"), startTls(), silent()],
    })
    const client = await connect(server)
    await client.until("220 hi")
    // A pipelined command right behind STARTTLS: it must not count as a command.
    client.write("STARTTLS\r\nMAIL FROM:<evil@example.com>\r\n")
    await client.waitFor(() => server.transcript.some((e) => e.kind === "client" && e.discarded))

    expect(server.clientLines()).toEqual(["STARTTLS"])
    expect(server.transcript).toContainEqual({
      kind: "client",
      connection: 1,
      tls: false,
      line: "MAIL FROM:<evil@example.com>",
      discarded: true,
    })
  })

  it("answers a ClientHello with plain text once it has arrived", async () => {
    const server = await start({
      script: [
        send("220 hi\r\n"),
        expectLine(/^STARTTLS/i, "220 ready\r\n"),
        awaitBytes(),
        send("220 plain text again\r\n"),
        silent(),
      ],
    })
    const client = await connect(server)
    await client.until("220 hi")
    client.write("STARTTLS\r\n")
    await client.until("220 ready\r\n")
    const error = await new Promise<Error>((resolve) => {
      const secure = tls.connect({ socket: client.socket, host: server.host, ca: [rootCa()] })
      secure.once("error", resolve)
    })
    expect(error.message).toMatch(/wrong version number|packet length/i)
  })

  it("is a nodemailer-compatible STARTTLS server that verifies with the fixture root", async () => {
    const server = await start({
      script: [
        send("220 smtp.test ESMTP\r\n"),
        expectLine(/^EHLO/i, lines("250-smtp.test", "250 STARTTLS")),
        expectLine(/^STARTTLS/i, "220 2.0.0 ready\r\n"),
        startTls({ certificate: "server", maxVersion: "TLSv1.2" }),
        expectLine(/^EHLO/i, lines("250-smtp.test", "250 8BITMIME")),
        expectLine(/^MAIL FROM:/i, "250 2.1.0 ok\r\n"),
        expectLine(/^RCPT TO:/i, "250 2.1.5 ok\r\n"),
        expectLine(/^DATA/i, "354 go ahead\r\n"),
        data("250 2.0.0 queued as X1\r\n"),
      ],
    })
    const transport = nodemailer.createTransport({
      host: server.host,
      port: server.port,
      requireTLS: true,
      tls: { ca: [rootCa()], rejectUnauthorized: true },
    })
    const info = await transport.sendMail({
      from: "a@example.com",
      to: "b@example.com",
      subject: "s",
      text: ".\n",
    })

    expect(info.response).toBe("250 2.0.0 queued as X1")
    expect(server.clientLines({ tls: true }).slice(0, 3)).toEqual([
      expect.stringMatching(/^EHLO /),
      "MAIL FROM:<a@example.com>",
      "RCPT TO:<b@example.com>",
    ])
    expect(server.transcript).toContainEqual(
      expect.objectContaining({ kind: "tls", protocol: "TLSv1.2", servername: undefined }),
    )
    expect(server.dataTransfers[0]!.toString()).toMatch(/\r\n\.\.\r\n\.\r\n$/)
  })

  it("listens for implicit TLS silently until the ClientHello", async () => {
    const server = await start({
      implicitTls: { certificate: "backup" },
      script: [send("220 tls ESMTP\r\n"), expectLine(/^QUIT/i, "221 bye\r\n"), close()],
      host: "127.0.0.2",
    })
    const plain = await connect(server)
    await new Promise((r) => setTimeout(r, 100))
    expect(plain.received()).toBe("")

    const secure = tls.connect({ socket: plain.socket, host: "127.0.0.2", ca: [rootCa()] })
    let received = ""
    secure.on("data", (chunk: Buffer) => (received += chunk.toString()))
    await plain.waitFor(() => received.includes("220 tls ESMTP"))
    secure.write("QUIT\r\n")
    expect(await plain.waitFor(() => received.includes("221 bye"))).toBe(true)
    secure.destroy()
    expect(server.clientLines({ tls: true })).toEqual(["QUIT"])
  })

  it("closes an implicit-TLS connection on plain text, or when no handshake comes", async () => {
    const strict = await start({
      implicitTls: { closeOnPlaintext: true },
      script: [send("220 never\r\n")],
    })
    const chatty = await connect(strict)
    chatty.write("EHLO plain\r\n")
    expect(await chatty.waitFor(chatty.ended)).toBe(true)
    expect(strict.clientLines()).toEqual(["EHLO plain"])

    const impatient = await start({
      implicitTls: { handshakeTimeoutMs: 100 },
      script: [send("220 never\r\n")],
    })
    const quiet = await connect(impatient)
    expect(await quiet.waitFor(quiet.ended)).toBe(true)
    expect(quiet.received()).toBe("")
  })

  it("records a failed handshake when client and server share no TLS version", async () => {
    const server = await start({
      implicitTls: { maxVersion: "TLSv1.2" },
      script: [send("220 x\r\n")],
    })
    const error = await new Promise<Error>((resolve) => {
      const socket = tls.connect({
        host: server.host,
        port: server.port,
        ca: [rootCa()],
        minVersion: "TLSv1.3",
      })
      socket.once("error", resolve)
    })
    expect(error.message).toMatch(/version|alert/i)
    expect(await waitUntil(() => server.transcript.some((e) => e.kind === "tls-failed"))).toBe(true)
  })

  it("plays a script per connection and closes every socket", async () => {
    const server = await start({
      script: (n) => [send(`220 connection ${n}\r\n`), silent()],
    })
    const first = await connect(server)
    const second = await connect(server)
    expect(await first.until("220 connection 1")).toBe(true)
    expect(await second.until("220 connection 2")).toBe(true)
    expect(server.connectionCount).toBe(2)

    await server.close()
    await server.close()
    expect(await first.waitFor(first.ended)).toBe(true)
    expect(await second.waitFor(second.ended)).toBe(true)
  })

  it("refuses a host that is not loopback", async () => {
    await expect(startScriptedSmtpServer({ host: "10.0.0.1", script: [] })).rejects.toThrow(
      /loopback/,
    )
  })
})
