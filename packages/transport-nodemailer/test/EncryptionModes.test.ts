import { Effect } from "effect"
import { Mailer, TlsPolicy, Transport } from "@spoc-mail/core"
import {
  Script,
  startScriptedSmtpServer,
  startSmtpServer,
  type ScriptedSmtpServer,
  type SmtpTestServer,
} from "@spoc-mail/testkit"
import { afterEach, describe, expect, it } from "vitest"
import { NodemailerTransport } from "../src/index.ts"
import {
  bytesOf,
  capturingLogs,
  composed,
  delivered,
  failed,
  policyFor,
  send,
  settingsWith,
  trustFrom,
} from "./support/Harness.ts"

const { lines } = Script

const servers: Array<SmtpTestServer | ScriptedSmtpServer> = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()))
})

const real = async (options: Parameters<typeof startSmtpServer>[0]) => {
  const server = await startSmtpServer(options)
  servers.push(server)
  return server
}

const scripted = async (options: Parameters<typeof startScriptedSmtpServer>[0]) => {
  const server = await startScriptedSmtpServer(options)
  servers.push(server)
  return server
}

const greeting = Script.send(lines("220 mail.example.com ESMTP"))

const delivery = [
  Script.expect(/^MAIL FROM/i, lines("250 2.1.0 Ok")),
  Script.expect(/^RCPT TO/i, lines("250 2.1.5 Ok")),
  Script.expect(/^DATA/i, lines("354 End data with <CR><LF>.<CR><LF>")),
  Script.data(lines("250 2.0.0 Ok: queued as 42")),
]

describe("SSL_TLS", () => {
  it("delivers over TLS from the first byte, with the TLS session in the receipt", async () => {
    const server = await real({ tls: "implicit" })
    const message = await composed()

    const receipt = delivered(
      await send(await policyFor(server, { mailSmtpEncryption: "SSL_TLS" }), message),
    )

    expect(receipt.transport).toBe("nodemailer")
    expect(receipt.tls?.via).toBe("SSL_TLS")
    expect(receipt.tls?.protocol).toBe("TLSv1.2")
    expect(receipt.tls?.cipher).toMatch(/^TLS_ECDHE_/)
    expect(receipt.tls?.peer?.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/)
    expect(receipt.tls?.peer?.issuer).toMatch(/Spoc Mail Test/)
    expect(receipt.response).toMatch(/^250 /)
    expect(receipt.accepted).toEqual(["rcpt@example.com"])
    expect(receipt.messageId).toBe(message.messageId)
    expect(server.messages).toHaveLength(1)
    expect(server.messages[0]!.secure).toBe(true)
    // The composed bytes, with line ends as SMTP carries them (CRLF) and a CRLF at the end.
    const sent = (await bytesOf(message)).toString("latin1").replace(/\r\n|\r|\n/g, "\r\n")
    expect(server.messages[0]!.raw.toString("latin1")).toBe(
      sent.endsWith("\r\n") ? sent : `${sent}\r\n`,
    )
  })

  it("fails fast with the STARTTLS hint when the server greets in plain text (C01)", async () => {
    const server = await scripted({ script: [greeting, Script.silent()] })
    const policy = await policyFor(server, {
      mailSmtpEncryption: "SSL_TLS",
      mailSmtpConnectionTimeout: "10000",
    })

    const outcome = await send(policy)
    const error = failed(outcome)

    expect(error.reason).toBe("PlaintextWhereTlsExpected")
    expect(error.phase).toBe("tls")
    expect(error.hint).toMatch(/STARTTLS/)
    expect(outcome.ms).toBeLessThan(2_000)
    expect(server.clientLines().filter((line) => /^(EHLO|HELO|AUTH)/i.test(line))).toEqual([])
  })
})

