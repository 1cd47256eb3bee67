import { Script, startScriptedSmtpServer, startSmtpServer } from "@spoc-mail/testkit"
import * as Effect from "effect/Effect"
import { afterEach, describe, expect, it } from "vitest"
import { make, makePooled, type RawTransportOptions } from "../src/RawTransport.ts"
import { compose, policyFor, recipient, tlsOptionsFor } from "./support/harness.ts"

const { lines } = Script

const closers: Array<() => Promise<void>> = []
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()))
})

const greet = Script.send(lines("220 mx.test ESMTP"))
const ehlo = Script.expect(/^EHLO /i, lines("250-mx.test", "250 PIPELINING"))
const envelope = [
  Script.expect(/^MAIL FROM:/i),
  Script.expect(/^RCPT TO:/i, lines("250 2.1.0 Ok", "250 2.1.5 Ok")),
  Script.expect(/^DATA$/i, lines("354 go ahead")),
  Script.data(lines("250 2.0.0 Ok: queued")),
]

type Policy = ReturnType<typeof policyFor>

/** Runs sends, in order, on one pooled transport whose scope closes at the end. */
const withPool = <A>(
  body: (send: (policy: Policy) => Promise<string>) => Promise<A>,
  options: RawTransportOptions = {},
): Promise<A> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function* () {
        const transport = yield* makePooled(options)
        const message = yield* Effect.promise(() => compose())
        return yield* Effect.promise(() =>
          body((policy) =>
            Effect.runPromise(
              Effect.result(transport.send(message, policy)).pipe(
                Effect.map((r) => (r._tag === "Success" ? "delivered" : r.failure.reason)),
              ),
            ),
          ),
        )
      }),
    ),
  )

