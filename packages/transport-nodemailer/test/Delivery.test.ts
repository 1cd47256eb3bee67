import { Mailer, TlsPolicy } from "@spoc-mail/core"
import {
  Script,
  startScriptedSmtpServer,
  startSmtpServer,
  type ScriptedSmtpServer,
  type SmtpTestServer,
} from "@spoc-mail/testkit"
import { simpleParser } from "mailparser"
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

const scripted = async (script: ReadonlyArray<Script.Step>, host?: string) => {
  const server = await startScriptedSmtpServer({ script, ...(host ? { host } : {}) })
  servers.push(server)
  return server
}

const real = async (options: Parameters<typeof startSmtpServer>[0] = {}) => {
  const server = await startSmtpServer(options)
  servers.push(server)
  return server
}

const opening = [
  Script.send(lines("220 mail.example.com ESMTP")),
  Script.expect(/^EHLO/i, lines("250-mail.example.com", "250 8BITMIME")),
]

const envelope = [
  Script.expect(/^MAIL FROM/i, lines("250 2.1.0 Ok")),
  Script.expect(/^RCPT TO/i, lines("250 2.1.5 Ok")),
  Script.expect(/^DATA/i, lines("354 go ahead")),
]

const tricky =
  "first line\n.\n.leading dot\nbare LF\nbare CR\rafter CR\r\n" + "x".repeat(2000) + "\nlast"

describe("message content (C14)", () => {
  it("puts dots, bare line ends and a long line on the wire safely, ending once", async () => {
    const server = await scripted([...opening, ...envelope, Script.data(lines("250 2.0.0 Ok"))])
    const message = await composed({ text: tricky })

    delivered(await send(await policyFor(server), message))

    expect(server.dataTransfers).toHaveLength(1)
    const wire = server.dataTransfers[0]!.toString("latin1")
    expect(wire.endsWith("\r\n.\r\n")).toBe(true)
    expect(wire.split("\r\n.\r\n")).toHaveLength(2)
    expect(wire.replace(/\r\n/g, "")).not.toMatch(/[\r\n]/)
    for (const line of wire.split("\r\n")) expect(line.length).toBeLessThanOrEqual(998)
    const unstuffed = wire
      .slice(0, -".\r\n".length)
      .split("\r\n")
      .map((line) => (line.startsWith(".") ? line.slice(1) : line))
      .join("\r\n")
    const composedBytes = (await bytesOf(message)).toString("latin1")
    expect(unstuffed).toBe(
      `${composedBytes.replace(/\r\n|\r|\n/g, "\r\n").replace(/\r\n$/, "")}\r\n`,
    )
  })

  it("reaches a real server intact", async () => {
    const server = await real()

    delivered(await send(await policyFor(server), await composed({ text: tricky })))

    const parsed = await simpleParser(server.messages[0]!.raw)
    expect(parsed.text).toBe(`${tricky.replace(/\r\n|\r|\n/g, "\n")}\n`)
  })
})

describe("the envelope", () => {
  it("reports the recipients the server refused in the receipt", async () => {
    const server = await real({
      onRcpt: (address) =>
        address === "gone@example.com" ? { code: 550, text: "no such user" } : undefined,
    })
    const message = await composed({ to: ["rcpt@example.com", "gone@example.com"] })

    const receipt = delivered(await send(await policyFor(server), message))

    expect(receipt.accepted).toEqual(["rcpt@example.com"])
    expect(receipt.rejected).toEqual([
      { address: "gone@example.com", reply: expect.stringMatching(/^550 .*no such user/) },
    ])
    expect(server.messages[0]!.envelope.to).toEqual(["rcpt@example.com"])
  })

  it("fails when every recipient is refused, keeping the reply", async () => {
    const server = await real({ replies: { rcpt: { code: 550, text: "relay denied" } } })

    const error = failed(await send(await policyFor(server)))

    expect(error.reason).toBe("RecipientsRejected")
    expect(error.phase).toBe("rcpt")
    expect(error.code).toBe(550)
    expect(error.enhancedCode).toMatch(/^5\./)
    expect(error.serverText).toMatch(/relay denied/)
    expect(error.command).toBe("RCPT TO:<rcpt@example.com>")
    expect(error.transient).toBe(false)
  })

  it("marks a 4xx on RCPT as temporary", async () => {
    const server = await real({ replies: { rcpt: { code: 452, text: "try later" } } })

    const error = failed(await send(await policyFor(server)))

    expect(error.reason).toBe("RecipientsRejected")
    expect(error.code).toBe(452)
    expect(error.transient).toBe(true)
  })

  it("reports a refused sender", async () => {
    const server = await real({ replies: { mail: { code: 553, text: "sender not allowed" } } })

    const error = failed(await send(await policyFor(server)))

    expect(error.reason).toBe("SenderRejected")
    expect(error.phase).toBe("mail")
    expect(error.code).toBe(553)
    expect(error.command).toBe("MAIL FROM:<print@example.com>")
  })

  it("reports a message refused after its end", async () => {
    const server = await real({ replies: { message: { code: 554, text: "spam detected" } } })

    const error = failed(await send(await policyFor(server)))

    expect(error.reason).toBe("MessageRejected")
    expect(error.phase).toBe("message")
    expect(error.code).toBe(554)
    expect(error.serverText).toMatch(/spam detected/)
  })

  it("reports a refused DATA command", async () => {
    const server = await scripted([
      ...opening,
      Script.expect(/^MAIL FROM/i, lines("250 2.1.0 Ok")),
      Script.expect(/^RCPT TO/i, lines("250 2.1.5 Ok")),
      Script.expect(/^DATA/i, lines("451 4.3.0 queue full")),
    ])

    const error = failed(await send(await policyFor(server)))

    expect(error.reason).toBe("MessageRejected")
    expect(error.phase).toBe("data")
    expect(error.code).toBe(451)
    expect(error.transient).toBe(true)
  })

  it("refuses a non-ASCII address before MAIL when the server lacks SMTPUTF8", async () => {
    const server = await scripted([...opening, ...envelope])

    const error = failed(
      await send(await policyFor(server), await composed({ to: ["jürgen@example.com"] })),
    )

    expect(error.reason).toBe("SmtpUtf8Unsupported")
    expect(server.clientLines().filter((line) => /^MAIL/i.test(line))).toEqual([])
  })

  it("sends a non-ASCII address to a server with SMTPUTF8", async () => {
    const server = await real()

    delivered(await send(await policyFor(server), await composed({ to: ["jürgen@example.com"] })))

    expect(server.messages[0]!.envelope.to).toEqual(["jürgen@example.com"])
  })
})