describe("STARTTLS", () => {
  it("upgrades when offered and delivers encrypted", async () => {
    const server = await real({ tls: "starttls" })

    const receipt = delivered(
      await send(await policyFor(server, { mailSmtpEncryption: "STARTTLS" })),
    )

    expect(receipt.tls?.via).toBe("STARTTLS")
    expect(receipt.tls?.protocol).toBe("TLSv1.2")
    expect(server.messages[0]!.secure).toBe(true)
  })

  it("refuses a certificate it cannot trust (C03)", async () => {
    const server = await real({ tls: "starttls", certificate: "self-signed" })

    const error = failed(await send(await policyFor(server, { mailSmtpEncryption: "STARTTLS" })))

    expect(error.reason).toBe("CertificateUntrusted")
    expect(error.phase).toBe("tls")
    expect(server.messages).toHaveLength(0)
  })

  it("quotes a refused STARTTLS and sends nothing after it but QUIT (C04a)", async () => {
    const server = await scripted({
      script: [
        greeting,
        Script.expect(/^EHLO/i, lines("250-mail.example.com", "250-AUTH PLAIN", "250 STARTTLS")),
        Script.expect(/^STARTTLS/i, lines("454 4.7.0 TLS not available")),
        ...delivery,
      ],
    })
    const policy = await policyFor(server, {
      mailSmtpEncryption: "STARTTLS",
      mailuser: "printer",
      mailpass: "s3cret-Pass",
    })

    const error = failed(await send(policy))

    expect(error.reason).toBe("StartTlsRefused")
    expect(error.code).toBe(454)
    expect(error.enhancedCode).toBe("4.7.0")
    expect(error.serverText).toBe("TLS not available")
    expect(error.command).toBe("STARTTLS")
    const after = server.clientLines().slice(server.clientLines().indexOf("STARTTLS") + 1)
    expect(after.filter((line) => !/^QUIT$/i.test(line))).toEqual([])
  })

  it("fails fast when STARTTLS is answered with plain text, not a handshake (C04b)", async () => {
    const server = await scripted({
      script: [
        greeting,
        Script.expect(/^EHLO/i, lines("250-mail.example.com", "250 STARTTLS")),
        Script.expect(/^STARTTLS/i, lines("220 2.0.0 Ready to start TLS")),
        // After the client's ClientHello has arrived.
        Script.delay(200),
        Script.send(lines("250 this is not a TLS handshake")),
        Script.silent(),
      ],
    })
    const policy = await policyFor(server, {
      mailSmtpEncryption: "STARTTLS",
      mailSmtpConnectionTimeout: "10000",
      mailuser: "printer",
      mailpass: "s3cret-Pass",
    })

    const outcome = await send(policy)
    const error = failed(outcome)

    expect(error.phase).toBe("tls")
    expect(error.reason).toBe("PlaintextWhereTlsExpected")
    expect(error.hint).toMatch(/did not start TLS/)
    expect(outcome.ms).toBeLessThan(2_000)
    expect(server.clientLines().filter((line) => /^(AUTH|MAIL)/i.test(line))).toEqual([])
  })

  it("discards plain text sent right after 220 and fails at the connection timeout", async () => {
    const server = await scripted({
      script: [
        greeting,
        Script.expect(/^EHLO/i, lines("250-mail.example.com", "250 STARTTLS")),
        // RFC 3207 section 4.2: these bytes arrive before the handshake and must not count.
        Script.send(lines("220 2.0.0 Ready to start TLS", "250-AUTH PLAIN", "250 OK")),
        Script.silent(),
      ],
    })
    const policy = await policyFor(server, {
      mailSmtpEncryption: "STARTTLS",
      mailSmtpConnectionTimeout: "1500",
      mailuser: "printer",
      mailpass: "s3cret-Pass",
    })

    const outcome = await send(policy)
    const error = failed(outcome)

    expect(error.phase).toBe("tls")
    expect(error.reason).toBe("TlsHandshakeFailed")
    expect(outcome.ms).toBeGreaterThanOrEqual(1_400)
    expect(outcome.ms).toBeLessThan(8_000)
    expect(server.clientLines().filter((line) => /^(AUTH|MAIL)/i.test(line))).toEqual([])
  })

  it("delivers in plain text with one warning when STARTTLS is not offered (C04c)", async () => {
    const server = await scripted({
      script: [
        greeting,
        Script.expect(/^EHLO/i, lines("250-mail.example.com", "250 8BITMIME")),
        ...delivery,
      ],
    })
    const settings = settingsWith({
      mailserver: server.host,
      mailSmtpPort: String(server.port),
      mailSmtpEncryption: "STARTTLS",
    })
    const mailer = Mailer.make(
      settings,
      NodemailerTransport.make(),
      TlsPolicy.make(settings, await trustFrom()),
    )

    const { result, logs } = await capturingLogs(
      mailer.send({ to: ["rcpt@example.com"], subject: "plain", text: "hello" }),
    )

    expect(result._tag).toBe("Success")
    if (result._tag === "Success") expect(result.success.tls).toBeUndefined()
    expect(logs.filter((line) => line.startsWith("Warn"))).toHaveLength(1)
    expect(server.dataTransfers).toHaveLength(1)
  })

  it("never sends credentials when STARTTLS is not offered (C04d)", async () => {
    const server = await scripted({
      script: [
        greeting,
        Script.expect(/^EHLO/i, lines("250-mail.example.com", "250 AUTH PLAIN LOGIN")),
        ...delivery,
      ],
    })
    const policy = await policyFor(server, {
      mailSmtpEncryption: "STARTTLS",
      mailuser: "printer",
      mailpass: "s3cret-Pass",
    })

    const outcome = await send(policy)
    const error = failed(outcome)

    expect(error.reason).toBe("CleartextCredentials")
    expect(error.hint).toMatch(/SSL_TLS/)
    expect(server.clientLines().filter((line) => /^(AUTH|MAIL)/i.test(line))).toEqual([])
    const user = Buffer.from("printer").toString("base64")
    expect(server.clientLines().join("\n")).not.toContain(user)
  })
})

