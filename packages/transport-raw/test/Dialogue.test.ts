import { type ScriptedSmtpServer, Script, startScriptedSmtpServer } from "@spoc-mail/testkit"
import { afterEach, describe, expect, it } from "vitest"
import { make } from "../src/RawTransport.ts"
import { compose, failure, policyFor, recipient, run, success, unstuff } from "./support/harness.ts"

const { lines } = Script

const servers: Array<ScriptedSmtpServer> = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()))
})

const start = async (options: Parameters<typeof startScriptedSmtpServer>[0]) => {
  const server = await startScriptedSmtpServer(options)
  servers.push(server)
  return server
}

const greet = Script.send(lines("220 mx.test ESMTP"))
const ehloReply = (...capabilities: ReadonlyArray<string>) =>
  lines(
    ...["mx.test", ...capabilities].map(
      (text, i) => `250${i === capabilities.length ? " " : "-"}${text}`,
    ),
  )
const ehlo = (...capabilities: ReadonlyArray<string>) =>
  Script.expect(/^EHLO /i, ehloReply(...capabilities))
const envelope = [
  Script.expect(/^MAIL FROM:/i, lines("250 2.1.0 Ok")),
  Script.expect(/^RCPT TO:/i, lines("250 2.1.5 Ok")),
  Script.expect(/^DATA$/i, lines("354 End data with <CR><LF>.<CR><LF>")),
  Script.data(lines("250 2.0.0 Ok: queued as 1A2B")),
]
const starttls = [
  Script.expect(/^STARTTLS$/i, lines("220 2.0.0 Ready to start TLS")),
  Script.startTls(),
]

const send = async (
  server: ScriptedSmtpServer,
  overrides: Parameters<typeof policyFor>[1] = {},
  message?: Awaited<ReturnType<typeof compose>>,
) => run(make().send(message ?? (await compose()), policyFor(server, overrides)))

