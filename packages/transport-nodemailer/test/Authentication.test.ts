import { inspect } from "node:util"
import {
  Script,
  startScriptedSmtpServer,
  startSmtpServer,
  type ScriptedSmtpServer,
  type SmtpTestServer,
} from "@spoc-mail/testkit"
import { Redacted } from "effect"
import { afterEach, describe, expect, it, vi } from "vitest"
import { delivered, failed, policyFor, send, type SendOutcome } from "./support/Harness.ts"

const { lines } = Script

const servers: Array<SmtpTestServer | ScriptedSmtpServer> = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()))
})

const scripted = async (script: ReadonlyArray<Script.Step>) => {
  const server = await startScriptedSmtpServer({ script })
  servers.push(server)
  return server
}

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64")

const greeting = Script.send(lines("220 mail.example.com ESMTP"))

const delivery = [
  Script.expect(/^MAIL FROM/i, lines("250 2.1.0 Ok")),
  Script.expect(/^RCPT TO/i, lines("250 2.1.5 Ok")),
  Script.expect(/^DATA/i, lines("354 go ahead")),
  Script.data(lines("250 2.0.0 Ok: queued")),
]

/** The two-prompt AUTH LOGIN dialogue, then `final`. */
const loginDialogue = (final: string) => [
  Script.expect(/^AUTH LOGIN$/i, lines("334 VXNlcm5hbWU6")),
  Script.expect(/.*/, lines("334 UGFzc3dvcmQ6")),
  Script.expect(/.*/, lines(final)),
]

/** Upgrades with STARTTLS: pre-TLS EHLO lines, then the post-TLS EHLO lines. */
const startTls = (before: ReadonlyArray<string>, after: ReadonlyArray<string>) => [
  greeting,
  Script.expect(/^EHLO/i, lines("250-mail.example.com", ...before)),
  Script.expect(/^STARTTLS$/i, lines("220 2.0.0 Ready")),
  Script.startTls(),
  Script.expect(/^EHLO/i, lines("250-mail.example.com", ...after)),
]

const credentials = (password = "s3cret-Pass") => ({
  mailSmtpEncryption: "STARTTLS",
  mailuser: "printer",
  mailpass: password,
})

/** Every text a user or a log could see of an outcome. */
const everythingShown = (outcome: SendOutcome): string =>
  [
    ...outcome.logs,
    outcome.result._tag === "Failure"
      ? [
          outcome.result.failure.message,
          JSON.stringify(outcome.result.failure),
          inspect(outcome.result.failure, { depth: 10 }),
        ].join("\n")
      : JSON.stringify(outcome.result.success),
  ].join("\n")

describe("capabilities after STARTTLS (C05, C07)", () => {
  it("uses only the capabilities of the EHLO after TLS", async () => {
    const server = await scripted([
      ...startTls(["250-STARTTLS", "250 AUTH NTLM"], ["250-AUTH NTLM LOGIN", "250 SIZE 37748736"]),
      ...loginDialogue("235 2.7.0 Authentication successful"),
      ...delivery,
    ])

    const receipt = delivered(await send(await policyFor(server, credentials())))

    expect(receipt.authenticated).toBe(true)
    expect(server.clientLines({ tls: true })).toContain("AUTH LOGIN")
    expect(server.clientLines().filter((line) => /NTLM/i.test(line))).toEqual([])
  })

  it("sees STARTTLS on the last EHLO line and understands AUTH=LOGIN", async () => {
    const server = await scripted([
      ...startTls(["250 STARTTLS"], ["250-AUTH=LOGIN", "250 8BITMIME"]),
      ...loginDialogue("235 2.7.0 Authentication successful"),
      ...delivery,
    ])

    const receipt = delivered(await send(await policyFor(server, credentials())))

    expect(receipt.tls?.via).toBe("STARTTLS")
    expect(server.clientLines({ tls: true })[1]).toBe("AUTH LOGIN")
  })
})

describe("AUTH not offered (C06)", () => {
  it("refuses with the [EMPTY] hint and sends no AUTH line", async () => {
    const server = await scripted([
      ...startTls(["250 STARTTLS"], ["250 8BITMIME"]),
      Script.expect(/^AUTH/i, lines("503 5.5.1 AUTH not available")),
      ...delivery,
    ])

    const error = failed(await send(await policyFor(server, credentials())))

    expect(error.reason).toBe("AuthNotOffered")
    expect(error.phase).toBe("auth")
    expect(error.hint).toMatch(/mailuser/)
    expect(error.hint).toMatch(/\[EMPTY\]/)
    expect(server.clientLines().filter((line) => /^(AUTH|MAIL)/i.test(line))).toEqual([])
  })

  it("does not guess AUTH after a server that only answers HELO", async () => {
    const server = await scripted([
      Script.send(lines("220 old.example.com SMTP")),
      Script.expect(/^EHLO/i, lines("502 5.5.2 EHLO not implemented")),
      Script.expect(/^HELO/i, lines("250 old.example.com")),
      ...delivery,
    ])

    const error = failed(
      await send(await policyFor(server, { ...credentials(), mailSmtpEncryption: "NONE" })),
    )

    expect(error.reason).toBe("AuthNotOffered")
    expect(server.clientLines().filter((line) => /^AUTH/i.test(line))).toEqual([])
  })
})

