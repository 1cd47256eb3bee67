/**
 * The Transport contract: the behaviour every spoc-mail transport must show,
 * as vitest tests a transport package registers with one call:
 *
 *     transportContract("raw", () => RawTransport.make())
 *
 * It runs every server case of the field cases C01-C14 (encryption mode and
 * port, capabilities and AUTH, TLS versions, ciphers and certificates, trust
 * stores, failover and timeouts, message content) against scripted and real
 * loopback servers, and expects the same outcome from every transport: the
 * same `TransportError` reason and phase, the same receipt shape, the same
 * bytes of message. Settings are resolved the way the application resolves
 * them (core's settings resolution over one in-memory layer), the trust store
 * and TLS policy come from them, and sends go straight through the transport
 * or through the Mailer where the case is about delivery policy.
 *
 * Every case runs once per log level (Debug and Effect's default unless the
 * options say), and fails when the password, its base64, the AUTH PLAIN blob,
 * an AUTH LOGIN answer or the planted bearer token shows anywhere: in a log
 * line, on stdout or stderr, in an error or a receipt however it is printed.
 *
 * TLS versions are held on the wire, over SSL_TLS and STARTTLS: a TLS
 * 1.0-only server is reached with `TLSv1` and with `>=TLSv1` and refused with
 * the default `TLSv1.2` (TlsVersionMismatch), and a TLS 1.3 server still
 * negotiates TLS 1.3 when `>=TLSv1` is allowed; the receipt names the version.
 * A custom TLS 1.2 list that keeps TLS 1.3 out is refused by a TLS 1.3-only
 * server, and the Mailer's hint names the list. An AUTH refusal that asks for
 * encryption first (538 5.7.11, or 530 about STARTTLS) is AuthRejected with
 * the hint to encrypt, from both transports.
 *
 * Assertions are on transcripts and receipts; time is checked only with the
 * wide bounds the cases give. Certificate checks are never turned off. The
 * suite needs no network: every server is on 127.0.0.1, 127.0.0.2 or ::1.
 * For that reason C11's public-CA chain is checked where it can be offline:
 * the policy a transport receives keeps every system root next to the
 * private one, and the transport must pass it on unchanged.
 */
import { tmpdir } from "node:os"
import { join } from "node:path"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import * as tls from "node:tls"
import { Mailer, Message, type Transport, type TransportError, TrustStore } from "@spoc-mail/core"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Result from "effect/Result"
import { simpleParser } from "mailparser"
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { fixturePath, readFixture, rootCa } from "./Fixtures.ts"
import * as H from "./internal/contractHarness.ts"
import { stubLookup } from "./LookupStub.ts"
import * as Script from "./ScriptedSmtpServer.ts"
import { type SmtpTestServer, startSmtpServer } from "./SmtpTestServer.ts"

/** Every failure reason the contract expects somewhere, from core's `TransportError.ts`. */
export const contractReasons = [
  "PlaintextWhereTlsExpected",
  "GreetingTimeout",
  "ConnectionLost",
  "ConnectionRefused",
  "GreetingRejected",
  "CertificateUntrusted",
  "StartTlsRefused",
  "TlsHandshakeFailed",
  "CleartextCredentials",
  "StartTlsNotOffered",
  "AuthNotOffered",
  "NoUsableAuthMechanism",
  "AuthRejected",
  "NoSharedCipher",
  "HostnameMismatch",
] as const satisfies ReadonlyArray<TransportError.TransportFailure>

export interface TransportContractOptions {
  /** Extra time granted to every test, for slow machines; default 0. */
  readonly extraTimeoutMs?: number
  /**
   * The minimum log levels every case runs at, once per level, with the secret
   * search on; default Debug and Effect's default level.
   */
  readonly logLevels?: ReadonlyArray<H.CaseLogLevel>
}

interface Closeable {
  readonly close: () => Promise<void>
}

const credentials = H.credentials
const credentialSettings = { mailuser: credentials.user, mailpass: credentials.password }

/** Asserts a failed send and returns its error. */
const failure = (
  result: Result.Result<unknown, TransportError.TransportError>,
  expected: {
    readonly reason: TransportError.TransportFailure
    readonly phase: TransportError.Phase
  },
): TransportError.TransportError => {
  if (result._tag === "Success") {
    throw new Error(`expected ${expected.reason} in phase ${expected.phase}, but it was delivered`)
  }
  expect({ reason: result.failure.reason, phase: result.failure.phase }).toEqual(expected)
  expect(result.failure._tag).toBe("TransportError")
  return result.failure
}

/** Asserts a delivered send and returns its receipt. */
const delivered = <A>(result: Result.Result<A, { readonly message: string }>): A => {
  if (result._tag === "Failure") {
    throw new Error(`expected delivery, got: ${result.failure.message}`)
  }
  return result.success
}

/** The receipt shape every transport returns. */
const expectReceipt = (
  receipt: Transport.Receipt,
  expected: {
    readonly transport: string
    readonly endpoint: { readonly host: string; readonly port: number }
    readonly role?: "primary" | "backup"
    readonly messageId?: string
    readonly tls: "none" | "SSL_TLS" | "STARTTLS"
    readonly leaf?: string
    readonly authenticated?: boolean
  },
): void => {
  expect(receipt.transport).toBe(expected.transport)
  expect(receipt.endpoint).toEqual({
    host: expected.endpoint.host,
    port: expected.endpoint.port,
    role: expected.role ?? "primary",
  })
  if (expected.messageId !== undefined) expect(receipt.messageId).toBe(expected.messageId)
  expect(receipt.messageId).toMatch(/^<[^<>\s]+@[^<>\s]+>$/)
  expect(receipt.accepted).toEqual([H.recipient])
  expect(receipt.rejected).toEqual([])
  expect(receipt.response).toMatch(/^250[ -]/)
  expect(receipt.authenticated).toBe(expected.authenticated ?? false)
  expect(receipt.durationMs).toBeGreaterThanOrEqual(0)
  if (expected.tls === "none") {
    expect(receipt.tls).toBeUndefined()
    return
  }
  expect(receipt.tls).toBeDefined()
  const session = receipt.tls!
  expect(session.via).toBe(expected.tls)
  expect(session.protocol).toMatch(/^TLSv1(\.[123])?$/)
  // Standard (IANA) names: TLS_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_..., never OpenSSL's.
  expect(session.cipher).toMatch(/^TLS_[A-Z0-9_]+$/)
  expect(session.peer).toBeDefined()
  expect(session.peer!.fingerprint256).toBe(H.fingerprintOf(`pki/${expected.leaf ?? "server"}.crt`))
  expect(session.peer!.issuer).toContain("Spoc Mail Test Intermediate CA")
  expect(Date.parse(session.peer!.validTo)).toBeGreaterThan(Date.now())
}

/** The client's command lines that must never appear in a case. */
const commandsIn = (lines: ReadonlyArray<string>, verbs: ReadonlyArray<string>): Array<string> =>
  lines.filter((line) => verbs.some((verb) => line.toUpperCase().startsWith(verb)))

