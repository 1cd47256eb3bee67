import { inspect } from "node:util"
import {
  type ScriptedSmtpServer,
  Script,
  startScriptedSmtpServer,
  startSmtpServer,
} from "@spoc-mail/testkit"
import { afterEach, describe, expect, it } from "vitest"
import { make } from "../src/RawTransport.ts"
import { compose, policyFor, run } from "./support/harness.ts"

const { lines } = Script
const password = "Zq9€-hunter2-secret"
const forms = [
  password,
  Buffer.from(password, "utf8").toString("base64"),
  Buffer.from(`\u0000printer\u0000${password}`, "utf8").toString("base64"),
]

const closers: Array<() => Promise<void>> = []
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()))
})

/** Everything a send leaves behind that a person or a log file could see. */
const exposed = (ran: Awaited<ReturnType<typeof run>>): string => {
  const outcome = ran.result._tag === "Success" ? ran.result.success : ran.result.failure
  return [
    ...ran.logs,
    JSON.stringify(outcome),
    inspect(outcome, { depth: 10 }),
    outcome instanceof Error ? `${outcome.message}\n${outcome.stack}` : "",
  ].join("\n")
}

const expectNoSecret = (text: string) => {
  for (const form of forms) expect(text).not.toContain(form)
}

describe("secrets", () => {
  it.each(["PLAIN", "LOGIN"])(
    "keeps the password, its base64 and the AUTH PLAIN blob out of the %s transcript and receipt",
    async (method) => {
      const server = await startSmtpServer({
        auth: { user: "printer", password },
        authMethods: [method],
      })
      closers.push(server.close)
      const ran = await run(make().send(await compose(), policyFor(server, { password })))

      expect(ran.result._tag).toBe("Success")
      expect(server.authAttempts).toEqual([{ method, user: "printer", accepted: true }])
      expect(ran.logs).toContain(method === "PLAIN" ? "C: AUTH PLAIN ****" : "C: AUTH LOGIN")
      expect(ran.logs.filter((l) => l === "C: ****")).toHaveLength(method === "PLAIN" ? 0 : 2)
      expectNoSecret(exposed(ran))
    },
  )

  it("keeps them out of the error and the logs when the server rejects the login", async () => {
    const server: ScriptedSmtpServer = await startScriptedSmtpServer({
      script: [
        Script.send(lines("220 mx.test")),
        Script.expect(/^EHLO/i, lines("250-mx.test", "250 AUTH PLAIN LOGIN")),
        Script.expect(/^AUTH PLAIN/i, lines("535 5.7.8 Authentication credentials invalid")),
      ],
    })
    closers.push(server.close)
    const ran = await run(make().send(await compose(), policyFor(server, { password })))

    expect(ran.result._tag).toBe("Failure")
    expect(server.clientLines()[1]).toBe(`AUTH PLAIN ${forms[2]}`)
    expectNoSecret(exposed(ran))
  })
})