describe("AUTH mechanisms (C08)", () => {
  it("speaks the two-prompt LOGIN dialogue and sends the password as UTF-8", async () => {
    const server = await scripted([
      ...startTls(["250 STARTTLS"], ["250 AUTH GSSAPI NTLM LOGIN"]),
      ...loginDialogue("235 2.7.0 Authentication successful"),
      ...delivery,
    ])

    delivered(await send(await policyFor(server, credentials("p€ss"))))

    const tlsLines = server.clientLines({ tls: true })
    const auth = tlsLines.indexOf("AUTH LOGIN")
    expect(tlsLines.slice(auth, auth + 3)).toEqual(["AUTH LOGIN", b64("printer"), b64("p€ss")])
    expect(Buffer.from(tlsLines[auth + 2]!, "base64")).toEqual(Buffer.from("p€ss", "utf8"))
  })

  it("refuses when no offered mechanism is one it speaks, and sends no AUTH line", async () => {
    const server = await scripted([
      ...startTls(["250 STARTTLS"], ["250 AUTH GSSAPI NTLM"]),
      Script.expect(/^AUTH/i, lines("504 5.5.4 not that one")),
      ...delivery,
    ])

    const error = failed(await send(await policyFor(server, credentials())))

    expect(error.reason).toBe("NoUsableAuthMechanism")
    expect(error.detail).toMatch(/GSSAPI NTLM/)
    expect(server.clientLines().filter((line) => /^AUTH/i.test(line))).toEqual([])
  })

  it("reports a 535 as rejected credentials with the server's text, once", async () => {
    const server = await scripted([
      ...startTls(["250 STARTTLS"], ["250 AUTH LOGIN"]),
      ...loginDialogue("535 5.7.8 Authentication credentials invalid"),
      Script.expect(/^AUTH/i, lines("535 5.7.8 again")),
    ])

    const error = failed(await send(await policyFor(server, credentials())))

    expect(error.reason).toBe("AuthRejected")
    expect(error.phase).toBe("auth")
    expect(error.code).toBe(535)
    expect(error.enhancedCode).toBe("5.7.8")
    expect(error.serverText).toBe("Authentication credentials invalid")
    expect(error.command).toBe("AUTH LOGIN")
    expect(server.clientLines().filter((line) => /^AUTH/i.test(line))).toHaveLength(1)
  })

  it("prefers PLAIN when a real server offers PLAIN and LOGIN", async () => {
    const server = await startSmtpServer({
      tls: "starttls",
      auth: { user: "printer", password: "s3cret-Pass" },
    })
    servers.push(server)

    const receipt = delivered(await send(await policyFor(server, credentials())))

    expect(receipt.authenticated).toBe(true)
    expect(server.authAttempts).toEqual([{ method: "PLAIN", user: "printer", accepted: true }])
    expect(server.messages[0]!.user).toBe("printer")
  })
})

describe("secrets", () => {
  const password = "Tr0ub4dor&3-unique"
  const forbidden = [
    password,
    b64(password),
    b64(`\u0000printer\u0000${password}`),
    b64(`printer\u0000printer\u0000${password}`),
  ]

  it.each([
    ["accepted", password],
    ["rejected", "another-password"],
  ])(
    "never shows the password, its base64 or the AUTH PLAIN blob when %s",
    async (_case, serverPassword) => {
      const server = await startSmtpServer({
        tls: "starttls",
        auth: { user: "printer", password: serverPassword },
      })
      servers.push(server)
      const writes: Array<string> = []
      const capture = (chunk: unknown) => {
        writes.push(String(chunk))
        return true
      }
      const stdout = vi.spyOn(process.stdout, "write").mockImplementation(capture)
      const stderr = vi.spyOn(process.stderr, "write").mockImplementation(capture)

      const outcome = await send(await policyFor(server, credentials(password))).finally(() => {
        stdout.mockRestore()
        stderr.mockRestore()
      })

      // The transcript is logged at debug level, with AUTH arguments masked.
      expect(outcome.logs.some((line) => /C: AUTH PLAIN \*\*\*\*/.test(line))).toBe(true)
      const shown = everythingShown(outcome) + writes.join("")
      for (const secret of forbidden) expect(shown).not.toContain(secret)
    },
  )

  it("masks both LOGIN answers in the transcript", async () => {
    const server = await scripted([
      ...startTls(["250 STARTTLS"], ["250 AUTH LOGIN"]),
      ...loginDialogue("535 5.7.8 no"),
    ])

    const outcome = await send(await policyFor(server, credentials(password)))

    const transcript = outcome.logs.filter((line) => /^Debug: [CS]: /.test(line))
    expect(transcript.some((line) => line.includes("C: AUTH LOGIN"))).toBe(true)
    expect(transcript.filter((line) => line.includes("C: ****"))).toHaveLength(2)
    for (const secret of [...forbidden, b64("printer")]) {
      expect(everythingShown(outcome)).not.toContain(secret)
    }
  })

  it("refuses CR, LF or NUL in credentials or EHLO name before a byte is sent", async () => {
    const server = await scripted([greeting, Script.silent()])
    // Settings refuse such values at load; a policy built by other code is checked again.
    const policy = await policyFor(server, credentials())
    const cases = [
      { ...policy, credentials: { user: "printer", password: Redacted.make("pass\u0000word") } },
      {
        ...policy,
        credentials: { user: "printer\r\nMAIL FROM:<x@y>", password: Redacted.make("p") },
      },
      { ...policy, clientName: "client.test\r\nRSET" },
    ]

    for (const bad of cases) {
      const error = failed(await send(bad))
      expect(error.reason).toBe("InvalidArgument")
      expect(error.message).not.toContain("pass\u0000word")
    }
    expect(server.connectionCount).toBe(0)
  })
})
