import { Effect, Logger, Redacted, References } from "effect"
import { describe, expect, it } from "vitest"
import * as ConfigSource from "../src/ConfigSource.ts"
import * as Mailer from "../src/Mailer.ts"
import * as Origin from "../src/Origin.ts"
import type { MailSettings } from "../src/Settings.ts"
import { resolve } from "../src/SettingsResolution.ts"
import * as TlsPolicy from "../src/TlsPolicy.ts"
import * as Transport from "../src/Transport.ts"
import type { ConnectionPolicy, Receipt, TransportShape } from "../src/Transport.ts"
import { type Phase, TransportError, type TransportFailure } from "../src/TransportError.ts"
import * as TrustStore from "../src/TrustStore.ts"

const settingsWith = (values: Record<string, string>): MailSettings => {
  const resolution = resolve([
    {
      layer: "test",
      entries: Object.entries({
        mailserver: "primary.test",
        mailserverbackup: "backup.test",
        mailfrom: "print@example.com",
        ...values,
      }).map(([k, v], i) => ConfigSource.entry(k, v, Origin.file("test.conf", i + 1))),
      warnings: [],
    },
  ])
  expect(resolution.problems).toEqual([])
  return resolution.settings!
}

type Outcome = { fail: TransportFailure; phase: Phase; code?: number } | "deliver"

/** A transport that answers each endpoint from a script and records the policies it got. */
const scripted = (outcomes: Record<string, Outcome>) => {
  const calls: Array<ConnectionPolicy> = []
  const transport: TransportShape = {
    name: "scripted",
    send: (message, policy) => {
      calls.push(policy)
      const outcome = outcomes[policy.endpoint.host]!
      if (outcome === "deliver") {
        const receipt: Receipt = {
          endpoint: policy.endpoint,
          transport: "scripted",
          messageId: message.messageId,
          accepted: [...message.envelope.to],
          rejected: [],
          response: "250 2.0.0 queued",
          tls: undefined,
          authenticated: false,
          durationMs: 1,
        }
        return Effect.succeed(receipt)
      }
      return Effect.fail(
        new TransportError({
          reason: outcome.fail,
          phase: outcome.phase,
          endpoint: policy.endpoint,
          detail: "scripted failure",
          ...(outcome.code === undefined ? {} : { code: outcome.code }),
        }),
      )
    },
  }
  return { transport, calls }
}

const run = (
  settings: MailSettings,
  transport: TransportShape,
  options: Mailer.MailerOptions = {},
) => {
  const trust = TrustStore.fromCertificates(undefined, [])
  const mailer = Mailer.make(settings, transport, TlsPolicy.make(settings, trust), {
    clientName: "controller.test",
    ...options,
  })
  const logs: Array<string> = []
  const logger = Logger.make<unknown, void>(({ message, logLevel }) => {
    logs.push(`${logLevel}: ${Array.isArray(message) ? message.join(" ") : String(message)}`)
  })
  return Effect.runPromise(
    mailer
      .send({ to: ["user@example.com"], subject: "s", text: "t" })
      .pipe(Effect.result, Effect.provide(Logger.layer([logger]))),
  ).then((result) => ({ result, logs }))
}

const failoverTable: ReadonlyArray<[string, Outcome, boolean]> = [
  ["DNS failure", { fail: "DnsFailure", phase: "connect" }, true],
  ["connection refused", { fail: "ConnectionRefused", phase: "connect" }, true],
  ["unreachable", { fail: "Unreachable", phase: "connect" }, true],
  ["connect timeout", { fail: "ConnectTimeout", phase: "connect" }, true],
  ["no greeting in time", { fail: "GreetingTimeout", phase: "greeting" }, true],
  ["421 greeting", { fail: "GreetingRejected", phase: "greeting", code: 421 }, true],
  ["connection lost before MAIL", { fail: "ConnectionLost", phase: "ehlo" }, true],
  ["TLS handshake", { fail: "TlsHandshakeFailed", phase: "tls" }, true],
  ["TLS version", { fail: "TlsVersionMismatch", phase: "tls" }, true],
  ["no shared cipher", { fail: "NoSharedCipher", phase: "tls" }, true],
  ["untrusted", { fail: "CertificateUntrusted", phase: "tls" }, true],
  ["expired", { fail: "CertificateExpired", phase: "tls" }, true],
  ["wrong host", { fail: "HostnameMismatch", phase: "tls" }, true],
  ["STARTTLS refused", { fail: "StartTlsRefused", phase: "starttls", code: 454 }, true],
  ["STARTTLS not offered (required)", { fail: "StartTlsNotOffered", phase: "ehlo" }, true],
  ["AUTH not offered", { fail: "AuthNotOffered", phase: "auth" }, true],
  ["no usable AUTH mechanism", { fail: "NoUsableAuthMechanism", phase: "auth" }, true],
  ["AUTH rejected (535)", { fail: "AuthRejected", phase: "auth", code: 535 }, false],
  ["4xx on MAIL", { fail: "SenderRejected", phase: "mail", code: 451 }, true],
  ["4xx on RCPT", { fail: "RecipientsRejected", phase: "rcpt", code: 450 }, true],
  ["4xx on DATA", { fail: "MessageRejected", phase: "data", code: 452 }, true],
  ["5xx on MAIL", { fail: "SenderRejected", phase: "mail", code: 550 }, false],
  ["5xx on every RCPT", { fail: "RecipientsRejected", phase: "rcpt", code: 550 }, false],
  ["5xx for the message", { fail: "MessageRejected", phase: "message", code: 554 }, false],
  ["outcome unknown after the dot", { fail: "OutcomeUnknown", phase: "message" }, false],
  ["configuration error", { fail: "InvalidArgument", phase: "config" }, false],
]