describe("STARTTLS_REQUIRED", () => {
  it("fails before MAIL when STARTTLS is not offered", async () => {
    const server = await scripted({
      script: [
        greeting,
        Script.expect(/^EHLO/i, lines("250-mail.example.com", "250 8BITMIME")),
        ...delivery,
      ],
    })

    const error = failed(
      await send(await policyFor(server, { mailSmtpEncryption: "STARTTLS_REQUIRED" })),
    )

    expect(error.reason).toBe("StartTlsNotOffered")
    expect(server.clientLines().filter((line) => /^(STARTTLS|MAIL)/i.test(line))).toEqual([])
  })

  it("delivers encrypted when STARTTLS is offered", async () => {
    const server = await real({ tls: "starttls" })

    const receipt = delivered(
      await send(await policyFor(server, { mailSmtpEncryption: "STARTTLS_REQUIRED" })),
    )

    expect(receipt.tls?.via).toBe("STARTTLS")
  })
})

describe("NONE", () => {
  it("never sends STARTTLS, even when offered with a self-signed certificate (C03)", async () => {
    const server = await scripted({
      script: [
        greeting,
        Script.expect(/^EHLO/i, lines("250-mail.example.com", "250-STARTTLS", "250 8BITMIME")),
        ...delivery,
      ],
    })

    const receipt = delivered(await send(await policyFor(server, { mailSmtpEncryption: "NONE" })))

    expect(receipt.tls).toBeUndefined()
    expect(server.clientLines().filter((line) => /STARTTLS/i.test(line))).toEqual([])
    expect(server.dataTransfers).toHaveLength(1)
  })

  it("delivers through a server offering STARTTLS with an untrusted certificate", async () => {
    const server = await real({ tls: "starttls", certificate: "self-signed" })

    delivered(await send(await policyFor(server, { mailSmtpEncryption: "NONE" })))

    expect(server.messages[0]!.secure).toBe(false)
  })
})

describe("a port that wants TLS from the first byte (C02)", () => {
  it.each(["STARTTLS", "NONE"])(
    "%s times out on the greeting after the connection timeout, with the SSL_TLS hint",
    async (mode) => {
      const server = await scripted({ implicitTls: {}, script: [greeting, Script.silent()] })
      const policy = await policyFor(server, {
        mailSmtpEncryption: mode,
        mailSmtpConnectionTimeout: "3000",
        mailSmtpTimeout: "60000",
      })

      const outcome = await send(policy)
      const error = failed(outcome)

      expect(error.reason).toBe("GreetingTimeout")
      expect(error.phase).toBe("greeting")
      expect(error.hint).toMatch(/SSL_TLS/)
      expect(outcome.ms).toBeGreaterThanOrEqual(2_900)
      expect(outcome.ms).toBeLessThan(10_000)
    },
  )

  it("reports a lost connection with the same hint when the listener hangs up", async () => {
    const server = await scripted({
      implicitTls: { handshakeTimeoutMs: 100 },
      script: [greeting, Script.silent()],
    })
    const policy = await policyFor(server, {
      mailSmtpEncryption: "STARTTLS",
      mailSmtpConnectionTimeout: "3000",
    })

    const outcome = await send(policy)
    const error = failed(outcome)

    expect(error.reason).toBe("ConnectionLost")
    expect(error.hint).toMatch(/SSL_TLS/)
    expect(outcome.ms).toBeLessThan(1_000)
  })
})

it("provides core's Transport service", async () => {
  const name = await Effect.runPromise(
    Effect.gen(function* () {
      const transport = yield* Transport.Transport
      return transport.name
    }).pipe(Effect.provide(NodemailerTransport.layer)),
  )
  expect(name).toBe("nodemailer")
})