describe("the SMTP dialogue", () => {
  it("delivers in plain text: EHLO, MAIL, RCPT, DATA, one end-of-data, QUIT", async () => {
    const server = await start({ script: [greet, ehlo("8BITMIME"), ...envelope] })
    const message = await compose()

    const receipt = success(await send(server, {}, message))

    expect(server.clientLines()).toEqual([
      "EHLO controller.test",
      "MAIL FROM:<print@example.com> BODY=8BITMIME",
      `RCPT TO:<${recipient}>`,
      "DATA",
      "QUIT",
    ])
    expect(receipt).toMatchObject({
      transport: "raw",
      endpoint: { host: server.host, port: server.port, role: "primary" },
      messageId: message.messageId,
      accepted: [recipient],
      rejected: [],
      response: "250 2.0.0 Ok: queued as 1A2B",
      tls: undefined,
      authenticated: false,
    })
    const sent: Array<Buffer> = []
    for await (const chunk of message.stream()) sent.push(chunk as Buffer)
    expect(unstuff(server.dataTransfers[0]!)).toBe(
      Buffer.concat(sent).toString("latin1").replace(/\r?\n/g, "\r\n"),
    )
  })

  it("falls back to HELO when EHLO is not understood, and uses no extension", async () => {
    const server = await start({
      script: [
        greet,
        Script.expect(/^EHLO /i, lines("502 5.5.2 Error: command not recognized")),
        Script.expect(/^HELO /i, lines("250 mx.test")),
        ...envelope,
      ],
    })
    success(await send(server))
    expect(server.clientLines().slice(0, 3)).toEqual([
      "EHLO controller.test",
      "HELO controller.test",
      "MAIL FROM:<print@example.com>",
    ])
  })

  it("refuses a session greeted with 421, quoting the server's words", async () => {
    const server = await start({
      script: [Script.send(lines("421 4.3.2 Service not available")), Script.close()],
    })
    const error = failure(await send(server))
    expect(error).toMatchObject({
      reason: "GreetingRejected",
      phase: "greeting",
      code: 421,
      enhancedCode: "4.3.2",
      serverText: "Service not available",
    })
  })

  it("never sends STARTTLS under NONE, even when offered (C03)", async () => {
    const server = await start({ script: [greet, ehlo("STARTTLS"), ...envelope] })
    success(await send(server, { mode: "NONE" }))
    expect(server.clientLines()).not.toContain("STARTTLS")
  })

  describe("STARTTLS", () => {
    it("sees STARTTLS on the last EHLO line, upgrades, says EHLO again (C07)", async () => {
      const server = await start({
        script: [
          greet,
          ehlo("PIPELINING", "STARTTLS"),
          ...starttls,
          ehlo("PIPELINING"),
          ...envelope,
        ],
      })
      const receipt = success(await send(server, { mode: "STARTTLS" }))
      expect(server.clientLines({ tls: false })).toEqual(["EHLO controller.test", "STARTTLS"])
      expect(server.clientLines({ tls: true })[0]).toBe("EHLO controller.test")
      expect(receipt.tls).toMatchObject({ via: "STARTTLS", protocol: "TLSv1.3" })
      expect(server.transcript.find((e) => e.kind === "tls")).toMatchObject({
        servername: undefined, // no SNI for an IP address (RFC 6066)
      })
      expect(receipt.tls?.peer?.subject).toContain("CN=")
    })

    it("uses only the capabilities offered after TLS: AUTH LOGIN, never NTLM (C05)", async () => {
      const server = await start({
        script: [
          greet,
          ehlo("STARTTLS", "AUTH NTLM"),
          ...starttls,
          ehlo("AUTH NTLM LOGIN", "SIZE 37748736"),
          Script.expect(/^AUTH LOGIN$/i, lines("334 VXNlcm5hbWU6")),
          Script.expect(/.*/, lines("334 UGFzc3dvcmQ6")),
          Script.expect(/.*/, lines("235 2.7.0 Authentication successful")),
          ...envelope,
        ],
      })
      const receipt = success(await send(server, { mode: "STARTTLS", password: "p€ss" }))
      expect(receipt.authenticated).toBe(true)
      expect(server.clientLines().some((l) => /NTLM/i.test(l))).toBe(false)
    })

    it("drops replies the server slipped in before the handshake", async () => {
      const server = await start({
        script: [
          greet,
          ehlo("STARTTLS"),
          Script.expect(
            /^STARTTLS$/i,
            lines("220 2.0.0 Ready", "250-mx.test", "250 AUTH PLAIN", "235 2.7.0 Accepted"),
          ),
          Script.startTls(),
          ehlo("AUTH LOGIN"),
          Script.expect(/^AUTH LOGIN$/i, lines("334 VXNlcm5hbWU6")),
          Script.expect(/.*/, lines("334 UGFzc3dvcmQ6")),
          Script.expect(/.*/, lines("235 2.7.0 Authentication successful")),
          ...envelope,
        ],
      })
      success(await send(server, { mode: "STARTTLS", password: "p€ss" }))
      const inside = server.clientLines({ tls: true })
      expect(inside.slice(0, 2)).toEqual(["EHLO controller.test", "AUTH LOGIN"])
    })

    it("ends with QUIT when STARTTLS is refused; no AUTH, no MAIL (C04a)", async () => {
      const server = await start({
        script: [
          greet,
          ehlo("STARTTLS", "AUTH PLAIN"),
          Script.expect(/^STARTTLS$/i, lines("454 4.7.0 TLS not available")),
        ],
      })
      const error = failure(await send(server, { mode: "STARTTLS", password: "p€ss" }))
      expect(error).toMatchObject({
        reason: "StartTlsRefused",
        phase: "starttls",
        command: "STARTTLS",
        code: 454,
        enhancedCode: "4.7.0",
        serverText: "TLS not available",
      })
      expect(server.clientLines()).toEqual(["EHLO controller.test", "STARTTLS", "QUIT"])
    })

    it("fails with a TLS error, in time, when plain text follows the 220 (C04b)", async () => {
      const server = await start({
        script: [
          greet,
          ehlo("STARTTLS", "AUTH PLAIN"),
          Script.expect(/^STARTTLS$/i, lines("220 2.0.0 Ready")),
          Script.awaitBytes(),
          Script.send(lines("250 mx.test pretends TLS is up")),
          Script.silent(),
        ],
      })
      const ran = await send(server, {
        mode: "STARTTLS",
        password: "p€ss",
        connectionTimeoutMs: 3_000,
        commandTimeoutMs: 60_000,
      })
      expect(failure(ran)).toMatchObject({ reason: "PlaintextWhereTlsExpected", phase: "tls" })
      expect(ran.ms).toBeLessThan(3_000)
      expect(server.clientLines().some((l) => /^AUTH/i.test(l))).toBe(false)
    })

    it("times out a handshake that never comes within the connection timeout", async () => {
      const server = await start({
        script: [
          greet,
          ehlo("STARTTLS"),
          Script.expect(/^STARTTLS$/i, lines("220 Ready")),
          Script.silent(),
        ],
      })
      const ran = await send(server, {
        mode: "STARTTLS",
        connectionTimeoutMs: 1_000,
        commandTimeoutMs: 60_000,
      })
      expect(failure(ran)).toMatchObject({ reason: "TlsHandshakeFailed", phase: "tls" })
      expect(ran.ms).toBeGreaterThanOrEqual(900)
      expect(ran.ms).toBeLessThan(10_000)
    })

    it("delivers in plain text when STARTTLS is absent, without credentials (C04c)", async () => {
      const server = await start({ script: [greet, ehlo("PIPELINING"), ...envelope] })
      const receipt = success(await send(server, { mode: "STARTTLS" }))
      expect(receipt.tls).toBeUndefined()
      expect(server.clientLines()).not.toContain("STARTTLS")
    })

    it("never sends credentials in clear when STARTTLS is not offered (C04d)", async () => {
      const server = await start({ script: [greet, ehlo("AUTH PLAIN LOGIN")] })
      const error = failure(await send(server, { mode: "STARTTLS", password: "p€ss" }))
      expect(error.reason).toBe("CleartextCredentials")
      expect(error.hint).toContain("[EMPTY]")
      expect(server.clientLines()).toEqual(["EHLO controller.test", "QUIT"])
    })

    it("fails before MAIL under STARTTLS_REQUIRED when STARTTLS is not offered", async () => {
      const server = await start({ script: [greet, ehlo("PIPELINING")] })
      const error = failure(await send(server, { mode: "STARTTLS_REQUIRED" }))
      expect(error.reason).toBe("StartTlsNotOffered")
      expect(server.clientLines()).toEqual(["EHLO controller.test", "QUIT"])
    })
  })

  describe("AUTH", () => {
    it("runs the two-prompt LOGIN dialogue with the password as UTF-8 (C08)", async () => {
      const server = await start({
        script: [
          greet,
          ehlo("AUTH GSSAPI NTLM LOGIN"),
          Script.expect(/^AUTH LOGIN$/i, lines("334 VXNlcm5hbWU6")),
          Script.expect(/.*/, lines("334 UGFzc3dvcmQ6")),
          Script.expect(/.*/, lines("235 2.7.0 Authentication successful")),
          ...envelope,
        ],
      })
      success(await send(server, { password: "p€ss" }))
      expect(server.clientLines().slice(1, 4)).toEqual([
        "AUTH LOGIN",
        Buffer.from("printer").toString("base64"),
        Buffer.from("p€ss", "utf8").toString("base64"),
      ])
    })

    it("understands the old AUTH= form (C07)", async () => {
      const server = await start({
        script: [
          greet,
          ehlo("AUTH=LOGIN"),
          Script.expect(/^AUTH LOGIN$/i, lines("334 VXNlcm5hbWU6")),
          Script.expect(/.*/, lines("334 UGFzc3dvcmQ6")),
          Script.expect(/.*/, lines("235 2.7.0 Authentication successful")),
          ...envelope,
        ],
      })
      expect(success(await send(server, { password: "p€ss" })).authenticated).toBe(true)
    })

    it("prefers PLAIN with its initial response when offered", async () => {
      const server = await start({
        script: [
          greet,
          ehlo("AUTH LOGIN PLAIN"),
          Script.expect(/^AUTH PLAIN /i, lines("235 2.7.0 Ok")),
          ...envelope,
        ],
      })
      success(await send(server, { password: "p€ss" }))
      expect(server.clientLines()[1]).toBe(
        `AUTH PLAIN ${Buffer.from("\u0000printer\u0000p€ss", "utf8").toString("base64")}`,
      )
    })

    it("sends no AUTH line when no offered mechanism is usable (C08)", async () => {
      const server = await start({ script: [greet, ehlo("AUTH GSSAPI NTLM")] })
      const error = failure(await send(server, { password: "p€ss" }))
      expect(error).toMatchObject({ reason: "NoUsableAuthMechanism", phase: "auth" })
      expect(error.detail).toContain("GSSAPI NTLM")
      expect(server.clientLines()).toEqual(["EHLO controller.test", "QUIT"])
    })

    it("sends no AUTH when the server never offers it, hinting at [EMPTY] (C06)", async () => {
      const server = await start({
        script: [
          greet,
          ehlo("PIPELINING"),
          Script.expect(/^AUTH/i, lines("503 5.5.1 Error: authentication not enabled")),
        ],
      })
      const error = failure(await send(server, { password: "p€ss" }))
      expect(error).toMatchObject({ reason: "AuthNotOffered", phase: "auth" })
      expect(error.hint).toContain("[EMPTY]")
      expect(server.clientLines().some((l) => /^AUTH/i.test(l))).toBe(false)
    })

    it("keeps the server's text of a 535 and does not retry (C08)", async () => {
      const server = await start({
        script: [
          greet,
          ehlo("AUTH LOGIN PLAIN"),
          Script.expect(/^AUTH PLAIN /i, lines("535 5.7.8 Error: authentication failed: bad")),
        ],
      })
      const error = failure(await send(server, { password: "wrong" }))
      expect(error).toMatchObject({
        reason: "AuthRejected",
        phase: "auth",
        command: "AUTH PLAIN",
        code: 535,
        enhancedCode: "5.7.8",
        serverText: "Error: authentication failed: bad",
      })
      expect(server.clientLines().filter((l) => /^AUTH/i.test(l))).toHaveLength(1)
      expect(server.clientLines().at(-1)).toBe("QUIT")
    })
  })

  describe("extensions", () => {
    it("pipelines MAIL and RCPT in one write when PIPELINING is offered", async () => {
      const server = await start({
        script: [
          greet,
          ehlo("PIPELINING"),
          // No reply to MAIL until RCPT arrived: a client that waited would time out.
          Script.expect(/^MAIL FROM:/i),
          Script.expect(/^RCPT TO:/i),
          Script.expect(
            /^RCPT TO:/i,
            lines("250 2.1.0 Ok", "250 2.1.5 Ok", "550 5.1.1 No such user"),
          ),
          Script.expect(/^DATA$/i, lines("354 go ahead")),
          Script.data(lines("250 2.0.0 Ok")),
        ],
      })
      const message = await compose({ to: [recipient, "nobody@example.com"] })
      const receipt = success(await send(server, { commandTimeoutMs: 3_000 }, message))
      expect(receipt.accepted).toEqual([recipient])
      expect(receipt.rejected).toEqual([
        { address: "nobody@example.com", reply: "550 5.1.1 No such user" },
      ])
    })

    it("refuses a message over the SIZE limit before MAIL, else declares its size", async () => {
      const big = await start({ script: [greet, ehlo("SIZE 1000")] })
      const message = await compose({ text: "x".repeat(2_000) })
      const error = failure(await send(big, {}, message))
      expect(error).toMatchObject({ reason: "MessageTooLarge", phase: "mail" })
      expect(big.clientLines()).toEqual(["EHLO controller.test", "QUIT"])

      const roomy = await start({ script: [greet, ehlo("SIZE 100000"), ...envelope] })
      success(await send(roomy, {}, message))
      const size = Number(/SIZE=(\d+)/.exec(roomy.clientLines()[1]!)?.[1])
      expect(size).toBe(roomy.dataTransfers[0]!.length - 3)
    })

    it("fails before MAIL when a non-ASCII address meets a server without SMTPUTF8", async () => {
      const server = await start({ script: [greet, ehlo("8BITMIME")] })
      const message = await compose({ to: ["jörg@example.com"] })
      const error = failure(await send(server, {}, message))
      expect(error).toMatchObject({ reason: "SmtpUtf8Unsupported", phase: "mail" })
      expect(server.clientLines()).toEqual(["EHLO controller.test", "QUIT"])
    })

    it("declares SMTPUTF8 on MAIL when an address needs it and the server offers it", async () => {
      const server = await start({ script: [greet, ehlo("SMTPUTF8"), ...envelope] })
      success(await send(server, {}, await compose({ to: ["jörg@example.com"] })))
      expect(server.clientLines()[1]).toBe("MAIL FROM:<print@example.com> SMTPUTF8")
      expect(server.clientLines()[2]).toBe("RCPT TO:<jörg@example.com>")
    })
  })

  describe("refusals and outcomes", () => {
    it("fails when every recipient is refused, temporarily if one refusal was", async () => {
      const server = await start({
        script: [
          greet,
          ehlo(),
          Script.expect(/^MAIL/i, lines("250 Ok")),
          Script.expect(/^RCPT/i, lines("550 5.1.1 unknown")),
          Script.expect(/^RCPT/i, lines("450 4.2.0 greylisted")),
        ],
      })
      const message = await compose({ to: ["a@example.com", "b@example.com"] })
      const error = failure(await send(server, {}, message))
      expect(error).toMatchObject({ reason: "RecipientsRejected", phase: "rcpt", code: 450 })
      expect(error.transient).toBe(true)
      expect(server.clientLines().at(-1)).toBe("QUIT")
    })

    it("reports a refused sender with the server's reply", async () => {
      const server = await start({
        script: [greet, ehlo(), Script.expect(/^MAIL/i, lines("553 5.7.1 Sender not owned"))],
      })
      expect(failure(await send(server))).toMatchObject({
        reason: "SenderRejected",
        phase: "mail",
        code: 553,
        command: "MAIL FROM:<print@example.com>",
      })
    })

    it("tells a refused message from one too large", async () => {
      const refusing = await start({
        script: [greet, ehlo(), ...envelope.slice(0, 3), Script.data(lines("554 5.7.1 spam"))],
      })
      expect(failure(await send(refusing))).toMatchObject({
        reason: "MessageRejected",
        phase: "message",
        code: 554,
      })
      const full = await start({
        script: [greet, ehlo(), ...envelope.slice(0, 3), Script.data(lines("552 5.3.4 too big"))],
      })
      expect(failure(await send(full)).reason).toBe("MessageTooLarge")
    })

    it("calls the outcome unknown when the connection drops after the final dot", async () => {
      const server = await start({
        script: [greet, ehlo(), ...envelope.slice(0, 3), Script.data(), Script.close()],
      })
      const error = failure(await send(server))
      expect(error).toMatchObject({ reason: "OutcomeUnknown", phase: "message" })
      expect(server.dataTransfers).toHaveLength(1)
    })

    it("calls the outcome unknown when no reply follows the final dot in time", async () => {
      const server = await start({
        script: [greet, ehlo(), ...envelope.slice(0, 3), Script.data(), Script.silent()],
      })
      const ran = await send(server, { commandTimeoutMs: 500 })
      expect(failure(ran)).toMatchObject({ reason: "OutcomeUnknown", phase: "message" })
    })

    it("stops at a reply no command asked for, before sending the next command", async () => {
      const server = await start({
        script: [
          greet,
          Script.expect(/^EHLO/i, lines("250 mx.test", "250 2.1.0 surprise")),
          ...envelope,
        ],
      })
      const error = failure(await send(server))
      expect(error).toMatchObject({ reason: "ProtocolViolation", phase: "mail" })
      expect(error.detail).toContain("250 2.1.0 surprise")
      expect(server.clientLines().some((l) => /^MAIL/i.test(l))).toBe(false)
    })

    it("refuses CR or LF in an address before connecting", async () => {
      const server = await start({ script: [greet, ehlo(), ...envelope] })
      const message = await compose()
      const forged = {
        ...message,
        envelope: { ...message.envelope, to: ["a@example.com>\r\nRCPT TO:<b@example.com"] },
      }
      const error = failure(await send(server, {}, forged))
      expect(error).toMatchObject({ reason: "InvalidArgument", phase: "rcpt" })
      expect(server.connectionCount).toBe(0)
    })

    it("refuses CR, LF or NUL in the EHLO name or the credentials before connecting", async () => {
      const server = await start({ script: [greet, ehlo(), ...envelope] })
      expect(failure(await send(server, { clientName: "host\r\nQUIT" }))).toMatchObject({
        reason: "InvalidArgument",
        phase: "ehlo",
      })
      const error = failure(await send(server, { password: "pa\u0000ss" }))
      expect(error).toMatchObject({ reason: "InvalidArgument", phase: "auth" })
      expect(server.connectionCount).toBe(0)
    })
  })
})