describe("the delivery policy", () => {
  for (const [name, outcome, moves] of failoverTable) {
    it(`${moves ? "moves" : "does not move"} to the backup on ${name}`, async () => {
      const { transport, calls } = scripted({ "primary.test": outcome, "backup.test": "deliver" })

      const { result } = await run(settingsWith({}), transport)

      expect(calls.map((c) => c.endpoint.role)).toEqual(moves ? ["primary", "backup"] : ["primary"])
      expect(result._tag).toBe(moves ? "Success" : "Failure")
    })
  }

  it("reports every attempt and which server delivered", async () => {
    const { transport } = scripted({
      "primary.test": { fail: "ConnectionRefused", phase: "connect" },
      "backup.test": "deliver",
    })

    const { result, logs } = await run(settingsWith({}), transport)

    expect(result._tag).toBe("Success")
    if (result._tag !== "Success") return
    expect(result.success.endpoint.role).toBe("backup")
    expect(result.success.attempts.map((a) => [a.endpoint.host, a.outcome])).toEqual([
      ["primary.test", "failed"],
      ["backup.test", "delivered"],
    ])
    expect(logs.filter((l) => /trying the backup/.test(l))).toHaveLength(1)
  })

  it("blames the custom cipher list when it kept out the server's TLS version", async () => {
    const outcome: Outcome = { fail: "TlsVersionMismatch", phase: "tls" }
    const { transport } = scripted({ "primary.test": outcome, "backup.test": outcome })
    const capped = settingsWith({
      cryptographicProtocolsForOutboundCommunication: "TLSv1.2,TLSv1.3",
      allowCustomCipherSuitesForOutboundCommunication: "true",
      customCipherSuitesForOutboundCommunication: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    })

    const { result } = await run(capped, transport)

    expect(result._tag).toBe("Failure")
    if (result._tag !== "Failure") return
    const errors = result.failure._tag === "DeliveryError" ? result.failure.attempts : []
    expect(errors).toHaveLength(2)
    for (const attempt of errors) {
      expect(attempt.error?.reason).toBe("TlsVersionMismatch")
      expect(attempt.error?.hint).toContain(
        "customCipherSuitesForOutboundCommunication has no suite for TLSv1.3",
      )
    }

    const uncapped = await run(
      settingsWith({ cryptographicProtocolsForOutboundCommunication: "TLSv1.2,TLSv1.3" }),
      scripted({ "primary.test": outcome, "backup.test": outcome }).transport,
    )
    expect(uncapped.result._tag).toBe("Failure")
    if (uncapped.result._tag !== "Failure" || uncapped.result.failure._tag !== "DeliveryError") {
      return
    }
    expect(uncapped.result.failure.last.detail).toBe("scripted failure")
  })

  it("lists both attempts when both servers fail", async () => {
    const { transport } = scripted({
      "primary.test": { fail: "ConnectionRefused", phase: "connect" },
      "backup.test": { fail: "ConnectionRefused", phase: "connect" },
    })

    const { result } = await run(settingsWith({}), transport)

    expect(result._tag).toBe("Failure")
    if (result._tag !== "Failure") return
    const error = result.failure as Mailer.DeliveryError
    expect(error.attempts.map((a) => a.endpoint.host)).toEqual(["primary.test", "backup.test"])
    expect(error.message).toMatch(/attempt 1 \(primary\)[\s\S]*attempt 2 \(backup\)/)
  })

  it("gives the backup the same port, mode and credentials, checked by its own name", async () => {
    const { transport, calls } = scripted({
      "primary.test": { fail: "ConnectionRefused", phase: "connect" },
      "backup.test": "deliver",
    })
    const settings = settingsWith({
      mailSmtpPort: "465",
      mailSmtpEncryption: "SSL_TLS",
      mailuser: "svc",
      mailpass: "s3cret",
    })

    await run(settings, transport)

    const [primary, backup] = calls
    expect(backup!.endpoint.port).toBe(465)
    expect(backup!.mode).toBe("SSL_TLS")
    expect(backup!.credentials?.user).toBe("svc")
    expect(Redacted.value(Transport.secretOf(backup!.credentials!))).toBe("s3cret")
    expect(primary!.tls.servername).toBe("primary.test")
    expect(backup!.tls.servername).toBe("backup.test")
    expect(backup!.tls.rejectUnauthorized).toBe(true)
  })

  it("warns once when STARTTLS was not offered and the message went in plain text", async () => {
    const { transport } = scripted({ "primary.test": "deliver", "backup.test": "deliver" })

    const { logs } = await run(settingsWith({ mailSmtpEncryption: "STARTTLS" }), transport)

    expect(logs.filter((l) => l.startsWith("Warn"))).toEqual([
      expect.stringMatching(/sent without encryption/),
    ])
  })

  it("reports the attempt the deadline stopped, with its endpoint and duration", async () => {
    const transport: TransportShape = {
      name: "stuck-backup",
      send: (_message, policy) =>
        policy.endpoint.role === "backup"
          ? Effect.never
          : Effect.fail(
              new TransportError({
                reason: "ConnectionRefused",
                phase: "connect",
                endpoint: policy.endpoint,
                detail: "refused",
              }),
            ),
    }
    const settings = settingsWith({})
    const mailer = Mailer.make(
      settings,
      transport,
      TlsPolicy.make(settings, TrustStore.fromCertificates(undefined, [])),
      { deadlineMs: 100 },
    )

    const result = await Effect.runPromise(
      Effect.result(mailer.send({ to: ["a@example.com"], subject: "s", text: "t" })),
    )

    expect(result._tag).toBe("Failure")
    if (result._tag !== "Failure" || result.failure._tag !== "DeliveryError") return
    const { attempts, last } = result.failure
    expect(attempts.map((a) => [a.endpoint.host, a.outcome, a.error?.reason])).toEqual([
      ["primary.test", "failed", "ConnectionRefused"],
      ["backup.test", "failed", "DeadlineExceeded"],
    ])
    expect(last.endpoint.host).toBe("backup.test")
    expect(last.hint).toMatch(/Message-ID/)
    expect(attempts[1]!.durationMs).toBeGreaterThanOrEqual(50)
  })

  it("annotates its events with the endpoint, the phase and the Message-ID", async () => {
    const events: Array<Record<string, unknown>> = []
    const logger = Logger.make<unknown, void>(({ fiber }) => {
      const annotations = fiber.getRef(References.CurrentLogAnnotations)
      if (annotations["event"] !== undefined) events.push({ ...annotations })
    })
    const send = (outcomes: Record<string, Outcome>) => {
      const { transport } = scripted(outcomes)
      const settings = settingsWith({})
      const mailer = Mailer.make(
        settings,
        transport,
        TlsPolicy.make(settings, TrustStore.fromCertificates(undefined, [])),
        { clientName: "controller.test" },
      )
      return Effect.runPromise(
        mailer
          .send({ to: ["user@example.com"], subject: "s", text: "t" })
          .pipe(Effect.result, Effect.provide(Logger.layer([logger]))),
      )
    }

    const delivered = await send({
      "primary.test": { fail: "ConnectTimeout", phase: "connect" },
      "backup.test": "deliver",
    })
    const failed = await send({
      "primary.test": { fail: "OutcomeUnknown", phase: "message" },
      "backup.test": "deliver",
    })

    expect(delivered._tag).toBe("Success")
    expect(failed._tag).toBe("Failure")
    const firstId = delivered._tag === "Success" ? delivered.success.messageId : ""
    expect(events).toEqual([
      {
        event: "failover",
        endpoint: "primary.test:25",
        phase: "connect",
        reason: "ConnectTimeout",
        messageId: firstId,
      },
      { event: "delivered", endpoint: "backup.test:25", messageId: firstId },
      {
        event: "outcome-unknown",
        endpoint: "primary.test:25",
        phase: "message",
        messageId: expect.stringMatching(/^<.+@.+>$/),
      },
      {
        event: "failed",
        endpoint: "primary.test:25",
        phase: "message",
        reason: "OutcomeUnknown",
        messageId: events[2]?.["messageId"],
      },
    ])
  })

  it("gives up at the overall deadline", async () => {
    const transport: TransportShape = { name: "stuck", send: () => Effect.never }
    const settings = settingsWith({})
    const mailer = Mailer.make(
      settings,
      transport,
      TlsPolicy.make(settings, TrustStore.fromCertificates(undefined, [])),
      { deadlineMs: 50 },
    )

    const result = await Effect.runPromise(
      Effect.result(mailer.send({ to: ["a@example.com"], subject: "s", text: "t" })),
    )

    expect(result._tag).toBe("Failure")
    if (result._tag === "Failure" && result.failure._tag === "DeliveryError") {
      expect(result.failure.last.reason).toBe("DeadlineExceeded")
    }
  })
})

