import type * as tls from "node:tls"
import { afterEach, describe, expect, it } from "vitest"
import { TlsPolicy } from "@spoc-mail/core"
import nodemailer from "nodemailer"
import { fixturePath, readFixture, rootCa } from "../src/Fixtures.ts"
import {
  type SmtpTestServer,
  type SmtpTestServerOptions,
  startSmtpServer,
} from "../src/SmtpTestServer.ts"

const servers: Array<SmtpTestServer> = []
const start = async (options: SmtpTestServerOptions) => {
  const server = await startSmtpServer(options)
  servers.push(server)
  return server
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

/** A nodemailer client with certificate checks on and the fixture root as its only CA. */
const client = (
  server: SmtpTestServer,
  extra: { secure?: boolean; requireTLS?: boolean; ignoreTLS?: boolean; auth?: object } = {},
) =>
  nodemailer.createTransport({
    host: server.host,
    port: server.port,
    secure: extra.secure ?? false,
    requireTLS: extra.requireTLS ?? false,
    ignoreTLS: extra.ignoreTLS ?? false,
    ...(extra.auth === undefined ? {} : { auth: extra.auth }),
    tls: {
      ca: [rootCa()],
      rejectUnauthorized: true,
      // core's check: Node 22.23's own misses ::1 in the fixture's long-form IP address.
      checkServerIdentity: (_host: string, certificate: tls.PeerCertificate) =>
        TlsPolicy.checkServer(server.host, certificate),
    },
    connectionTimeout: 5_000,
  })

const message = {
  from: "sender@example.com",
  to: ["one@example.com", "two@example.com"],
  subject: "hello",
  text: "line one\r\n.dot line\r\n",
}

describe("SmtpTestServer", () => {
  it("captures a plain-text message with its envelope and DATA bytes", async () => {
    const server = await start({})
    await client(server, { ignoreTLS: true }).sendMail(message)

    expect(server.messages).toHaveLength(1)
    const [received] = server.messages
    expect(received!.envelope).toEqual({
      from: "sender@example.com",
      to: ["one@example.com", "two@example.com"],
    })
    expect(received!.secure).toBe(false)
    expect(received!.tlsProtocol).toBeUndefined()
    const raw = received!.raw.toString("utf8")
    expect(raw).toContain("Subject: hello\r\n")
    // Dot-unstuffed: the client sent `..dot line`, the capture holds `.dot line`.
    expect(raw).toContain("\r\n.dot line\r\n")
    expect(raw).not.toContain("..dot line")
  })

  it("upgrades with STARTTLS and verifies the fixture chain", async () => {
    const server = await start({ tls: "starttls" })
    await client(server, { requireTLS: true }).sendMail(message)

    const [received] = server.messages
    expect(received!.secure).toBe(true)
    expect(received!.tlsProtocol).toMatch(/^TLSv1\.[23]$/)
    expect(received!.cipher).toMatch(/^TLS_/)
  })

  it("speaks TLS from the first byte in implicit mode", async () => {
    const server = await start({ tls: "implicit" })
    await client(server, { secure: true }).sendMail(message)

    expect(server.messages[0]!.secure).toBe(true)
    expect(server.messages[0]!.tlsProtocol).toMatch(/^TLSv1\.[23]$/)
  })

  it("does not offer STARTTLS in none mode", async () => {
    const server = await start({ tls: "none" })
    const error = await client(server, { requireTLS: true })
      .sendMail(message)
      .catch((e: unknown) => e)
    expect(String(error)).toMatch(/STARTTLS/i)
    expect(server.messages).toHaveLength(0)
  })

  it("fails verification for a certificate of another host", async () => {
    const server = await start({ tls: "implicit", certificate: "wrong-host" })
    const error = await client(server, { secure: true })
      .sendMail(message)
      .catch((e: unknown) => e as { code?: string; message?: string })
    expect(String((error as Error).message)).toMatch(/altnames|other\.test/i)
    expect(server.messages).toHaveLength(0)
  })

  it.each([
    ["expired", /expired/i],
    ["self-signed", /self[- ]signed/i],
  ] as const)("presents the %s fixture leaf, which the client refuses", async (name, pattern) => {
    const server = await start({ tls: "implicit", certificate: name })
    const error = await client(server, { secure: true })
      .sendMail(message)
      .catch((e: unknown) => e as Error)
    expect(String((error as Error).message)).toMatch(pattern)
  })

  it("presents the ECDSA leaf", async () => {
    const server = await start({
      tls: "implicit",
      certificate: "server-ecdsa",
      maxVersion: "TLSv1.2",
    })
    await client(server, { secure: true }).sendMail(message)
    expect(server.messages[0]!.cipher).toMatch(/ECDSA/)
  })

  it("serves the backup leaf on 127.0.0.2 and ::1 with the server leaf", async () => {
    const backup = await start({ host: "127.0.0.2", tls: "implicit", certificate: "backup" })
    await client(backup, { secure: true }).sendMail(message)
    expect(backup.messages).toHaveLength(1)

    const v6 = await start({ host: "::1", tls: "starttls" })
    await client(v6, { requireTLS: true }).sendMail(message)
    expect(v6.messages[0]!.secure).toBe(true)
  })

  it("sends no SNI for an IP host", async () => {
    const server = await start({ tls: "implicit" })
    await client(server, { secure: true }).sendMail(message)
    expect(server.messages[0]!.servername).toBeUndefined()
  })

  it("requires AUTH and accepts PLAIN and LOGIN with the right password", async () => {
    const auth = { user: "printer", password: "p€ss" }
    const server = await start({ tls: "starttls", auth })
    for (const method of ["PLAIN", "LOGIN"]) {
      await client(server, {
        requireTLS: true,
        auth: { ...auth, pass: auth.password, method },
      }).sendMail(message)
    }

    expect(server.messages.map((m) => m.user)).toEqual(["printer", "printer"])
    expect(server.authAttempts).toEqual([
      { method: "PLAIN", user: "printer", accepted: true },
      { method: "LOGIN", user: "printer", accepted: true },
    ])
    expect(JSON.stringify(server.authAttempts)).not.toContain("p€ss")
  })

  it("answers a wrong password with 535 and refuses mail without AUTH", async () => {
    const server = await start({ tls: "starttls", auth: { user: "printer", password: "right" } })
    const wrong = await client(server, {
      requireTLS: true,
      auth: { user: "printer", pass: "wrong" },
    })
      .sendMail(message)
      .catch((e: { responseCode?: number }) => e)
    expect((wrong as { responseCode?: number }).responseCode).toBe(535)

    const none = await client(server, { requireTLS: true })
      .sendMail(message)
      .catch((e: { responseCode?: number }) => e)
    expect((none as { responseCode?: number }).responseCode).toBe(530)
    expect(server.messages).toHaveLength(0)
  })

  it("refuses a message over its SIZE limit", async () => {
    const server = await start({ size: 1000 })
    const error = await client(server, { ignoreTLS: true })
      .sendMail({ ...message, text: "x".repeat(5000) })
      .catch((e: { responseCode?: number }) => e)
    expect((error as { responseCode?: number }).responseCode).toBe(552)
    expect(server.messages).toHaveLength(0)
  })

  it("greets with a rejection and closes when told to", async () => {
    const server = await start({ greeting: { code: 421, text: "4.3.2 Service not available" } })
    const error = await client(server, { ignoreTLS: true })
      .sendMail(message)
      .catch((e: { response?: string }) => e)
    expect((error as { response?: string }).response).toBe("421 4.3.2 Service not available")
  })

  it("rejects recipients through a hook and MAIL through a fixed reply", async () => {
    const server = await start({
      onRcpt: (address) =>
        address.startsWith("two@") ? { code: 550, text: "5.1.1 no such user" } : undefined,
    })
    const info = await client(server, { ignoreTLS: true }).sendMail(message)
    expect(info.rejected).toEqual(["two@example.com"])
    expect(server.messages[0]!.envelope.to).toEqual(["one@example.com"])

    const refusing = await start({ replies: { mail: { code: 451, text: "try later" } } })
    const error = await client(refusing, { ignoreTLS: true })
      .sendMail(message)
      .catch((e: { response?: string }) => e)
    expect((error as { response?: string }).response).toMatch(/^451 4\.\d\.\d try later$/)
  })

  it("limits the server's TLS versions", async () => {
    const server = await start({ tls: "implicit", maxVersion: "TLSv1.2" })
    await client(server, { secure: true }).sendMail(message)
    expect(server.messages[0]!.tlsProtocol).toBe("TLSv1.2")
  })

  it("closes open connections and may be closed twice", async () => {
    const server = await start({})
    const transport = nodemailer.createTransport({
      host: server.host,
      port: server.port,
      ignoreTLS: true,
      pool: true,
    })
    await transport.sendMail(message)
    expect(server.connectionCount).toBe(1)

    await server.close()
    await server.close()
    transport.close()
  })

  it("shares a port with a server on another loopback address", async () => {
    const backup = await start({ host: "127.0.0.2" })
    const primary = await start({ host: "127.0.0.1", port: backup.port })
    await client(primary, { ignoreTLS: true }).sendMail(message)
    await client(backup, { ignoreTLS: true }).sendMail(message)
    expect(primary.port).toBe(backup.port)
    expect([primary.messages.length, backup.messages.length]).toEqual([1, 1])
  })

  it("refuses a host that is not loopback", async () => {
    await expect(startSmtpServer({ host: "0.0.0.0" })).rejects.toThrow(/loopback/)
  })
})

describe("Fixtures", () => {
  it("resolves fixture paths inside the package's fixtures folder", () => {
    expect(fixturePath("pki/root-ca.crt")).toMatch(/testkit[\\/]fixtures[\\/]pki[\\/]root-ca\.crt$/)
    expect(readFixture("pki/root-ca.crt", "latin1")).toContain("BEGIN CERTIFICATE")
    expect(readFixture("pki/root-ca.der")[0]).toBe(0x30)
  })

  it("refuses paths that leave the fixtures folder", () => {
    expect(() => fixturePath("../package.json")).toThrow(/inside the fixtures folder/)
  })
})
