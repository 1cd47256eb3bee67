/**
 * The Delivery contract: DESIGN "Delivery policy" held against a real
 * transport, through core's Mailer, as vitest tests a transport package
 * registers with one call:
 *
 *     deliveryContract("raw", () => RawTransport.make())
 *
 * Every row of the failover table is a case with a primary server on
 * 127.0.0.1 and a backup on 127.0.0.2 on the same port: the failures that
 * move to the backup (DNS, unreachable, refused, connect timeout, no
 * greeting, 421 and 554 greetings, connection lost before MAIL, every TLS
 * failure, STARTTLS refused, failed or not offered when required, AUTH not
 * offered or no usable mechanism, 4xx on MAIL, RCPT, DATA and the message)
 * and those that stay (AUTH rejected, 5xx on MAIL, every RCPT, DATA or the
 * message, timeout or loss after the final dot, configuration errors). Each
 * case checks every attempt in the receipt or the error (endpoint, phase,
 * outcome, duration), which server saw what (the backup saw no connection
 * when it must not be used; the primary got a message at most once), and the
 * events the Mailer logs (failover, plaintext, outcome-unknown, delivered,
 * failed), each once, annotated with the endpoint, the phase and the
 * Message-ID. The overall deadline is checked against slow servers, and the
 * SMTP transcript is checked to be logged at debug level only, with AUTH
 * arguments masked.
 *
 * Like the Transport contract, every case runs once per log level (Debug and
 * Effect's default unless told) with the harness's secret search on.
 *
 * No network is needed, and nothing leaves loopback, DNS queries included.
 * Three rows need a word. The DNS and unreachable rows name their primary by
 * a name under `.invalid` (RFC 6761) and stub `dns.lookup` on the `node:dns`
 * module object for the duration of the case (`LookupStub.ts`): a transport
 * that resolves names as `net.connect` does consults the stub, which answers
 * at once without asking a DNS server, and the case checks that it was
 * asked. For DNS the stub answers ENOTFOUND. An unreachable server cannot be
 * made on loopback (every loopback address answers), so the stub simulates
 * it at the same seam: it fails that name with EHOSTUNREACH, the error the
 * OS reports for a host without a route, and the transport sees it where it
 * would see the OS's. A connect timeout uses a loopback listener whose
 * accept queue is full, so the kernel drops the SYN as a filtering firewall
 * would.
 */
import * as net from "node:net"
import type { Mailer, Message, Settings, Transport, TransportError } from "@spoc-mail/core"
import type * as Result from "effect/Result"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import * as H from "./internal/contractHarness.ts"
import { stubLookup } from "./LookupStub.ts"
import { startStalledListener } from "./internal/StalledListener.ts"
import * as Script from "./ScriptedSmtpServer.ts"
import { type SmtpTestServerOptions, startSmtpServer, type TlsMode } from "./SmtpTestServer.ts"

export interface DeliveryContractOptions {
  /** Extra time granted to every test, for slow machines; default 0. */
  readonly extraTimeoutMs?: number
  /** The minimum log levels every case runs at; default Debug and Effect's default level. */
  readonly logLevels?: ReadonlyArray<H.CaseLogLevel>
}

type Mode = Settings.EncryptionMode
type Failure = TransportError.TransportFailure
type Phase = TransportError.Phase
type MailerResult = Result.Result<
  Mailer.DeliveryReceipt,
  Mailer.DeliveryError | Message.MessageError
>

interface Closeable {
  readonly close: () => Promise<void>
}

/** What the primary's failed attempt must say. */
interface ExpectedFailure {
  readonly reason: Failure
  readonly phase: Phase
  readonly code?: number
}

/** One row of the failover table that moves to the backup. */
interface FailoverRow {
  readonly title: string
  readonly mode: Mode
  /** Send with mailuser and mailpass; the backup then requires AUTH. */
  readonly credentials?: boolean
  readonly settings?: Readonly<Record<string, string>>
  /**
   * The primary's host: default 127.0.0.1. A name is answered by the lookup
   * stub, which the case installs and checks was consulted.
   */
  readonly primaryHost?: string
  /** Starts what answers on 127.0.0.1 and the shared port, if anything. */
  readonly primary?: (port: number) => Promise<Closeable | undefined>
  readonly expected: ExpectedFailure
  /** The primary's attempt takes at least this long: a timeout that is not cut short. */
  readonly primaryAtLeastMs?: number
}

/** A host that does not exist (RFC 6761 reserves `.invalid`): the stub answers ENOTFOUND. */
const unresolvable = "spoc-mail-contract.invalid"

/** A host without a route: the stub fails its lookup with EHOSTUNREACH, as the OS would. */
const unreachable = "unreachable.spoc-mail-contract.invalid"

/** The lookup stub of the DNS and unreachable rows. */
const lookupAnswers = { [unreachable]: { error: "EHOSTUNREACH" } } as const