describe("an OAuth 2.0 access token provider", () => {
  const token = "ya29.contract-access-token"

  it("is asked once per send and its token goes to every endpoint, for mailuser", async () => {
    const { transport, calls } = scripted({
      "primary.test": { fail: "ConnectionRefused", phase: "connect" },
      "backup.test": "deliver",
    })
    let asked = 0
    const accessToken = Effect.sync(() => {
      asked += 1
      return Redacted.make(token)
    })
    const settings = settingsWith({
      mailuser: "svc",
      mailpass: "unused",
      mailSmtpEncryption: "STARTTLS",
    })

    const { result } = await run(settings, transport, { accessToken })

    expect(result._tag).toBe("Success")
    expect(asked).toBe(1)
    expect(calls).toHaveLength(2)
    for (const call of calls) {
      expect(call.credentials?.user).toBe("svc")
      expect(Transport.isToken(call.credentials!)).toBe(true)
      expect(Redacted.value(Transport.secretOf(call.credentials!))).toBe(token)
    }
  })

  it("that fails ends the send before any connection, naming its error, not its text", async () => {
    const { transport, calls } = scripted({ "primary.test": "deliver", "backup.test": "deliver" })
    class TokenEndpointDown extends Error {
      override name = "TokenEndpointDown"
    }
    const accessToken = Effect.fail(new TokenEndpointDown(`refresh failed for ${token}`))
    const settings = settingsWith({ mailuser: "svc", mailSmtpEncryption: "STARTTLS" })

    const { result } = await run(settings, transport, { accessToken })

    expect(calls).toEqual([])
    if (result._tag === "Success") throw new Error("expected a failure")
    const error = result.failure as Mailer.DeliveryError
    expect(error.attempts).toEqual([])
    expect({ reason: error.last.reason, phase: error.last.phase }).toEqual({
      reason: "TokenUnavailable",
      phase: "auth",
    })
    expect(error.message).toContain("TokenEndpointDown")
    expect(error.message).not.toContain(token)
    expect(Mailer.movesToBackup(error.last)).toBe(false)
  })

  it("without mailuser is a configuration error: XOAUTH2 needs the user", async () => {
    const { transport, calls } = scripted({ "primary.test": "deliver", "backup.test": "deliver" })
    const accessToken = Effect.succeed(Redacted.make(token))

    const { result } = await run(settingsWith({}), transport, { accessToken })

    expect(calls).toEqual([])
    if (result._tag === "Success") throw new Error("expected a failure")
    const last = (result.failure as Mailer.DeliveryError).last
    expect({ reason: last.reason, phase: last.phase }).toEqual({
      reason: "InvalidArgument",
      phase: "config",
    })
    expect(last.detail).toContain("mailuser is empty")
    expect(last.hint).toContain("set mailuser")
  })

  const failures = async (
    accessToken: Effect.Effect<Redacted.Redacted<string>, unknown>,
    deadlineMs?: number,
  ) => {
    const { transport, calls } = scripted({ "primary.test": "deliver", "backup.test": "deliver" })
    const settings = settingsWith({ mailuser: "svc", mailSmtpEncryption: "STARTTLS" })
    const { result } = await run(settings, transport, {
      accessToken,
      ...(deadlineMs === undefined ? {} : { deadlineMs }),
    })
    expect(calls).toEqual([])
    if (result._tag === "Success") throw new Error("expected a failure")
    const error = result.failure as Mailer.DeliveryError
    expect(error.attempts).toEqual([])
    expect(error.last.reason).toBe("TokenUnavailable")
    expect(`${error.message} ${error.last.hint}`).not.toContain(token)
    return error.last
  }

  it("that throws is reported like one that fails, its message unread", async () => {
    const last = await failures(
      Effect.promise(() => Promise.reject(new RangeError(`refresh failed for ${token}`))),
    )
    expect(last.detail).toContain("(RangeError)")
  })

  it("wrapped by Effect.tryPromise is named with the error it wraps", async () => {
    class OAuthRefreshError extends Error {
      override name = "OAuthRefreshError"
    }
    const last = await failures(
      Effect.tryPromise(() => Promise.reject(new OAuthRefreshError(token))).pipe(
        Effect.map(Redacted.make),
      ),
    )
    expect(last.detail).toContain("(UnknownError from OAuthRefreshError)")
  })

  it("that never answers is blamed when the overall deadline passes", async () => {
    const last = await failures(Effect.never, 200)
    expect(last.detail).toContain("gave no token within the send's overall deadline of 200 ms")
  })
})