/** Lines sent after the first line matching `marker`. */
const linesAfter = (lines: ReadonlyArray<string>, marker: RegExp): ReadonlyArray<string> => {
  const index = lines.findIndex((line) => marker.test(line))
  return index < 0 ? [] : lines.slice(index + 1)
}

/**
 * Registers the contract's tests for one transport. `makeTransport` is called
 * once per test, so state (pools, connections) never leaks between cases.
 */
export const transportContract = (
  name: string,
  makeTransport: () => Transport.TransportShape,
  options: TransportContractOptions = {},
): void => {
  const extra = options.extraTimeoutMs ?? 0
  const timeout = (ms: number) => ms + extra
  const servers: Array<Closeable> = []
  const track = <S extends Closeable>(server: S): S => {
    servers.push(server)
    return server
  }
  const scripted = async (serverOptions: Script.ScriptedSmtpServerOptions) =>
    track(await Script.startScriptedSmtpServer(serverOptions))
  const real = async (serverOptions: Parameters<typeof startSmtpServer>[0]) =>
    track(await startSmtpServer(serverOptions))
  let transport: Transport.TransportShape = undefined as unknown as Transport.TransportShape

  const cases = (level: H.CaseLogLevel) => () => {
    // Every case at this log level; a secret in anything it shows fails it.
    H.watchSecrets(level)

    beforeEach(() => {
      transport = makeTransport()
    })
    afterEach(async () => {
      await Promise.all(servers.splice(0).map((server) => server.close()))
    })

    it("names itself", () => {
      expect(transport.name).toMatch(/^[a-z][a-z0-9-]*$/)
      expect(typeof transport.send).toBe("function")
    })

    describe("C01 SSL_TLS against a server that greets in plain text", () => {
      it(
        "fails fast with a TLS error whose hint names STARTTLS, before any EHLO or AUTH",
        async () => {
          const server = await scripted({
            script: [Script.send("220 mail.example.com ESMTP\r\n"), Script.silent()],
          })
          const settings = H.settingsOf(
            H.values(server, "SSL_TLS", {
              ...credentialSettings,
              mailSmtpConnectionTimeout: "10000",
            }),
          )

          const { result, elapsedMs } = await H.sendDirect(transport, settings)

          const error = failure(result, { reason: "PlaintextWhereTlsExpected", phase: "tls" })
          expect(error.hint).toMatch(/STARTTLS/)
          expect(error.hint).toMatch(/plain/i)
          expect(elapsedMs).toBeLessThan(2_000)
          expect(commandsIn(server.clientLines(), ["EHLO", "HELO", "AUTH"])).toEqual([])
        },
        timeout(15_000),
      )
    })

    describe("C02 STARTTLS or NONE against an implicit-TLS port", () => {
      for (const mode of ["STARTTLS", "NONE"] as const) {
        it(
          `${mode}: times out waiting for the greeting after the connection timeout, ` +
            "not the command timeout, with a hint for SSL_TLS",
          async () => {
            const server = await scripted({
              implicitTls: {},
              script: [Script.send(H.greeting), Script.silent()],
            })
            const settings = H.settingsOf(
              H.values(server, mode, {
                mailSmtpConnectionTimeout: "3000",
                mailSmtpTimeout: "60000",
              }),
            )

            const { result, elapsedMs } = await H.sendDirect(transport, settings)

            const error = failure(result, { reason: "GreetingTimeout", phase: "greeting" })
            expect(error.hint).toMatch(/SSL_TLS/)
            expect(elapsedMs).toBeGreaterThanOrEqual(2_500)
            expect(elapsedMs).toBeLessThan(10_000)
            expect(server.clientLines()).toEqual([])
          },
          timeout(20_000),
        )
      }

      it(
        "loses the connection at once when the listener closes on plain text, same hint",
        async () => {
          const server = await scripted({
            implicitTls: { closeOnPlaintext: true, handshakeTimeoutMs: 100 },
            script: [Script.send(H.greeting)],
          })
          const settings = H.settingsOf(
            H.values(server, "STARTTLS", {
              mailSmtpConnectionTimeout: "3000",
              mailSmtpTimeout: "60000",
            }),
          )

          const { result, elapsedMs } = await H.sendDirect(transport, settings)

          const error = failure(result, { reason: "ConnectionLost", phase: "greeting" })
          expect(error.hint).toMatch(/SSL_TLS/)
          expect(elapsedMs).toBeLessThan(1_000 + 100)
        },
        timeout(15_000),
      )
    })

    describe("C03 NONE never sends STARTTLS", () => {
      const offeringSelfSigned = (): ReadonlyArray<Script.Step> =>
        H.dialogue({ ehlo: ["PIPELINING", "STARTTLS", "8BITMIME"] })

      it(
        "delivers in plain text to a server offering STARTTLS with a self-signed certificate",
        async () => {
          const server = await scripted({ script: offeringSelfSigned() })
          const settings = H.settingsOf(H.values(server, "NONE"))

          const { result, composed } = await H.sendDirect(transport, settings)

          const receipt = delivered(result)
          expectReceipt(receipt, {
            transport: transport.name,
            endpoint: server,
            messageId: composed.messageId,
            tls: "none",
          })
          expect(receipt.response).toBe(H.queued.trimEnd())
          expect(commandsIn(server.clientLines(), ["STARTTLS"])).toEqual([])
          expect(server.transcript.some((entry) => entry.kind === "tls")).toBe(false)
        },
        timeout(15_000),
      )

      it(
        "STARTTLS against the same server without trust for its certificate is untrusted",
        async () => {
          const server = await scripted({
            script: H.dialogue({
              ehlo: ["PIPELINING", "STARTTLS", "8BITMIME"],
              starttls: { certificate: "self-signed", ehlo: ["AUTH PLAIN LOGIN"] },
            }),
          })
          const settings = H.settingsOf(H.values(server, "STARTTLS", credentialSettings))

          const { result } = await H.sendDirect(transport, settings)

          failure(result, { reason: "CertificateUntrusted", phase: "tls" })
          expect(commandsIn(server.clientLines(), ["AUTH", "MAIL"])).toEqual([])
        },
        timeout(15_000),
      )
    })

    describe("C04 STARTTLS mode", () => {
      it(
        "(a) STARTTLS refused with 454: the error quotes it and only QUIT follows",
        async () => {
          const server = await scripted({
            script: [
              Script.send(H.greeting),
              Script.expect(/^EHLO /i, H.ehloReply(["STARTTLS", "AUTH PLAIN LOGIN"])),
              Script.expect(/^STARTTLS$/i, "454 4.7.0 TLS not available\r\n"),
            ],
          })
          const settings = H.settingsOf(H.values(server, "STARTTLS", credentialSettings))

          const { result } = await H.sendDirect(transport, settings)

          const error = failure(result, { reason: "StartTlsRefused", phase: "starttls" })
          expect(error.code).toBe(454)
          expect(error.enhancedCode).toBe("4.7.0")
          expect(error.serverText).toContain("TLS not available")
          expect(error.command).toBe("STARTTLS")
          const after = linesAfter(server.clientLines(), /^STARTTLS$/i)
          expect(after.every((line) => /^QUIT$/i.test(line))).toBe(true)
          expect(commandsIn(server.clientLines(), ["AUTH", "MAIL"])).toEqual([])
        },
        timeout(15_000),
      )

      it(
        "(b) STARTTLS accepted, then plain text instead of a handshake: TLS error, no AUTH",
        async () => {
          const server = await scripted({
            script: [
              Script.send(H.greeting),
              Script.expect(/^EHLO /i, H.ehloReply(["STARTTLS", "AUTH PLAIN LOGIN"])),
              Script.expect(/^STARTTLS$/i, "220 2.0.0 Ready to start TLS\r\n"),
              // Plain text only once the ClientHello is in: it must not be discarded as
              // bytes that came before the handshake.
              Script.awaitBytes(),
              Script.send("220 smtp.test ESMTP still in plain text\r\n"),
              Script.silent(),
            ],
          })
          const settings = H.settingsOf(
            H.values(server, "STARTTLS", {
              ...credentialSettings,
              mailSmtpConnectionTimeout: "3000",
              mailSmtpTimeout: "60000",
            }),
          )

          const { result, elapsedMs } = await H.sendDirect(transport, settings)

          failure(result, { reason: "PlaintextWhereTlsExpected", phase: "tls" })
          expect(elapsedMs).toBeLessThan(3_000)
          expect(commandsIn(server.clientLines(), ["AUTH", "MAIL"])).toEqual([])
        },
        timeout(15_000),
      )

      it(
        "(b) STARTTLS accepted, then silence: the handshake ends at the connection timeout",
        async () => {
          const server = await scripted({
            script: [
              Script.send(H.greeting),
              Script.expect(/^EHLO /i, H.ehloReply(["STARTTLS"])),
              Script.expect(/^STARTTLS$/i, "220 2.0.0 Ready to start TLS\r\n"),
              Script.silent(),
            ],
          })
          const settings = H.settingsOf(
            H.values(server, "STARTTLS", {
              mailSmtpConnectionTimeout: "2000",
              mailSmtpTimeout: "60000",
            }),
          )

          const { result, elapsedMs } = await H.sendDirect(transport, settings)

          failure(result, { reason: "TlsHandshakeFailed", phase: "tls" })
          expect(elapsedMs).toBeGreaterThanOrEqual(1_500)
          expect(elapsedMs).toBeLessThan(10_000)
          expect(commandsIn(server.clientLines(), ["AUTH", "MAIL"])).toEqual([])
        },
        timeout(20_000),
      )

      it(
        "(c) STARTTLS not offered, no credentials: delivered in plain text, one warning event",
        async () => {
          const server = await scripted({
            script: H.dialogue({ ehlo: ["8BITMIME", "SIZE 1000000"] }),
          })
          const settings = H.settingsOf(H.values(server, "STARTTLS"))

          const { result, logs } = await H.sendViaMailer(transport, settings)

          const receipt = delivered(result)
          expectReceipt(receipt, { transport: transport.name, endpoint: server, tls: "none" })
          const warnings = logs.filter((log) => ["Warn", "Error", "Fatal"].includes(log.level))
          expect(warnings.map((log) => log.annotations["event"])).toEqual(["plaintext"])
          expect(commandsIn(server.clientLines(), ["STARTTLS"])).toEqual([])
        },
        timeout(15_000),
      )

      it(
        "(d) STARTTLS not offered, credentials set: an error, and the credentials never sent",
        async () => {
          const server = await scripted({
            script: H.dialogue({ ehlo: ["AUTH PLAIN LOGIN", "8BITMIME"] }),
          })
          const settings = H.settingsOf(H.values(server, "STARTTLS", credentialSettings))

          const { result, logs } = await H.sendDirect(transport, settings)

          const error = failure(result, { reason: "CleartextCredentials", phase: "starttls" })
          expect(commandsIn(server.clientLines(), ["AUTH", "MAIL"])).toEqual([])
          const visible = [H.visibleText(error), ...logs.map((l) => l.text)].join("\n")
          for (const secret of H.secretForms(credentials.user, credentials.password)) {
            expect(visible).not.toContain(secret)
          }
        },
        timeout(15_000),
      )

      it(
        "STARTTLS_REQUIRED, STARTTLS not offered: an error before MAIL",
        async () => {
          const server = await scripted({ script: H.dialogue({ ehlo: ["8BITMIME"] }) })
          const settings = H.settingsOf(H.values(server, "STARTTLS_REQUIRED"))

          const { result } = await H.sendDirect(transport, settings)

          failure(result, { reason: "StartTlsNotOffered", phase: "starttls" })
          expect(commandsIn(server.clientLines(), ["MAIL", "RCPT", "DATA"])).toEqual([])
        },
        timeout(15_000),
      )
    })

    describe("C05-C08 capabilities and AUTH", () => {
      it(
        "C05 uses only the capabilities offered after STARTTLS: AUTH LOGIN, never NTLM",
        async () => {
          const server = await scripted({
            script: H.dialogue({
              ehlo: ["STARTTLS", "AUTH NTLM"],
              starttls: { ehlo: ["AUTH NTLM LOGIN", "SIZE 37748736"] },
              auth: H.authLoginSteps(),
            }),
          })
          const settings = H.settingsOf(H.values(server, "STARTTLS", credentialSettings))

          const { result } = await H.sendDirect(transport, settings)

          const receipt = delivered(result)
          expectReceipt(receipt, {
            transport: transport.name,
            endpoint: server,
            tls: "STARTTLS",
            authenticated: true,
          })
          const lines = server.clientLines()
          expect(lines.filter((line) => /NTLM/i.test(line))).toEqual([])
          expect(commandsIn(server.clientLines({ tls: true }), ["AUTH"])).toEqual(["AUTH LOGIN"])
          expect(commandsIn(server.clientLines({ tls: false }), ["AUTH"])).toEqual([])
        },
        timeout(15_000),
      )

      it(
        "C06 AUTH never offered with credentials set: AuthNotOffered with the [EMPTY] hint",
        async () => {
          const server = await scripted({
            script: H.dialogue({
              ehlo: ["STARTTLS"],
              starttls: { ehlo: ["SIZE 1000000", "8BITMIME"] },
              then: [
                Script.expect(/^AUTH/i, "503 5.5.1 Error: authentication not enabled\r\n"),
                ...H.deliverySteps,
              ],
            }),
          })
          const settings = H.settingsOf(H.values(server, "STARTTLS", credentialSettings))

          const { result } = await H.sendDirect(transport, settings)

          const error = failure(result, { reason: "AuthNotOffered", phase: "auth" })
          expect(error.hint).toMatch(/mailuser/)
          expect(error.hint).toContain("[EMPTY]")
          expect(commandsIn(server.clientLines(), ["AUTH", "MAIL"])).toEqual([])
        },
        timeout(15_000),
      )

      it(
        "C07 sees STARTTLS on the last EHLO line (no dash)",
        async () => {
          const server = await scripted({
            script: H.dialogue({
              ehlo: ["SIZE 1000000", "STARTTLS"],
              starttls: { ehlo: ["SIZE 1000000"] },
            }),
          })
          const settings = H.settingsOf(H.values(server, "STARTTLS_REQUIRED"))

          const { result } = await H.sendDirect(transport, settings)

          expectReceipt(delivered(result), {
            transport: transport.name,
            endpoint: server,
            tls: "STARTTLS",
          })
          expect(commandsIn(server.clientLines({ tls: false }), ["STARTTLS"])).toEqual(["STARTTLS"])
        },
        timeout(15_000),
      )

      it(
        "C07 understands the old AUTH=LOGIN form",
        async () => {
          const server = await scripted({
            implicitTls: {},
            script: H.dialogue({ ehlo: ["AUTH=LOGIN", "8BITMIME"], auth: H.authLoginSteps() }),
          })
          const settings = H.settingsOf(H.values(server, "SSL_TLS", credentialSettings))

          const { result } = await H.sendDirect(transport, settings)

          expectReceipt(delivered(result), {
            transport: transport.name,
            endpoint: server,
            tls: "SSL_TLS",
            authenticated: true,
          })
          expect(commandsIn(server.clientLines(), ["AUTH"])).toEqual(["AUTH LOGIN"])
        },
        timeout(15_000),
      )

      it(
        "C08 AUTH LOGIN is the two-prompt dialogue, the password in UTF-8, chosen over " +
          "GSSAPI and NTLM; no secret in logs or receipt",
        async () => {
          const server = await scripted({
            implicitTls: {},
            script: H.dialogue({ ehlo: ["AUTH GSSAPI NTLM LOGIN"], auth: H.authLoginSteps() }),
          })
          const settings = H.settingsOf(H.values(server, "SSL_TLS", credentialSettings))

          const { result, logs } = await H.sendDirect(transport, settings)

          const receipt = delivered(result)
          expect(receipt.authenticated).toBe(true)
          const lines = server.clientLines()
          const auth = lines.findIndex((line) => /^AUTH /i.test(line))
          expect(lines.slice(auth, auth + 3)).toEqual([
            "AUTH LOGIN",
            Buffer.from("printer", "utf8").toString("base64"),
            Buffer.from("p€ss", "utf8").toString("base64"),
          ])
          const visible = [JSON.stringify(receipt), ...logs.map((l) => l.text)].join("\n")
          for (const secret of H.secretForms(credentials.user, credentials.password)) {
            expect(visible).not.toContain(secret)
          }
        },
        timeout(15_000),
      )

      it(
        "C08 a server offering only GSSAPI and NTLM gets no AUTH line: no usable mechanism",
        async () => {
          const server = await scripted({
            implicitTls: {},
            script: H.dialogue({ ehlo: ["AUTH GSSAPI NTLM", "8BITMIME"] }),
          })
          const settings = H.settingsOf(H.values(server, "SSL_TLS", credentialSettings))

          const { result } = await H.sendDirect(transport, settings)

          failure(result, { reason: "NoUsableAuthMechanism", phase: "auth" })
          expect(commandsIn(server.clientLines(), ["AUTH", "MAIL"])).toEqual([])
        },
        timeout(15_000),
      )

      it(
        "C08 a 535 is an authentication error with the server's text, not retried, " +
          "and does not move to the backup",
        async () => {
          const server = await scripted({
            implicitTls: {},
            script: H.dialogue({
              ehlo: ["AUTH PLAIN LOGIN", "8BITMIME"],
              then: [
                Script.expect(
                  /^AUTH /i,
                  "535 5.7.8 Error: authentication failed: bad credentials for printer\r\n",
                ),
                Script.expect(/^QUIT/i, "221 2.0.0 Bye\r\n"),
                Script.close(),
              ],
            }),
          })
          const settings = H.settingsOf(H.values(server, "SSL_TLS", credentialSettings))

          const { result, logs } = await H.sendDirect(transport, settings)

          const error = failure(result, { reason: "AuthRejected", phase: "auth" })
          expect(error.code).toBe(535)
          expect(error.enhancedCode).toBe("5.7.8")
          expect(error.serverText).toContain("bad credentials for printer")
          expect(Mailer.movesToBackup(error)).toBe(false)
          expect(commandsIn(server.clientLines(), ["AUTH"])).toHaveLength(1)
          expect(server.connectionCount).toBe(1)
          const visible = [H.visibleText(error), ...logs.map((l) => l.text)].join("\n")
          for (const secret of H.secretForms(credentials.user, credentials.password)) {
            expect(visible).not.toContain(secret)
          }
        },
        timeout(15_000),
      )
      for (const [name, refusal, code, enhancedCode] of [
        ["538 5.7.11", "538 5.7.11 Must issue a STARTTLS command first\r\n", 538, "5.7.11"],
        [
          "530 5.7.0 about STARTTLS",
          "530 5.7.0 Must issue a STARTTLS command first\r\n",
          530,
          "5.7.0",
        ],
      ] as const) {
        it(
          `C08 a ${name} refusal of AUTH under NONE says to encrypt first, not to check ` +
            "the password",
          async () => {
            const server = await scripted({
              script: H.dialogue({
                ehlo: ["AUTH PLAIN LOGIN", "STARTTLS", "8BITMIME"],
                then: [
                  Script.expect(/^AUTH /i, refusal),
                  Script.expect(/^QUIT/i, "221 2.0.0 Bye\r\n"),
                  Script.close(),
                ],
              }),
            })
            const settings = H.settingsOf(H.values(server, "NONE", credentialSettings))

            const { result, logs } = await H.sendDirect(transport, settings)

            const error = failure(result, { reason: "AuthRejected", phase: "auth" })
            expect({ code: error.code, enhancedCode: error.enhancedCode }).toEqual({
              code,
              enhancedCode,
            })
            expect(error.hint).toBe(
              "the server requires encryption before AUTH: set mailSmtpEncryption to " +
                "STARTTLS_REQUIRED (or SSL_TLS)",
            )
            expect(error.detail).toMatch(/^the server refused AUTH \w+ on a connection that is/)
            expect(commandsIn(server.clientLines(), ["STARTTLS", "MAIL"])).toEqual([])
            const visible = [H.visibleText(error), ...logs.map((l) => l.text)].join("\n")
            for (const secret of H.secretForms(credentials.user, credentials.password)) {
              expect(visible).not.toContain(secret)
            }
          },
          timeout(15_000),
        )
      }
    })

    describe("XOAUTH2 with an OAuth 2.0 access token from the Mailer", () => {
      const accessToken = Effect.succeed(Redacted.make(H.bearerToken))
      /** Sends with a token through the Mailer; asserts the failure that ended the send. */
      const refusedWithToken = async (
        server: { readonly host: string; readonly port: number },
        mode: "SSL_TLS" | "STARTTLS",
        expected: { readonly reason: TransportError.TransportFailure; readonly phase: "auth" },
        token = accessToken,
      ): Promise<TransportError.TransportError> => {
        const settings = H.settingsOf(H.values(server, mode, credentialSettings))
        const { result } = await H.sendViaMailer(transport, settings, H.message, {
          accessToken: token,
        })
        if (result._tag === "Success") throw new Error("expected a failure, it was delivered")
        const error = result.failure
        if (error._tag !== "DeliveryError") throw new Error(`expected a DeliveryError: ${error}`)
        expect({ reason: error.last.reason, phase: error.last.phase }).toEqual(expected)
        return error.last
      }

      it(
        "logs in with XOAUTH2 after STARTTLS, never with the password, the token hidden",
        async () => {
          const server = await real({
            tls: "starttls",
            auth: { ...credentials, accessToken: H.bearerToken },
            authMethods: ["PLAIN", "LOGIN", "XOAUTH2"],
          })
          const settings = H.settingsOf(H.values(server, "STARTTLS", credentialSettings))

          const { result } = await H.sendViaMailer(transport, settings, H.message, {
            accessToken,
          })

          const receipt = delivered(result)
          expectReceipt(receipt, {
            transport: transport.name,
            endpoint: server,
            tls: "STARTTLS",
            authenticated: true,
          })
          expect(server.authAttempts).toEqual([
            { method: "XOAUTH2", user: credentials.user, accepted: true },
          ])
          expect(server.messages).toHaveLength(1)
        },
        timeout(15_000),
      )

      it(
        "a refused token is answered once with an empty line, not sent again, not failed over",
        async () => {
          const challenge = Buffer.from('{"status":"401","schemes":"bearer"}').toString("base64")
          const server = await scripted({
            implicitTls: {},
            script: H.dialogue({
              ehlo: ["AUTH PLAIN LOGIN XOAUTH2", "8BITMIME"],
              then: [
                Script.expect(/^AUTH XOAUTH2 \S+$/i, `334 ${challenge}\r\n`),
                Script.expect(/^$/, "535 5.7.8 Username and Password not accepted\r\n"),
                Script.expect(/^QUIT/i, "221 2.0.0 Bye\r\n"),
                Script.close(),
              ],
            }),
          })

          const error = await refusedWithToken(server, "SSL_TLS", {
            reason: "AuthRejected",
            phase: "auth",
          })

          expect({ code: error.code, enhancedCode: error.enhancedCode }).toEqual({
            code: 535,
            enhancedCode: "5.7.8",
          })
          expect(error.command).toMatch(/^AUTH XOAUTH2( \*{4})?$/)
          expect(error.hint).toMatch(/^the access token was refused: renew it/)
          expect(Mailer.movesToBackup(error)).toBe(false)
          const lines = server.clientLines()
          expect(commandsIn(lines, ["AUTH"])).toHaveLength(1)
          expect(linesAfter(lines, /^AUTH XOAUTH2 /i)).toEqual(["", "QUIT"])
          expect(server.connectionCount).toBe(1)
        },
        timeout(15_000),
      )

      for (const [name, bad] of [
        ["a line break", `${H.bearerToken}\r\nRSET`],
        ["a 0x01", `${H.bearerToken}\u0001auth=Bearer other`],
      ] as const) {
        it(`an access token holding ${name} is refused before a byte is sent`, async () => {
          const server = await real({
            tls: "starttls",
            auth: { ...credentials, accessToken: H.bearerToken },
            authMethods: ["XOAUTH2"],
          })

          await refusedWithToken(
            server,
            "STARTTLS",
            { reason: "InvalidArgument", phase: "auth" },
            Effect.succeed(Redacted.make(bad)),
          )

          expect(server.authAttempts).toEqual([])
          expect(server.messages).toEqual([])
        })
      }

      it(
        "a server without XOAUTH2 gets no AUTH line: no usable mechanism, no password instead",
        async () => {
          const server = await scripted({
            implicitTls: {},
            script: H.dialogue({ ehlo: ["AUTH PLAIN LOGIN", "8BITMIME"] }),
          })

          const error = await refusedWithToken(server, "SSL_TLS", {
            reason: "NoUsableAuthMechanism",
            phase: "auth",
          })

          expect(error.detail).toContain("XOAUTH2")
          expect(commandsIn(server.clientLines(), ["AUTH", "MAIL"])).toEqual([])
        },
        timeout(15_000),
      )
    })

    describe("TLS versions on the wire", () => {
      /** OpenSSL 3 speaks TLS 1.0 only at security level 0, on the server side too. */
      const tls10Server = (tlsMode: "implicit" | "starttls") =>
        real({
          tls: tlsMode,
          minVersion: "TLSv1",
          maxVersion: "TLSv1",
          ciphers: "DEFAULT:@SECLEVEL=0",
        })
      const versionSettings = (versions: string) => ({
        cryptographicProtocolsForOutboundCommunication: versions,
      })

      for (const [mode, tlsMode] of [
        ["SSL_TLS", "implicit"],
        ["STARTTLS", "starttls"],
      ] as const) {
        for (const versions of ["TLSv1", ">=TLSv1"]) {
          it(
            `reaches a TLS 1.0-only server over ${mode} with ${versions}; the receipt says TLSv1`,
            async () => {
              const server = await tls10Server(tlsMode)
              const settings = H.settingsOf(H.values(server, mode, versionSettings(versions)))

              const { result } = await H.sendDirect(transport, settings)

              const receipt = delivered(result)
              expectReceipt(receipt, { transport: transport.name, endpoint: server, tls: mode })
              expect(receipt.tls!.protocol).toBe("TLSv1")
              expect(server.messages.map((m) => m.tlsProtocol)).toEqual(["TLSv1"])
            },
            timeout(15_000),
          )
        }

        it(
          `refuses a TLS 1.0-only server over ${mode} with the default TLSv1.2`,
          async () => {
            const server = await tls10Server(tlsMode)
            const settings = H.settingsOf(H.values(server, mode))

            const { result } = await H.sendDirect(transport, settings)

            const error = failure(result, { reason: "TlsVersionMismatch", phase: "tls" })
            expect(error.hint).toContain("cryptographicProtocolsForOutboundCommunication")
            expect(server.messages).toEqual([])
          },
          timeout(15_000),
        )
      }

      it(
        "still negotiates TLS 1.3 with a TLS 1.3 server when >=TLSv1 is allowed",
        async () => {
          const server = await real({ tls: "implicit", minVersion: "TLSv1.3" })
          const settings = H.settingsOf(H.values(server, "SSL_TLS", versionSettings(">=TLSv1")))

          const { result } = await H.sendDirect(transport, settings)

          const receipt = delivered(result)
          expectReceipt(receipt, { transport: transport.name, endpoint: server, tls: "SSL_TLS" })
          expect(receipt.tls!.protocol).toBe("TLSv1.3")
          expect(server.messages.map((m) => m.tlsProtocol)).toEqual(["TLSv1.3"])
        },
        timeout(15_000),
      )

      it(
        "refuses a TLS 1.3-only server when a custom TLS 1.2 list caps TLSv1.2,TLSv1.3, and " +
          "the Mailer's hint names the cipher list, not the versions",
        async () => {
          const server = await real({ tls: "implicit", minVersion: "TLSv1.3" })
          const settings = H.settingsOf(
            H.values(server, "SSL_TLS", {
              ...versionSettings("TLSv1.2,TLSv1.3"),
              allowCustomCipherSuitesForOutboundCommunication: "true",
              customCipherSuitesForOutboundCommunication: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            }),
          )

          const direct = await H.sendDirect(transport, settings)
          failure(direct.result, { reason: "TlsVersionMismatch", phase: "tls" })
          const { result } = await H.sendViaMailer(transport, settings)

          if (result._tag === "Success" || result.failure._tag !== "DeliveryError") {
            throw new Error("expected a DeliveryError")
          }
          const error = result.failure.last
          expect({ reason: error.reason, phase: error.phase }).toEqual({
            reason: "TlsVersionMismatch",
            phase: "tls",
          })
          expect(error.hint).toContain(
            "customCipherSuitesForOutboundCommunication has no suite for TLSv1.3",
          )
          expect(server.messages).toEqual([])
        },
        timeout(15_000),
      )
    })

    describe("C09 cipher suites by their IANA names", () => {
      const javaSuite = "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
      const cipherSettings = {
        cryptographicProtocolsForOutboundCommunication: "TLSv1.2",
        allowCustomCipherSuitesForOutboundCommunication: "true",
        customCipherSuitesForOutboundCommunication: javaSuite,
      }

      it(
        "delivers to a TLS 1.2 server limited to the matching suite; the receipt names it",
        async () => {
          const server = await real({
            tls: "implicit",
            maxVersion: "TLSv1.2",
            ciphers: "ECDHE-RSA-AES256-GCM-SHA384",
          })
          const settings = H.settingsOf(H.values(server, "SSL_TLS", cipherSettings))

          const { result } = await H.sendDirect(transport, settings)

          const receipt = delivered(result)
          expectReceipt(receipt, { transport: transport.name, endpoint: server, tls: "SSL_TLS" })
          expect(receipt.tls!.cipher).toBe(javaSuite)
          expect(receipt.tls!.protocol).toBe("TLSv1.2")
          expect(server.messages[0]!.cipher).toBe(javaSuite)
        },
        timeout(15_000),
      )

      it(
        "fails with no shared cipher against a server limited to another suite",
        async () => {
          const server = await real({
            tls: "implicit",
            maxVersion: "TLSv1.2",
            ciphers: "ECDHE-RSA-AES128-GCM-SHA256",
          })
          const settings = H.settingsOf(H.values(server, "SSL_TLS", cipherSettings))

          const { result } = await H.sendDirect(transport, settings)

          failure(result, { reason: "NoSharedCipher", phase: "tls" })
          expect(server.messages).toEqual([])
        },
        timeout(15_000),
      )

      it("refuses a misspelt suite at load, naming the token", () => {
        const resolution = H.resolve(
          H.values({ host: "127.0.0.1", port: 465 }, "SSL_TLS", {
            ...cipherSettings,
            customCipherSuitesForOutboundCommunication: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA385",
          }),
        )
        expect(resolution.settings).toBeUndefined()
        const problem = resolution.problems.find(
          (p) => p.key === "customCipherSuitesForOutboundCommunication",
        )
        expect(problem?.message).toContain("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA385")
      })

      it("refuses a list of only TLS 1.3 suites with TLSv1.2 at load, not at send time", () => {
        const resolution = H.resolve(
          H.values({ host: "127.0.0.1", port: 465 }, "SSL_TLS", {
            ...cipherSettings,
            customCipherSuitesForOutboundCommunication:
              "TLS_AES_256_GCM_SHA384,TLS_AES_128_GCM_SHA256",
          }),
        )
        expect(resolution.settings).toBeUndefined()
        const problem = resolution.problems.find(
          (p) => p.key === "customCipherSuitesForOutboundCommunication",
        )
        expect(problem).toBeDefined()
        expect(`${problem!.message} ${problem!.fix}`).toMatch(/TLS ?v?1\.[23]/i)
      })
    })

    describe("C10 host names", () => {
      it(
        "refuses a certificate for other.test at 127.0.0.1, naming the certificate's names",
        async () => {
          const server = await scripted({
            implicitTls: { certificate: "wrong-host" },
            script: H.dialogue({ ehlo: ["8BITMIME"] }),
          })
          const settings = H.settingsOf(H.values(server, "SSL_TLS"))

          const { result } = await H.sendDirect(transport, settings)

          const error = failure(result, { reason: "HostnameMismatch", phase: "tls" })
          expect(error.message).toContain("other.test")
          expect(commandsIn(server.clientLines(), ["EHLO", "MAIL"])).toEqual([])
        },
        timeout(15_000),
      )

      for (const host of ["127.0.0.1", "::1"]) {
        it(
          `delivers to a certificate for ${host} at ${host}, sending no SNI and warning nothing`,
          async () => {
            const server = await scripted({
              host,
              implicitTls: {},
              script: H.dialogue({ ehlo: ["8BITMIME"] }),
            })
            const settings = H.settingsOf(H.values(server, "SSL_TLS"))
            const warnings: Array<string> = []
            const onWarning = (warning: Error) => warnings.push(warning.message)
            const stderrWrite = process.stderr.write
            process.on("warning", onWarning)
            process.stderr.write = ((chunk: unknown, ...rest: Array<unknown>) => {
              warnings.push(String(chunk))
              return (stderrWrite as (...args: Array<unknown>) => boolean).call(
                process.stderr,
                chunk,
                ...rest,
              )
            }) as typeof process.stderr.write

            try {
              const { result } = await H.sendDirect(transport, settings)
              expectReceipt(delivered(result), {
                transport: transport.name,
                endpoint: server,
                tls: "SSL_TLS",
              })
            } finally {
              process.off("warning", onWarning)
              process.stderr.write = stderrWrite
            }

            const session = server.transcript.find((entry) => entry.kind === "tls")
            expect(session).toMatchObject({ kind: "tls", servername: undefined })
            expect(warnings.filter((w) => /SNI|ServerName|RFC 6066/i.test(w))).toEqual([])
          },
          timeout(15_000),
        )
      }

      it(
        "checks the backup on 127.0.0.2 against its own name: the primary's certificate fails",
        async () => {
          const { backup, port } = await H.pair(
            () => real({ host: "127.0.0.2", tls: "implicit", certificate: "server" }),
            async (shared) => {
              await H.closedPort("127.0.0.1", shared)
              return undefined
            },
          )
          const settings = H.settingsOf(
            H.values({ host: "127.0.0.1", port }, "SSL_TLS", { mailserverbackup: "127.0.0.2" }),
          )

          const { result } = await H.sendViaMailer(transport, settings)

          if (result._tag === "Success") throw new Error("expected the backup to be refused")
          const error = result.failure
          expect(error._tag).toBe("DeliveryError")
          if (error._tag !== "DeliveryError") return
          expect(error.attempts.map((a) => [a.endpoint.host, a.error?.reason])).toEqual([
            ["127.0.0.1", "ConnectionRefused"],
            ["127.0.0.2", "HostnameMismatch"],
          ])
          expect(error.last.phase).toBe("tls")
          expect(backup.messages).toEqual([])
        },
        timeout(15_000),
      )
    })

    describe("a server name with several addresses", () => {
      it(
        "goes on to the next address when the first refuses, and checks the certificate " +
          "against the name",
        async () => {
          const { backup: server, port } = await H.pair(
            () => real({ host: "127.0.0.2", tls: "starttls" }),
            async (shared) => H.closedPort("127.0.0.1", shared),
          )
          const lookup = stubLookup({ "smtp.test": ["127.0.0.1", "127.0.0.2"] })
          try {
            const settings = H.settingsOf(H.values({ host: "smtp.test", port }, "STARTTLS"))

            const { result } = await H.sendDirect(transport, settings)

            expectReceipt(delivered(result), {
              transport: transport.name,
              endpoint: { host: "smtp.test", port },
              tls: "STARTTLS",
            })
            expect(server.messages).toHaveLength(1)
            expect(lookup.consulted[0]).toBe("smtp.test")
          } finally {
            lookup.restore()
          }
        },
        timeout(15_000),
      )
    })

    describe("C11 a private CA as a PEM file", () => {
      for (const file of ["root-ca.crt", "root-ca.crlf-bom.crt", "bundle.crt"]) {
        it(
          `delivers when the trust store is ${file}`,
          async () => {
            const server = await real({ tls: "implicit" })
            const settings = H.settingsOf(
              H.values(server, "SSL_TLS", { trustStorePath: fixturePath(`pki/${file}`) }),
            )

            const { result } = await H.sendDirect(transport, settings)

            expectReceipt(delivered(result), {
              transport: transport.name,
              endpoint: server,
              tls: "SSL_TLS",
            })
            expect(server.messages).toHaveLength(1)
          },
          timeout(15_000),
        )
      }

      for (const [label, trustStorePath] of [
        ["with only the system roots", ""],
        ["trusting only unrelated-ca.crt", fixturePath("pki/unrelated-ca.crt")],
      ] as const) {
        it(
          `is untrusted ${label}`,
          async () => {
            const server = await real({ tls: "starttls" })
            const settings = H.settingsOf(H.values(server, "STARTTLS", { trustStorePath }))

            const { result } = await H.sendDirect(transport, settings)

            failure(result, { reason: "CertificateUntrusted", phase: "tls" })
            expect(server.messages).toEqual([])
          },
          timeout(15_000),
        )
      }

      it("keeps the system roots next to a private root in the transport's policy", async () => {
        const settings = H.settingsOf(H.values({ host: "127.0.0.1", port: 465 }, "SSL_TLS"))
        const policy = await H.tlsPolicyOf(settings)
        const options = policy.optionsFor("127.0.0.1")
        const ca = (options.ca as ReadonlyArray<string>).map((pem) => pem.trim())
        for (const root of tls.rootCertificates) expect(ca).toContain(root.trim())
        expect(ca.some((pem) => pem.includes(rootCa().trim().split("\n")[1]!))).toBe(true)
        expect(options.rejectUnauthorized).toBe(true)
      })
    })

    describe("C12 trust stores recognised by content", () => {
      for (const file of ["ssl-truststore", "ssl-truststore.p12", "openssl-truststore.p12"]) {
        it(
          `delivers when the trust store is ${file} (password changeit)`,
          async () => {
            const server = await real({ tls: "implicit" })
            const settings = H.settingsOf(
              H.values(server, "SSL_TLS", {
                trustStorePath: fixturePath(`pki/${file}`),
                trustStorePassword: "changeit",
              }),
            )

            const { result } = await H.sendDirect(transport, settings)

            expectReceipt(delivered(result), {
              transport: transport.name,
              endpoint: server,
              tls: "SSL_TLS",
            })
          },
          timeout(15_000),
        )
      }

      it(
        "is untrusted with a JKS store that holds only an unrelated CA",
        async () => {
          const server = await real({ tls: "implicit" })
          const settings = H.settingsOf(
            H.values(server, "SSL_TLS", {
              trustStorePath: fixturePath("pki/unrelated-only.jks"),
              trustStorePassword: "changeit",
            }),
          )

          const { result } = await H.sendDirect(transport, settings)

          failure(result, { reason: "CertificateUntrusted", phase: "tls" })
        },
        timeout(15_000),
      )

      const loadStore = (path: string, password: string) =>
        Effect.runPromise(
          Effect.result(TrustStore.load({ path, password: Redacted.make(password), type: "auto" })),
        )

      const stores = ["ssl-truststore.jks", "ssl-truststore.p12", "openssl-truststore.p12"]

      it("a wrong password is a trust-store error naming the file, no empty store", async () => {
        for (const file of stores) {
          const path = fixturePath(`pki/${file}`)
          const result = await loadStore(path, "not-the-password")
          expect(result._tag).toBe("Failure")
          if (result._tag !== "Failure") continue
          expect(result.failure._tag).toBe("TrustStoreError")
          expect(result.failure.message).toContain(file)
          expect(result.failure.message).not.toContain("not-the-password")
        }
      })

      describe("with a damaged file", () => {
        let folder = ""
        beforeAll(() => {
          folder = mkdtempSync(join(tmpdir(), "spoc-mail-contract-"))
        })
        afterAll(() => rmSync(folder, { recursive: true, force: true }))

        it("a truncated store is a trust-store error naming the file", async () => {
          for (const file of ["ssl-truststore.jks", "ssl-truststore.p12"]) {
            const bytes = readFixture(`pki/${file}`)
            const path = join(folder, `truncated-${file}`)
            writeFileSync(path, bytes.subarray(0, Math.floor(bytes.length / 2)))
            const result = await loadStore(path, "changeit")
            expect(result._tag).toBe("Failure")
            if (result._tag !== "Failure") continue
            expect(result.failure._tag).toBe("TrustStoreError")
            expect(result.failure.message).toContain(`truncated-${file}`)
          }
        })
      })
    })

    describe("C13 failover to the backup", () => {
      /** STARTTLS settings for a primary on 127.0.0.1 and a backup on 127.0.0.2, same port. */
      const failoverSettings = (port: number, extra: Record<string, string> = {}) =>
        H.settingsOf(
          H.values({ host: "127.0.0.1", port }, "STARTTLS", {
            mailserverbackup: "127.0.0.2",
            ...extra,
          }),
        )
      const backupServer = () => real({ host: "127.0.0.2", tls: "starttls", certificate: "backup" })

      const expectBackupDelivered = (
        result: Awaited<ReturnType<typeof H.sendViaMailer>>["result"],
        backup: SmtpTestServer,
        firstReason: TransportError.TransportFailure,
      ): Mailer.DeliveryReceipt => {
        const receipt = delivered(result)
        expectReceipt(receipt, {
          transport: transport.name,
          endpoint: { host: "127.0.0.2", port: backup.port },
          role: "backup",
          tls: "STARTTLS",
          leaf: "backup",
        })
        expect(receipt.attempts.map((a) => [a.endpoint.role, a.outcome])).toEqual([
          ["primary", "failed"],
          ["backup", "delivered"],
        ])
        expect(receipt.attempts[0]!.error?.reason).toBe(firstReason)
        expect(backup.messages).toHaveLength(1)
        return receipt
      }

      it(
        "(a) delivers through the backup at once when the primary's port is closed",
        async () => {
          const { backup, port } = await H.pair(backupServer, async (shared) => {
            await H.closedPort("127.0.0.1", shared)
            return undefined
          })

          const { result, elapsedMs } = await H.sendViaMailer(transport, failoverSettings(port))

          expectBackupDelivered(result, backup, "ConnectionRefused")
          expect(elapsedMs).toBeLessThan(1_000)
        },
        timeout(15_000),
      )

      it(
        "(b) delivers through the backup after the connection timeout when the primary " +
          "accepts TCP and never greets",
        async () => {
          const { backup, port } = await H.pair(backupServer, (shared) =>
            scripted({ host: "127.0.0.1", port: shared, script: [Script.silent()] }),
          )

          const { result, elapsedMs } = await H.sendViaMailer(
            transport,
            failoverSettings(port, { mailSmtpConnectionTimeout: "3000", mailSmtpTimeout: "60000" }),
          )

          expectBackupDelivered(result, backup, "GreetingTimeout")
          expect(elapsedMs).toBeGreaterThanOrEqual(2_500)
          expect(elapsedMs).toBeLessThan(10_000)
        },
        timeout(20_000),
      )

      it(
        "(c) delivers through the backup when the primary greets with 421",
        async () => {
          const { backup, port } = await H.pair(backupServer, (shared) =>
            real({
              host: "127.0.0.1",
              port: shared,
              tls: "starttls",
              greeting: { code: 421, text: "4.3.2 Service not available" },
            }),
          )

          const { result } = await H.sendViaMailer(transport, failoverSettings(port))

          const receipt = expectBackupDelivered(result, backup, "GreetingRejected")
          const first = receipt.attempts[0]!.error!
          expect(first.code).toBe(421)
          expect(first.phase).toBe("greeting")
          expect(first.serverText).toContain("Service not available")
        },
        timeout(15_000),
      )

      it(
        "(d) fails with one error listing both attempts when both are closed",
        async () => {
          const port = await H.closedPort("127.0.0.2")
          await H.closedPort("127.0.0.1", port)

          const { result } = await H.sendViaMailer(transport, failoverSettings(port))

          if (result._tag === "Success") throw new Error("expected both attempts to fail")
          const error = result.failure
          expect(error._tag).toBe("DeliveryError")
          if (error._tag !== "DeliveryError") return
          expect(error.attempts.map((a) => [a.endpoint.host, a.error?.reason])).toEqual([
            ["127.0.0.1", "ConnectionRefused"],
            ["127.0.0.2", "ConnectionRefused"],
          ])
          expect(error.message).toContain(`127.0.0.1:${port}`)
          expect(error.message).toContain(`127.0.0.2:${port}`)
        },
        timeout(15_000),
      )
    })

    describe("C14 message content", () => {
      const longLine = "x".repeat(2000)
      const text = [
        "first line",
        ".",
        ".starts with a dot",
        "bare LF follows\nbare CR follows\rend of bare line ends",
        longLine,
        "last line",
      ].join("\r\n")
      const content: Message.MailMessage = { ...H.message, text }

      it(
        "reaches the server intact: dots unstuffed, CRLF lines, the same bytes as composed",
        async () => {
          const server = await real({ tls: "starttls" })
          const settings = H.settingsOf(H.values(server, "STARTTLS"))

          const { result, composed } = await H.sendDirect(transport, settings, content)

          delivered(result)
          expect(server.messages).toHaveLength(1)
          const raw = server.messages[0]!.raw
          const expected = await composedBytes(composed)
          expect(raw.toString("latin1")).toBe(expected.toString("latin1"))
          expect(raw.toString("latin1")).not.toMatch(/\r(?!\n)|(?<!\r)\n/)
          const decoded = await decodedText(raw)
          expect(normalise(decoded)).toBe(normalise(text))
        },
        timeout(15_000),
      )

      it(
        "is sent dot-stuffed, in lines of at most 998 octets, with exactly one end-of-data",
        async () => {
          const server = await scripted({ script: H.dialogue({ ehlo: ["8BITMIME"] }) })
          const settings = H.settingsOf(H.values(server, "NONE"))

          const { result, composed } = await H.sendDirect(transport, settings, content)

          delivered(result)
          expect(server.dataTransfers).toHaveLength(1)
          const wire = server.dataTransfers[0]!.toString("latin1")
          expect(wire.endsWith("\r\n.\r\n")).toBe(true)
          const lines = wire.slice(0, -2).split("\r\n")
          expect(lines.filter((line) => line === ".")).toHaveLength(1)
          for (const line of lines) {
            expect(line).not.toMatch(/[\r\n]/)
            expect(Buffer.byteLength(line, "latin1")).toBeLessThanOrEqual(998)
          }
          const unstuffed = lines
            .slice(0, -1)
            .map((line) => (line.startsWith(".") ? line.slice(1) : line))
            .join("\r\n")
          expect(`${unstuffed}\r\n`).toBe((await composedBytes(composed)).toString("latin1"))
          expect(server.clientLines().filter((line) => line === ".")).toEqual([])
          expect(commandsIn(server.clientLines(), ["DATA"])).toEqual(["DATA"])
        },
        timeout(15_000),
      )
    })
  }

  for (const level of options.logLevels ?? H.caseLogLevels) {
    describe(`Transport contract: ${name} (logs at ${level})`, cases(level))
  }
}

/** The composed message as a server must store it: CRLF line ends, ending in CRLF. */
const composedBytes = async (composed: Message.ComposedMessage): Promise<Buffer> => {
  const chunks: Array<Buffer> = []
  for await (const chunk of composed.stream()) chunks.push(Buffer.from(chunk as Uint8Array))
  const text = Buffer.concat(chunks)
    .toString("latin1")
    .replace(/\r\n|\r|\n/g, "\r\n")
  return Buffer.from(text.endsWith("\r\n") ? text : `${text}\r\n`, "latin1")
}

/** The text part of a received message, decoded by mailparser. */
const decodedText = async (raw: Buffer): Promise<string> => {
  const parsed = await simpleParser(raw)
  return parsed.text ?? ""
}

const normalise = (text: string): string => text.replace(/\r\n|\r|\n/g, "\n").replace(/\n+$/, "")