describe("connection reuse", () => {
  it("reuses a connection with RSET, and closes it with QUIT when the scope closes", async () => {
    const server = await startScriptedSmtpServer({
      script: [
        greet,
        ehlo,
        ...envelope,
        Script.expect(/^RSET$/i, lines("250 2.0.0 Ok")),
        ...envelope,
      ],
    })
    closers.push(server.close)
    const policy = policyFor(server)

    const before = await withPool(async (send) => {
      expect(await send(policy)).toBe("delivered")
      expect(await send(policy)).toBe("delivered")
      return [...server.clientLines()]
    })

    expect(before).not.toContain("QUIT")
    expect(server.connectionCount).toBe(1)
    await expect.poll(() => server.clientLines().at(-1)).toBe("QUIT")
    expect(server.clientLines().map((l) => l.split(/[ :]/)[0])).toEqual([
      "EHLO",
      "MAIL",
      "RCPT",
      "DATA",
      "RSET",
      "MAIL",
      "RCPT",
      "DATA",
      "QUIT",
    ])
  })

  it("keeps connections apart when any part of the policy differs", async () => {
    const server = await startSmtpServer({
      auth: { user: "printer", password: "one" },
      authMethods: ["PLAIN"],
    })
    closers.push(server.close)
    const base = policyFor(server, { password: "one" })

    await withPool(async (send) => {
      expect(await send(base)).toBe("delivered")
      expect(await send(base)).toBe("delivered")
      expect(server.connectionCount).toBe(1)
      expect(await send({ ...base, clientName: "other.test" })).toBe("delivered")
      expect(server.connectionCount).toBe(2)
      expect(await send(policyFor(server, { password: "two" }))).toBe("AuthRejected")
      expect(server.connectionCount).toBe(3)
      const extraRoot = [...(base.tls.ca as Array<string>), (base.tls.ca as Array<string>)[0]!]
      expect(await send({ ...base, tls: { ...tlsOptionsFor(server.host, extraRoot) } })).toBe(
        "delivered",
      )
      expect(server.connectionCount).toBe(4)
      expect(await send(base)).toBe("delivered")
      expect(server.connectionCount).toBe(4)
    })
    expect(server.messages).toHaveLength(5)
  })

  it("never reuses a connection that met an error", async () => {
    const server = await startSmtpServer({
      onRcpt: (address) =>
        address === recipient ? { code: 550, text: "no such user" } : undefined,
    })
    closers.push(server.close)
    await withPool(async (send) => {
      expect(await send(policyFor(server))).toBe("RecipientsRejected")
      expect(await send(policyFor(server))).toBe("RecipientsRejected")
    })
    expect(server.connectionCount).toBe(2)
  })

  it("opens a new connection when the idle one no longer answers RSET", async () => {
    const server = await startScriptedSmtpServer({
      script: (connection) =>
        connection === 1
          ? [
              greet,
              ehlo,
              ...envelope,
              Script.expect(/^RSET$/i, lines("421 4.4.2 idle too long")),
              Script.close(),
            ]
          : [greet, ehlo, ...envelope],
    })
    closers.push(server.close)
    await withPool(async (send) => {
      expect(await send(policyFor(server))).toBe("delivered")
      expect(await send(policyFor(server))).toBe("delivered")
    })
    expect(server.connectionCount).toBe(2)
    expect(server.dataTransfers).toHaveLength(2)
  })

  it("does not reuse an idle connection the server sent a reply on", async () => {
    const server = await startScriptedSmtpServer({
      script: (connection) =>
        connection === 1
          ? [
              greet,
              ehlo,
              ...envelope,
              Script.send(lines("421 4.4.2 idle timeout")),
              Script.silent(),
            ]
          : [greet, ehlo, ...envelope],
    })
    closers.push(server.close)
    await withPool(async (send) => {
      expect(await send(policyFor(server))).toBe("delivered")
      await expect
        .poll(() => server.transcript.some((e) => e.kind === "server" && e.text.startsWith("421")))
        .toBe(true)
      expect(await send(policyFor(server))).toBe("delivered")
    })
    expect(server.clientLines({ connection: 1 })).not.toContain("RSET")
    expect(server.connectionCount).toBe(2)
  })

  it("drops an idle connection the server closed", async () => {
    const server = await startScriptedSmtpServer({
      script: [greet, ehlo, ...envelope, Script.close()],
    })
    closers.push(server.close)
    await withPool(async (send) => {
      expect(await send(policyFor(server))).toBe("delivered")
      await expect.poll(() => server.transcript.some((e) => e.kind === "closed")).toBe(true)
      expect(await send(policyFor(server))).toBe("delivered")
    })
    expect(server.clientLines().filter((l) => l === "RSET")).toEqual([])
    expect(server.connectionCount).toBe(2)
  })

  it("closes idle connections after the idle timeout, and after the message limit", async () => {
    const server = await startSmtpServer()
    closers.push(server.close)
    await withPool(
      async (send) => {
        expect(await send(policyFor(server))).toBe("delivered")
        await new Promise((resolve) => setTimeout(resolve, 600))
        expect(await send(policyFor(server))).toBe("delivered")
      },
      { pool: { idleTimeoutMs: 200 } },
    )
    expect(server.connectionCount).toBe(2)

    const limited = await startSmtpServer()
    closers.push(limited.close)
    await withPool(
      async (send) => {
        for (let i = 0; i < 3; i += 1) expect(await send(policyFor(limited))).toBe("delivered")
      },
      { pool: { maxMessagesPerConnection: 2 } },
    )
    expect(limited.connectionCount).toBe(2)
  })

  it("grows to one connection per concurrent send, then reuses them", async () => {
    const server = await startSmtpServer()
    closers.push(server.close)
    await withPool(async (send) => {
      for (let round = 0; round < 3; round += 1) {
        const sends = Array.from({ length: 5 }, () => send(policyFor(server)))
        const outcomes = await Promise.all(sends)
        expect(outcomes).toEqual(Array(5).fill("delivered"))
      }
    })
    expect(server.messages).toHaveLength(15)
    expect(server.connectionCount).toBe(5)
  })

  it("opens a new connection for every message without a pool", async () => {
    const server = await startScriptedSmtpServer({ script: [greet, ehlo, ...envelope] })
    closers.push(server.close)
    const transport = make()
    const message = await compose()
    for (let i = 0; i < 2; i += 1) {
      await Effect.runPromise(transport.send(message, policyFor(server)))
    }
    expect(server.connectionCount).toBe(2)
    expect(server.clientLines({ connection: 1 }).at(-1)).toBe("QUIT")
  })
})