const backupHost = "127.0.0.2"
const second = "second@example.com"
const credentialSettings = { mailuser: H.credentials.user, mailpass: H.credentials.password }
const fastTimeouts = { mailSmtpConnectionTimeout: "1500", mailSmtpTimeout: "1500" }

const tlsOf = (mode: Mode): TlsMode =>
  mode === "SSL_TLS" ? "implicit" : mode === "NONE" ? "none" : "starttls"

const endpointText = (host: string, port: number): string => `${host}:${port}`

/** A failed send's DeliveryError. */
const deliveryError = (result: MailerResult): Mailer.DeliveryError => {
  if (result._tag === "Success") {
    throw new Error(`expected the delivery to fail, but ${result.success.endpoint.role} took it`)
  }
  expect(result.failure._tag).toBe("DeliveryError")
  if (result.failure._tag !== "DeliveryError") throw result.failure
  return result.failure
}

/** A delivered send's receipt. */
const deliveredReceipt = (result: MailerResult): Mailer.DeliveryReceipt => {
  if (result._tag === "Failure") {
    throw new Error(`expected delivery, got: ${result.failure.message}`)
  }
  return result.success
}

interface ExpectedAttempt {
  readonly host: string
  readonly role: "primary" | "backup"
  readonly failure?: ExpectedFailure
}

/** Every attempt: endpoint, outcome, phase and reason of a failure, a plausible duration. */
const expectAttempts = (
  attempts: ReadonlyArray<Mailer.Attempt>,
  expected: ReadonlyArray<ExpectedAttempt>,
  context: { readonly port: number; readonly transport: string; readonly elapsedMs: number },
): void => {
  expect(
    attempts.map((a) => ({
      endpoint: a.endpoint,
      transport: a.transport,
      outcome: a.outcome,
      reason: a.error?.reason,
      phase: a.error?.phase,
    })),
  ).toEqual(
    expected.map((e) => ({
      endpoint: { host: e.host, port: context.port, role: e.role },
      transport: context.transport,
      outcome: e.failure === undefined ? "delivered" : "failed",
      reason: e.failure?.reason,
      phase: e.failure?.phase,
    })),
  )
  expected.forEach((e, i) => {
    const attempt = attempts[i]!
    if (e.failure?.code !== undefined) expect(attempt.error?.code).toBe(e.failure.code)
    if (attempt.error !== undefined) expect(attempt.error.endpoint).toEqual(attempt.endpoint)
    expect(Number.isFinite(attempt.durationMs)).toBe(true)
    expect(attempt.durationMs).toBeGreaterThanOrEqual(0)
    expect(attempt.durationMs).toBeLessThanOrEqual(context.elapsedMs + 50)
  })
}

interface ExpectedEvent {
  readonly event: "failover" | "plaintext" | "outcome-unknown" | "delivered" | "failed"
  readonly endpoint: string
  readonly phase?: Phase
}

/** The Mailer's events, in order, each once, annotated with endpoint, phase and Message-ID. */
const expectEvents = (
  logs: ReadonlyArray<H.LogEvent>,
  composed: Message.ComposedMessage,
  expected: ReadonlyArray<ExpectedEvent>,
): void => {
  const events = logs.filter((log) => typeof log.annotations["event"] === "string")
  expect(events.map((log) => log.annotations["event"])).toEqual(expected.map((e) => e.event))
  expected.forEach((e, i) => {
    expect(events[i]!.annotations).toMatchObject({
      event: e.event,
      endpoint: e.endpoint,
      messageId: composed.messageId,
      ...(e.phase === undefined ? {} : { phase: e.phase }),
    })
  })
}

/**
 * Registers the delivery contract's tests for one transport. `makeTransport`
 * is called once per test, so state (pools, connections) never leaks between
 * cases.
 */
