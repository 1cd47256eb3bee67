import * as net from "node:net"
import { Effect } from "effect"
import nodemailer from "nodemailer"
import { afterEach, describe, expect, it } from "vitest"
import { rootCa } from "../src/Fixtures.ts"
import * as H from "../src/internal/contractHarness.ts"
import { type ScriptedSmtpServer, startScriptedSmtpServer } from "../src/ScriptedSmtpServer.ts"

const servers: Array<ScriptedSmtpServer> = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

describe("the contract's harness", () => {
  it("scripts a STARTTLS and AUTH LOGIN dialogue a real client completes", async () => {
    const server = await startScriptedSmtpServer({
      script: H.dialogue({
        ehlo: ["STARTTLS", "AUTH NTLM"],
        starttls: { ehlo: ["AUTH NTLM LOGIN", "SIZE 37748736"] },
        auth: H.authLoginSteps(),
      }),
    })
    servers.push(server)
    const transport = nodemailer.createTransport({
      host: server.host,
      port: server.port,
      requireTLS: true,
      auth: { user: "printer", pass: "p€ss", method: "LOGIN" },
      tls: { ca: [rootCa()], rejectUnauthorized: true },
    })

    const info = await transport.sendMail({ from: "a@example.com", to: H.recipient, text: "x" })

    expect(info.response).toBe(H.queued.trimEnd())
    expect(server.clientLines({ tls: true }).slice(0, 7)).toEqual([
      expect.stringMatching(/^EHLO /),
      "AUTH LOGIN",
      Buffer.from("printer").toString("base64"),
      Buffer.from("p€ss").toString("base64"),
      "MAIL FROM:<a@example.com>",
      `RCPT TO:<${H.recipient}>`,
      "DATA",
    ])
  })

  it("writes EHLO replies with dashes on all lines but the last", () => {
    expect(H.ehloReply(["STARTTLS", "AUTH LOGIN"])).toBe(
      "250-smtp.test\r\n250-STARTTLS\r\n250 AUTH LOGIN\r\n",
    )
    expect(H.ehloReply([])).toBe("250 smtp.test\r\n")
  })

  it("resolves settings as the application does, and names every bad value", () => {
    const settings = H.settingsOf(H.values({ host: "::1", port: 2525 }, "STARTTLS"))
    expect(settings.mailserver).toEqual({ host: "::1", kind: "ipv6" })
    expect(settings.port).toBe(2525)
    expect(settings.trustStore.path).toMatch(/root-ca\.crt$/)

    expect(() => H.settingsOf(H.values({ host: "127.0.0.1", port: 70000 }, "NONE"))).toThrow(
      /mailSmtpPort/,
    )
  })

  it("finds a port nothing listens on", async () => {
    const port = await H.closedPort()
    const error = await new Promise<NodeJS.ErrnoException>((resolve) => {
      net.connect(port, "127.0.0.1").once("error", resolve)
    })
    expect(error.code).toBe("ECONNREFUSED")
  })

  it("captures log events with their level and annotations", async () => {
    const { result, logs } = await H.runLogged(
      Effect.logWarning("sent without encryption").pipe(
        Effect.annotateLogs({ event: "plaintext" }),
        Effect.andThen(Effect.logDebug("C: EHLO")),
      ),
    )
    expect(result._tag).toBe("Success")
    expect(logs.map((l) => [l.level, l.text, l.annotations["event"]])).toEqual([
      ["Warn", "sent without encryption", "plaintext"],
      ["Debug", "C: EHLO", undefined],
    ])
  })
})