describe("timeouts", () => {
  const quick = { mailSmtpTimeout: "1000" }

  it("gives up on a command the server never answers after the command timeout", async () => {
    const server = await scripted([...opening, Script.silent()])

    const outcome = await send(await policyFor(server, quick))
    const error = failed(outcome)

    expect(error.reason).toBe("CommandTimeout")
    expect(error.phase).toBe("mail")
    expect(error.command).toBe("MAIL FROM:<print@example.com>")
    expect(outcome.ms).toBeGreaterThanOrEqual(900)
    expect(outcome.ms).toBeLessThan(5_000)
  })

  it("does not let a server dripping a reply extend the command timeout", async () => {
    const drip = Array.from({ length: 30 }, () => [Script.send("2"), Script.delay(100)]).flat()
    const server = await scripted([
      ...opening,
      Script.expect(/^MAIL FROM/i),
      ...drip,
      Script.send(lines("50 Ok")),
    ])

    const outcome = await send(await policyFor(server, quick))
    const error = failed(outcome)

    expect(error.reason).toBe("CommandTimeout")
    expect(outcome.ms).toBeLessThan(2_500)
  })

  it("reports an unknown outcome when no reply comes after the final dot", async () => {
    const server = await scripted([...opening, ...envelope, Script.data(), Script.silent()])

    const error = failed(await send(await policyFor(server, quick)))

    expect(error.reason).toBe("OutcomeUnknown")
    expect(error.phase).toBe("message")
    expect(error.hint).toMatch(/not resend|does not resend/)
    expect(server.dataTransfers).toHaveLength(1)
  })

  it("reports an unknown outcome when the connection drops after the final dot", async () => {
    const server = await scripted([...opening, ...envelope, Script.data(), Script.close()])

    const error = failed(await send(await policyFor(server, quick)))

    expect(error.reason).toBe("OutcomeUnknown")
  })

  it("never resends through the backup after an unknown outcome", async () => {
    const primary = await scripted(
      [...opening, ...envelope, Script.data(), Script.close()],
      "127.0.0.1",
    )
    const settings = settingsWith({
      mailserver: "127.0.0.1",
      mailserverbackup: "127.0.0.2",
      mailSmtpPort: String(primary.port),
    })
    const mailer = Mailer.make(
      settings,
      NodemailerTransport.make(),
      TlsPolicy.make(settings, await trustFrom()),
    )

    const { result, logs } = await capturingLogs(
      mailer.send({ to: ["rcpt@example.com"], subject: "once", text: "only once" }),
    )

    expect(result._tag).toBe("Failure")
    if (result._tag !== "Failure" || result.failure._tag !== "DeliveryError") return
    expect(result.failure.attempts).toHaveLength(1)
    expect(result.failure.last.reason).toBe("OutcomeUnknown")
    expect(logs.some((line) => /outcome unknown/.test(line))).toBe(true)
  })

  it("closes the connection at once when the send is interrupted", async () => {
    const server = await scripted([...opening, Script.silent()])
    const settings = settingsWith({ mailserver: server.host, mailSmtpPort: String(server.port) })
    const mailer = Mailer.make(
      settings,
      NodemailerTransport.make(),
      TlsPolicy.make(settings, await trustFrom()),
      { deadlineMs: 300 },
    )

    const started = Date.now()
    const { result } = await capturingLogs(
      mailer.send({ to: ["rcpt@example.com"], subject: "late", text: "too late" }),
    )
    await new Promise((resolve) => setTimeout(resolve, 100))

    expect(result._tag).toBe("Failure")
    if (result._tag === "Failure" && result.failure._tag === "DeliveryError") {
      expect(result.failure.last.reason).toBe("DeadlineExceeded")
    }
    expect(Date.now() - started).toBeLessThan(3_000)
    expect(server.transcript.some((entry) => entry.kind === "closed")).toBe(true)
  })

  it("closes the connection and sends nothing more after a timeout", async () => {
    const server = await scripted([...opening, Script.silent()])

    failed(await send(await policyFor(server, quick)))
    await new Promise((resolve) => setTimeout(resolve, 100))

    expect(server.transcript.some((entry) => entry.kind === "closed")).toBe(true)
    expect(server.clientLines()).toEqual(["EHLO client.test", "MAIL FROM:<print@example.com>"])
  })
})