export const deliveryContract = (
  name: string,
  makeTransport: () => Transport.TransportShape,
  options: DeliveryContractOptions = {},
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
  const real = async (serverOptions: SmtpTestServerOptions) =>
    track(await startSmtpServer(serverOptions))
  let transport: Transport.TransportShape = undefined as unknown as Transport.TransportShape

  /** A backup on 127.0.0.2 speaking `mode`, with its own certificate, requiring AUTH if asked. */
  const backupServer =
    (mode: Mode, credentials = false) =>
    () =>
      real({
        host: backupHost,
        tls: tlsOf(mode),
        certificate: "backup",
        ...(credentials ? { auth: { ...H.credentials } } : {}),
      })

  /** A scripted primary on 127.0.0.1 and the shared port. */
  const scriptedPrimary =
    (script: ReadonlyArray<Script.Step>, implicitTls?: Script.ImplicitTlsOptions) =>
    (port: number) =>
      scripted({ host: "127.0.0.1", port, script, ...(implicitTls ? { implicitTls } : {}) })

  /** A real primary on 127.0.0.1 and the shared port. */
  const realPrimary = (serverOptions: SmtpTestServerOptions) => (port: number) =>
    real({ host: "127.0.0.1", port, ...serverOptions })

  /** Nothing listens on 127.0.0.1 and the shared port. */
  const closedPrimary = async (port: number) => {
    await H.closedPort("127.0.0.1", port)
    return undefined
  }

  /** The settings of a case: primary and backup on the same port and mode. */
  const settingsFor = (
    primaryHost: string,
    port: number,
    mode: Mode,
    extraSettings: Readonly<Record<string, string>> = {},
  ) =>
    H.settingsOf(
      H.values({ host: primaryHost, port }, mode, {
        mailserverbackup: backupHost,
        ...extraSettings,
      }),
    )

  /** The usual dialogue in NONE mode, ending with the given steps after EHLO. */
  const plainDialogue = (then: ReadonlyArray<Script.Step>) =>
    H.dialogue({ ehlo: ["8BITMIME"], then })

  const accepted = {
    mail: Script.expect(/^MAIL FROM:/i, "250 2.1.0 Ok\r\n"),
    rcpt: Script.expect(/^RCPT TO:/i, "250 2.1.5 Ok\r\n"),
    data: Script.expect(/^DATA$/i, "354 End data with <CR><LF>.<CR><LF>\r\n"),
  }

  const movesToBackup: ReadonlyArray<FailoverRow> = [
    {
      title: "the primary's name does not resolve (DNS)",
      mode: "STARTTLS",
      primaryHost: unresolvable,
      expected: { reason: "DnsFailure", phase: "connect" },
    },
    {
      title: "the primary is unreachable (simulated by the lookup stub)",
      mode: "STARTTLS",
      primaryHost: unreachable,
      expected: { reason: "Unreachable", phase: "connect" },
    },
    {
      title: "the primary refuses the connection",
      mode: "STARTTLS",
      primary: closedPrimary,
      expected: { reason: "ConnectionRefused", phase: "connect" },
    },
    {
      title: "the connection to the primary is not established in time",
      mode: "STARTTLS",
      settings: { mailSmtpConnectionTimeout: "1500", mailSmtpTimeout: "700" },
      primary: (port) => startStalledListener({ host: "127.0.0.1", port }).then(track),
      expected: { reason: "ConnectTimeout", phase: "connect" },
      primaryAtLeastMs: 1_200,
    },
    {
      title: "the primary accepts TCP and never greets",
      mode: "STARTTLS",
      // The greeting is bounded by the connection timeout, not by the shorter command timeout.
      settings: { mailSmtpConnectionTimeout: "1500", mailSmtpTimeout: "700" },
      primary: scriptedPrimary([Script.silent()]),
      expected: { reason: "GreetingTimeout", phase: "greeting" },
      primaryAtLeastMs: 1_200,
    },
    {
      title: "the primary greets with 421",
      mode: "STARTTLS",
      primary: scriptedPrimary([
        Script.send("421 4.3.2 Service not available, closing channel\r\n"),
        Script.close(),
      ]),
      expected: { reason: "GreetingRejected", phase: "greeting", code: 421 },
    },
    {
      title: "the primary greets with 554",
      mode: "STARTTLS",
      primary: scriptedPrimary([
        Script.send("554 5.7.1 No SMTP service for this client\r\n"),
        Script.expect(/^QUIT/i, "221 2.0.0 Bye\r\n"),
        Script.close(),
      ]),
      expected: { reason: "GreetingRejected", phase: "greeting", code: 554 },
    },
    {
      title: "the primary closes the connection before MAIL",
      mode: "STARTTLS",
      primary: scriptedPrimary([Script.send(H.greeting), Script.expect(/^EHLO /i), Script.close()]),
      expected: { reason: "ConnectionLost", phase: "ehlo" },
    },
    {
      title: "the primary ends the TLS handshake",
      mode: "SSL_TLS",
      credentials: true,
      primary: scriptedPrimary([Script.awaitBytes(), Script.close()]),
      expected: { reason: "TlsHandshakeFailed", phase: "tls" },
    },
    {
      title: "the primary accepts no TLS version spoc-mail allows",
      mode: "SSL_TLS",
      credentials: true,
      settings: { cryptographicProtocolsForOutboundCommunication: "TLSv1.2" },
      primary: realPrimary({ tls: "implicit", minVersion: "TLSv1.3" }),
      expected: { reason: "TlsVersionMismatch", phase: "tls" },
    },
    {
      title: "the primary shares no cipher suite",
      mode: "SSL_TLS",
      credentials: true,
      settings: {
        cryptographicProtocolsForOutboundCommunication: "TLSv1.2",
        allowCustomCipherSuitesForOutboundCommunication: "true",
        customCipherSuitesForOutboundCommunication: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
      },
      primary: realPrimary({
        tls: "implicit",
        maxVersion: "TLSv1.2",
        ciphers: "ECDHE-RSA-AES128-GCM-SHA256",
      }),
      expected: { reason: "NoSharedCipher", phase: "tls" },
    },
    {
      title: "the primary's certificate is not trusted",
      mode: "SSL_TLS",
      credentials: true,
      primary: realPrimary({ tls: "implicit", certificate: "self-signed" }),
      expected: { reason: "CertificateUntrusted", phase: "tls" },
    },
    {
      title: "the primary's certificate has expired",
      mode: "SSL_TLS",
      credentials: true,
      primary: realPrimary({ tls: "implicit", certificate: "expired" }),
      expected: { reason: "CertificateExpired", phase: "tls" },
    },
    {
      title: "the primary's certificate is for another host",
      mode: "SSL_TLS",
      credentials: true,
      primary: realPrimary({ tls: "implicit", certificate: "wrong-host" }),
      expected: { reason: "HostnameMismatch", phase: "tls" },
    },
    {
      title: "the primary refuses STARTTLS with 454",
      mode: "STARTTLS",
      credentials: true,
      primary: scriptedPrimary([
        Script.send(H.greeting),
        Script.expect(/^EHLO /i, H.ehloReply(["STARTTLS", "AUTH PLAIN LOGIN"])),
        Script.expect(/^STARTTLS$/i, "454 4.7.0 TLS not available due to temporary reason\r\n"),
      ]),
      expected: { reason: "StartTlsRefused", phase: "starttls", code: 454 },
    },
    {
      title: "the primary accepts STARTTLS, then fails the handshake",
      mode: "STARTTLS",
      credentials: true,
      primary: scriptedPrimary([
        Script.send(H.greeting),
        Script.expect(/^EHLO /i, H.ehloReply(["STARTTLS", "AUTH PLAIN LOGIN"])),
        Script.expect(/^STARTTLS$/i, "220 2.0.0 Ready to start TLS\r\n"),
        Script.awaitBytes(),
        Script.close(),
      ]),
      expected: { reason: "TlsHandshakeFailed", phase: "tls" },
    },
    {
      title: "the primary does not offer STARTTLS under STARTTLS_REQUIRED",
      mode: "STARTTLS_REQUIRED",
      primary: scriptedPrimary(plainDialogue(H.deliverySteps)),
      expected: { reason: "StartTlsNotOffered", phase: "starttls" },
    },
    {
      title: "the primary does not offer AUTH",
      mode: "SSL_TLS",
      credentials: true,
      primary: scriptedPrimary(H.dialogue({ ehlo: ["8BITMIME"] }), {}),
      expected: { reason: "AuthNotOffered", phase: "auth" },
    },
    {
      title: "the primary offers no AUTH mechanism spoc-mail speaks",
      mode: "SSL_TLS",
      credentials: true,
      primary: scriptedPrimary(H.dialogue({ ehlo: ["AUTH GSSAPI NTLM", "8BITMIME"] }), {}),
      expected: { reason: "NoUsableAuthMechanism", phase: "auth" },
    },
    {
      title: "the primary answers MAIL with 451",
      mode: "NONE",
      primary: scriptedPrimary(
        plainDialogue([Script.expect(/^MAIL FROM:/i, "451 4.3.0 Try again later\r\n")]),
      ),
      expected: { reason: "SenderRejected", phase: "mail", code: 451 },
    },
    {
      title: "the primary answers RCPT with 450",
      mode: "NONE",
      primary: scriptedPrimary(
        plainDialogue([
          accepted.mail,
          Script.expect(/^RCPT TO:/i, "450 4.2.1 Mailbox busy, try again later\r\n"),
        ]),
      ),
      expected: { reason: "RecipientsRejected", phase: "rcpt", code: 450 },
    },
    {
      title: "the primary answers DATA with 451",
      mode: "NONE",
      primary: scriptedPrimary(
        plainDialogue([
          accepted.mail,
          accepted.rcpt,
          Script.expect(/^DATA$/i, "451 4.3.0 Queue full, try again later\r\n"),
        ]),
      ),
      expected: { reason: "MessageRejected", phase: "data", code: 451 },
    },
    {
      title: "the primary answers the message with 451",
      mode: "NONE",
      primary: scriptedPrimary(
        plainDialogue([
          accepted.mail,
          accepted.rcpt,
          accepted.data,
          Script.data("451 4.3.0 Temporary failure, try again later\r\n"),
        ]),
      ),
      expected: { reason: "MessageRejected", phase: "message", code: 451 },
    },
  ]

  const cases = (level: H.CaseLogLevel) => () => {
    // Every case at this log level; a secret in anything it shows fails it.
    H.watchSecrets(level)

    beforeEach(() => {
      transport = makeTransport()
    })
    afterEach(async () => {
      await Promise.all(servers.splice(0).map((server) => server.close()))
    })

    describe("moves to the backup", () => {
      for (const row of movesToBackup) {
        it(
          `when ${row.title}: ${row.expected.reason} in ${row.expected.phase}`,
          async () => {
            const primaryHost = row.primaryHost ?? "127.0.0.1"
            const { backup, port } = await H.pair(
              backupServer(row.mode, row.credentials ?? false),
              (shared) => row.primary?.(shared) ?? Promise.resolve(undefined),
            )
            const settings = settingsFor(primaryHost, port, row.mode, {
              ...(row.credentials === true ? credentialSettings : {}),
              ...row.settings,
            })
            const named = net.isIP(primaryHost) === 0

            const lookup = named ? stubLookup(lookupAnswers) : undefined
            const { result, logs, composed, elapsedMs } = await H.sendViaMailer(
              transport,
              settings,
            ).finally(() => lookup?.restore())

            if (lookup !== undefined) expect(lookup.consulted).toContain(primaryHost)

            const receipt = deliveredReceipt(result)
            expect(receipt.endpoint).toEqual({ host: backupHost, port, role: "backup" })
            expect(receipt.messageId).toBe(composed.messageId)
            expect(receipt.authenticated).toBe(row.credentials === true)
            expectAttempts(
              receipt.attempts,
              [
                { host: primaryHost, role: "primary", failure: row.expected },
                { host: backupHost, role: "backup" },
              ],
              { port, transport: transport.name, elapsedMs },
            )
            if (row.primaryAtLeastMs !== undefined) {
              expect(receipt.attempts[0]!.durationMs).toBeGreaterThanOrEqual(row.primaryAtLeastMs)
            }
            expect(backup.messages).toHaveLength(1)
            expect(backup.messages[0]!.secure).toBe(row.mode !== "NONE")
            expectEvents(logs, composed, [
              {
                event: "failover",
                endpoint: endpointText(primaryHost, port),
                phase: row.expected.phase,
              },
              { event: "delivered", endpoint: endpointText(backupHost, port) },
            ])
          },
          timeout(15_000),
        )
      }
    })

    describe("stays with the primary", () => {
      /** Sends with a primary that fails for good and a backup that must see nothing. */
      const staysWithPrimary = async (
        mode: Mode,
        primary: (port: number) => Promise<Closeable | undefined>,
        expected: ExpectedFailure,
        more: {
          readonly credentials?: boolean
          readonly message?: Message.MailMessage
          readonly settings?: Readonly<Record<string, string>>
          readonly outcomeUnknown?: boolean
        } = {},
      ) => {
        const { backup, port } = await H.pair(
          backupServer(mode, more.credentials ?? false),
          primary,
        )
        const settings = settingsFor("127.0.0.1", port, mode, {
          ...(more.credentials === true ? credentialSettings : {}),
          ...more.settings,
        })

        const { result, logs, composed, elapsedMs } = await H.sendViaMailer(
          transport,
          settings,
          more.message,
        )

        const error = deliveryError(result)
        expect({ reason: error.last.reason, phase: error.last.phase }).toEqual({
          reason: expected.reason,
          phase: expected.phase,
        })
        if (expected.code !== undefined) expect(error.last.code).toBe(expected.code)
        expectAttempts(
          error.attempts,
          [{ host: "127.0.0.1", role: "primary", failure: expected }],
          {
            port,
            transport: transport.name,
            elapsedMs,
          },
        )
        expect(error.message).toContain(endpointText("127.0.0.1", port))
        expect(backup.connectionCount).toBe(0)
        const primaryEndpoint = endpointText("127.0.0.1", port)
        expectEvents(logs, composed, [
          ...(more.outcomeUnknown === true
            ? [
                {
                  event: "outcome-unknown" as const,
                  endpoint: primaryEndpoint,
                  phase: expected.phase,
                },
              ]
            : []),
          { event: "failed", endpoint: primaryEndpoint, phase: expected.phase },
        ])
        return error
      }

      it(
        "when the primary rejects the credentials (535): no second try anywhere",
        async () => {
          let primary: Script.ScriptedSmtpServer | undefined
          const error = await staysWithPrimary(
            "SSL_TLS",
            async (port) =>
              (primary = await scriptedPrimary(
                H.dialogue({
                  ehlo: ["AUTH PLAIN LOGIN", "8BITMIME"],
                  then: [
                    Script.expect(/^AUTH /i, "535 5.7.8 Authentication credentials invalid\r\n"),
                  ],
                }),
                {},
              )(port)),
            { reason: "AuthRejected", phase: "auth", code: 535 },
            { credentials: true },
          )
          expect(error.last.serverText).toContain("Authentication credentials invalid")
          expect(primary!.connectionCount).toBe(1)
          expect(primary!.clientLines().filter((l) => /^AUTH /i.test(l))).toHaveLength(1)
        },
        timeout(15_000),
      )

      it(
        "when the primary refuses the sender with 550",
        async () => {
          await staysWithPrimary(
            "NONE",
            scriptedPrimary(
              plainDialogue([Script.expect(/^MAIL FROM:/i, "550 5.7.1 Sender not allowed\r\n")]),
            ),
            { reason: "SenderRejected", phase: "mail", code: 550 },
          )
        },
        timeout(15_000),
      )

      it(
        "when the primary refuses every recipient with 550",
        async () => {
          const error = await staysWithPrimary(
            "NONE",
            scriptedPrimary(
              plainDialogue([
                accepted.mail,
                Script.expect(/^RCPT TO:/i, "550 5.1.1 No such user\r\n"),
                Script.expect(/^RCPT TO:/i, "550 5.1.1 No such user\r\n"),
              ]),
            ),
            { reason: "RecipientsRejected", phase: "rcpt", code: 550 },
            { message: { ...H.message, to: [H.recipient, second] } },
          )
          expect(error.last.serverText).toContain("No such user")
        },
        timeout(15_000),
      )

      it(
        "when the primary refuses DATA with 554",
        async () => {
          await staysWithPrimary(
            "NONE",
            scriptedPrimary(
              plainDialogue([
                accepted.mail,
                accepted.rcpt,
                Script.expect(/^DATA$/i, "554 5.5.1 No valid recipients\r\n"),
              ]),
            ),
            { reason: "MessageRejected", phase: "data", code: 554 },
          )
        },
        timeout(15_000),
      )

      it(
        "when the primary refuses the message with 554",
        async () => {
          let primary: Script.ScriptedSmtpServer | undefined
          await staysWithPrimary(
            "NONE",
            async (port) =>
              (primary = await scriptedPrimary(
                plainDialogue([
                  accepted.mail,
                  accepted.rcpt,
                  accepted.data,
                  Script.data("554 5.6.0 Message content rejected\r\n"),
                ]),
              )(port)),
            { reason: "MessageRejected", phase: "message", code: 554 },
          )
          expect(primary!.dataTransfers).toHaveLength(1)
        },
        timeout(15_000),
      )
    })

    describe("never resends once the final dot was sent", () => {
      for (const [title, after] of [
        ["no reply comes in time", [Script.silent()]],
        ["the connection is lost", [Script.close()]],
      ] as const) {
        it(
          `when ${title}: outcome unknown, the backup sees nothing`,
          async () => {
            let primary: Script.ScriptedSmtpServer | undefined
            const { backup, port } = await H.pair(backupServer("NONE"), async (shared) => {
              primary = await scriptedPrimary(
                plainDialogue([
                  accepted.mail,
                  accepted.rcpt,
                  accepted.data,
                  Script.data(),
                  ...after,
                ]),
              )(shared)
              return primary
            })
            const settings = settingsFor("127.0.0.1", port, "NONE", fastTimeouts)

            const { result, logs, composed, elapsedMs } = await H.sendViaMailer(transport, settings)

            const error = deliveryError(result)
            const expected = { reason: "OutcomeUnknown", phase: "message" } as const
            expectAttempts(
              error.attempts,
              [{ host: "127.0.0.1", role: "primary", failure: expected }],
              { port, transport: transport.name, elapsedMs },
            )
            expect(error.last.hint).toMatch(/resen[dt]/i)
            expect(backup.connectionCount).toBe(0)
            expect(primary!.connectionCount).toBe(1)
            expect(primary!.dataTransfers).toHaveLength(1)
            expect(primary!.clientLines().filter((l) => /^DATA$/i.test(l))).toHaveLength(1)
            const endpoint = endpointText("127.0.0.1", port)
            expectEvents(logs, composed, [
              { event: "outcome-unknown", endpoint, phase: "message" },
              { event: "failed", endpoint, phase: "message" },
            ])
            const unknown = logs.find((l) => l.annotations["event"] === "outcome-unknown")!
            expect(unknown.level).toBe("Error")
          },
          timeout(15_000),
        )
      }
    })

    describe("configuration errors", () => {
      it(
        "settings that do not resolve stop the send before any server is tried",
        async () => {
          const { primary, backup, port } = await H.pair(backupServer("SSL_TLS"), (shared) =>
            scriptedPrimary(H.dialogue({ ehlo: ["8BITMIME"] }), {})(shared),
          )

          const resolution = H.resolve(
            H.values({ host: "127.0.0.1", port }, "SSL_TLS", {
              mailserverbackup: backupHost,
              allowCustomCipherSuitesForOutboundCommunication: "true",
              customCipherSuitesForOutboundCommunication: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA385",
            }),
          )

          expect(resolution.settings).toBeUndefined()
          expect(resolution.problems.map((p) => p.key)).toContain(
            "customCipherSuitesForOutboundCommunication",
          )
          expect(primary.connectionCount).toBe(0)
          expect(backup.connectionCount).toBe(0)
        },
        timeout(15_000),
      )

      it(
        "a line break in the EHLO name is refused before any connection, without the backup",
        async () => {
          const { primary, backup, port } = await H.pair(backupServer("NONE"), (shared) =>
            scriptedPrimary(plainDialogue(H.deliverySteps))(shared),
          )
          const settings = settingsFor("127.0.0.1", port, "NONE")

          const { result, logs, composed, elapsedMs } = await H.sendViaMailer(
            transport,
            settings,
            H.message,
            { clientName: "controller.test\r\nRSET" },
          )

          const error = deliveryError(result)
          expect(error.last.reason).toBe("InvalidArgument")
          expectAttempts(
            error.attempts,
            [
              {
                host: "127.0.0.1",
                role: "primary",
                failure: { reason: "InvalidArgument", phase: "ehlo" },
              },
            ],
            { port, transport: transport.name, elapsedMs },
          )
          expect(primary.connectionCount).toBe(0)
          expect(backup.connectionCount).toBe(0)
          const endpoint = endpointText("127.0.0.1", port)
          expectEvents(logs, composed, [{ event: "failed", endpoint, phase: "ehlo" }])
        },
        timeout(15_000),
      )
    })

    describe("the overall deadline", () => {
      it(
        "stops a primary that is slower than the deadline and reports the attempt it stopped",
        async () => {
          const { primary, backup, port } = await H.pair(backupServer("STARTTLS"), (shared) =>
            scriptedPrimary([Script.delay(10_000), Script.send(H.greeting), Script.silent()])(
              shared,
            ),
          )
          const settings = settingsFor("127.0.0.1", port, "STARTTLS", {
            mailSmtpConnectionTimeout: "20000",
            mailSmtpTimeout: "20000",
          })

          const { result, logs, composed, elapsedMs } = await H.sendViaMailer(
            transport,
            settings,
            H.message,
            { deadlineMs: 1_500 },
          )

          const error = deliveryError(result)
          expect(error.last.reason).toBe("DeadlineExceeded")
          expect(error.last.message).toContain("1500 ms")
          expect(elapsedMs).toBeGreaterThanOrEqual(1_000)
          expect(elapsedMs).toBeLessThan(6_000)
          expect(error.attempts.map((a) => [a.endpoint.role, a.error?.reason])).toEqual([
            ["primary", "DeadlineExceeded"],
          ])
          expect(error.attempts[0]!.durationMs).toBeGreaterThanOrEqual(1_000)
          expect(backup.connectionCount).toBe(0)
          expect(primary.connectionCount).toBe(1)
          const endpoint = endpointText("127.0.0.1", port)
          expectEvents(logs, composed, [{ event: "failed", endpoint }])
        },
        timeout(15_000),
      )

      it(
        "counts the time spent on the primary: the backup is stopped at the deadline too",
        async () => {
          const { backup, port } = await H.pair(
            () =>
              scripted({
                host: backupHost,
                script: [
                  Script.send(H.greeting),
                  Script.expect(/^EHLO /i, H.ehloReply(["8BITMIME"])),
                  Script.silent(),
                ],
              }),
            (shared) => scriptedPrimary([Script.silent()])(shared),
          )
          const settings = settingsFor("127.0.0.1", port, "NONE", {
            mailSmtpConnectionTimeout: "1000",
            mailSmtpTimeout: "20000",
          })

          const { result, logs, composed, elapsedMs } = await H.sendViaMailer(
            transport,
            settings,
            H.message,
            { deadlineMs: 2_500 },
          )

          const error = deliveryError(result)
          expectAttempts(
            error.attempts,
            [
              {
                host: "127.0.0.1",
                role: "primary",
                failure: { reason: "GreetingTimeout", phase: "greeting" },
              },
              {
                host: backupHost,
                role: "backup",
                // The Mailer cannot know how far a stopped attempt got: it names the first phase.
                failure: { reason: "DeadlineExceeded", phase: "connect" },
              },
            ],
            { port, transport: transport.name, elapsedMs },
          )
          expect(elapsedMs).toBeGreaterThanOrEqual(2_000)
          expect(elapsedMs).toBeLessThan(8_000)
          expect(backup.connectionCount).toBe(1)
          expect(error.message).toContain(endpointText("127.0.0.1", port))
          expect(error.message).toContain(endpointText(backupHost, port))
          expectEvents(logs, composed, [
            { event: "failover", endpoint: endpointText("127.0.0.1", port), phase: "greeting" },
            { event: "failed", endpoint: endpointText(backupHost, port) },
          ])
        },
        timeout(20_000),
      )
    })

    describe("events and the transcript", () => {
      it(
        "logs failover, plaintext and delivered once each when the backup has no STARTTLS",
        async () => {
          const { backup, port } = await H.pair(backupServer("NONE"), closedPrimary)
          const settings = settingsFor("127.0.0.1", port, "STARTTLS")

          const { result, logs, composed } = await H.sendViaMailer(transport, settings)

          const receipt = deliveredReceipt(result)
          expect(receipt.tls).toBeUndefined()
          expect(backup.messages).toHaveLength(1)
          expectEvents(logs, composed, [
            {
              event: "failover",
              endpoint: endpointText("127.0.0.1", port),
              phase: "connect",
            },
            { event: "plaintext", endpoint: endpointText(backupHost, port) },
            { event: "delivered", endpoint: endpointText(backupHost, port) },
          ])
          const levels = logs
            .filter((l) => l.annotations["event"] !== undefined)
            .map((l) => [l.annotations["event"], l.level])
          expect(levels).toEqual([
            ["failover", "Warn"],
            ["plaintext", "Warn"],
            ["delivered", "Info"],
          ])
        },
        timeout(15_000),
      )

      it(
        "lists every attempt in the error when the backup fails too",
        async () => {
          const { backup, port } = await H.pair(
            () =>
              real({
                host: backupHost,
                tls: "implicit",
                certificate: "backup",
                auth: { user: H.credentials.user, password: "another password" },
              }),
            (shared) =>
              scriptedPrimary(
                [Script.send("421 4.3.2 Service not available\r\n"), Script.close()],
                {},
              )(shared),
          )
          const settings = settingsFor("127.0.0.1", port, "SSL_TLS", credentialSettings)

          const { result, logs, composed, elapsedMs } = await H.sendViaMailer(transport, settings)

          const error = deliveryError(result)
          expectAttempts(
            error.attempts,
            [
              {
                host: "127.0.0.1",
                role: "primary",
                failure: { reason: "GreetingRejected", phase: "greeting", code: 421 },
              },
              {
                host: backupHost,
                role: "backup",
                failure: { reason: "AuthRejected", phase: "auth", code: 535 },
              },
            ],
            { port, transport: transport.name, elapsedMs },
          )
          expect(error.message).toMatch(/attempt 1 \(primary\)[\s\S]*attempt 2 \(backup\)/)
          expect(backup.authAttempts.map((a) => a.accepted)).toEqual([false])
          expectEvents(logs, composed, [
            { event: "failover", endpoint: endpointText("127.0.0.1", port), phase: "greeting" },
            { event: "failed", endpoint: endpointText(backupHost, port), phase: "auth" },
          ])
        },
        timeout(15_000),
      )

      for (const mechanism of ["PLAIN", "LOGIN"] as const) {
        it(
          `logs the transcript at debug level only, with AUTH ${mechanism} masked`,
          async () => {
            const server = await real({
              tls: "implicit",
              auth: { ...H.credentials },
              authMethods: [mechanism],
            })
            const settings = H.settingsOf(H.values(server, "SSL_TLS", credentialSettings))

            const { result, logs, composed } = await H.sendViaMailer(transport, settings)

            expect(deliveredReceipt(result).authenticated).toBe(true)
            expect(server.authAttempts).toEqual([
              { method: mechanism, user: H.credentials.user, accepted: true },
            ])
            const transcript = logs.filter((l) => /^[CS]: /.test(l.text))
            if (H.currentLogLevel() === "Default") {
              // Effect's default level is Info: no transcript, no debug line at all.
              expect(transcript).toEqual([])
              expect(logs.filter((l) => l.level === "Debug" || l.level === "Trace")).toEqual([])
              return
            }
            expect(transcript.every((l) => l.level === "Debug")).toBe(true)
            for (const line of transcript) {
              expect(line.annotations).toMatchObject({
                endpoint: endpointText(server.host, server.port),
                messageId: composed.messageId,
              })
            }
            const texts = transcript.map((l) => l.text)
            expect(texts).toContainEqual(expect.stringMatching(/^C: EHLO /))
            expect(texts).toContainEqual(expect.stringMatching(/^S: 235[ -]/))
            const client = texts.filter((t) => t.startsWith("C: "))
            const auth = client.findIndex((t) => /^C: AUTH /i.test(t))
            expect(auth).toBeGreaterThanOrEqual(0)
            if (mechanism === "PLAIN") {
              expect(client[auth]).toMatch(/^C: AUTH PLAIN(?: \*+)?$/)
            } else {
              expect(client.slice(auth, auth + 3)).toEqual([
                "C: AUTH LOGIN",
                expect.stringMatching(/^C: \*+$/),
                expect.stringMatching(/^C: \*+$/),
              ])
            }
            expect(client[auth + (mechanism === "PLAIN" ? 1 : 3)]).toMatch(/^C: MAIL FROM:/)
          },
          timeout(15_000),
        )
      }
    })
  }

  for (const level of options.logLevels ?? H.caseLogLevels) {
    describe(`Delivery contract: ${name} (logs at ${level})`, cases(level))
  }
}
