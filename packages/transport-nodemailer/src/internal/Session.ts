/**
 * One SMTP session on nodemailer's `SMTPConnection`, kept on a short leash:
 * the steps (connect, login, send, quit) as Effects, a transcript with AUTH
 * arguments masked, the phase the dialogue is in, and a deadline for every
 * reply that a server dripping bytes cannot extend (nodemailer only has an
 * inactivity timeout once the session is set up).
 *
 * The session never decides policy (which mode, whether AUTH may be sent):
 * `NodemailerTransport` does, from what the session saw. A session is used
 * for one message and closed; a session that failed is never reused. It
 * connects to an address the transport has resolved (`EndpointAddress.ts`),
 * never to a name, which nodemailer would resolve with the DNS server itself.
 *
 * It relies on two internals of nodemailer 10's SMTPConnection, read only:
 * `_ehloLines` (the lines of the EHLO reply that counts, after STARTTLS the
 * second one) and `_socket` (the TLS socket, for the receipt). The
 * transcript comes from nodemailer's `transactionLog`, whose lines this
 * module masks again itself: no AUTH argument is ever kept.
 */
import * as net from "node:net"
import type { Readable } from "node:stream"
import type * as tls from "node:tls"
import { Transport, type TransportError } from "@spoc-mail/core"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import SMTPConnection, {
  type SentMessageInfo,
  type SMTPError,
} from "nodemailer/lib/smtp-connection"

/** One line of the dialogue: `C` sent by spoc-mail, `S` by the server. */
export interface TranscriptLine {
  readonly from: "C" | "S"
  readonly text: string
}

/** What the session knew when a step failed. */
type ConnectionPolicy = Transport.ConnectionPolicy
type Phase = TransportError.Phase

export interface SessionFailure {
  /** nodemailer's error, or the session's own for a reply deadline. */
  readonly error: SMTPError
  readonly phase: Phase
  /** The whole message and its final dot were handed to the socket. */
  readonly dotSent: boolean
  /** The TCP connection was up (tells a TLS stall from a connect timeout). */
  readonly tcpConnected: boolean
}

/** The largest reply accepted; real replies are a few hundred bytes. */
const maxReplyBytes = 64 * 1024

/** How long QUIT may take before the connection is simply closed. */
const quitGraceMs = 2_000

const masked = "****"

interface ConnectionInternals {
  readonly _ehloLines?: ReadonlyArray<string>
}

/** `AUTH PLAIN AGFsaWNl...` becomes `AUTH PLAIN ****`; `AUTH LOGIN` stays. */
export const maskAuthCommand = (command: string): string => {
  const match = /^(AUTH\s+\S+)(\s+.*)?$/is.exec(command)
  if (match === null) return `AUTH ${masked}`
  return match[2] === undefined ? match[1]! : `${match[1]} ${masked}`
}

const phaseOfVerb: Readonly<Record<string, Phase>> = {
  EHLO: "ehlo",
  HELO: "ehlo",
  STARTTLS: "starttls",
  AUTH: "auth",
  MAIL: "mail",
  RCPT: "rcpt",
  DATA: "data",
}

/**
 * The policy's TLS options with the address to connect to: nodemailer copies
 * them over its own connection options, so a `host` naming the server would
 * make it resolve the name again. The server name stays the endpoint's host
 * (none for an IP, RFC 6066 section 3), and the policy's `checkServerIdentity`
 * verifies against that host, not against the address.
 */
const tlsFor = (policy: ConnectionPolicy, address: string): tls.ConnectionOptions => {
  const host = policy.endpoint.host
  const servername = policy.tls.servername ?? (net.isIP(host) === 0 ? host : undefined)
  return { ...policy.tls, host: address, ...(servername === undefined ? {} : { servername }) }
}

/** The name `login` takes for spoc-mail's XOAUTH2; the command sent is `AUTH XOAUTH2`. */
const xoauth2Method = "SPOC-XOAUTH2"

type AuthContext = Parameters<
  NonNullable<NonNullable<SMTPConnection.Options["customAuth"]>[string]>
>[0]

/**
 * AUTH XOAUTH2 with the user and the access token (nodemailer hands the
 * token over as the password), encoded by core's `xoauth2Response`. A 334 is
 * the server's error challenge; its final reply, after the empty answer, is
 * the rejection nodemailer reports.
 */
const xoauth2 = async (context: AuthContext): Promise<void> => {
  const { user, pass } = context.auth.credentials
  const response = Transport.xoauth2Response({ user, accessToken: Redacted.make(pass) })
  // The transport refused such a user or token before connecting; this is a guard.
  if (response === undefined) throw new Error("the user or token holds a control character")
  const answer = await context.sendCommand(`AUTH XOAUTH2 ${Redacted.value(response)}`)
  if (answer.status === 235) return
  if (answer.status === 334) {
    const final = await context.sendCommand("")
    throw new Error(`Invalid login: ${final.response}`)
  }
  throw new Error(`Invalid login: ${answer.response}`)
}

export class Session {
  readonly connection: SMTPConnection
  readonly transcript: Array<TranscriptLine> = []

  private phase: Phase = "greeting"
  private inAuth = false
  private awaitedReplies = 0
  private replyDeadline: ReturnType<typeof setTimeout> | undefined
  private dotSent = false
  private failure: SessionFailure | undefined

  /**
   * `target` is where to connect: the endpoint's address, already resolved
   * (nodemailer must not resolve the name itself, see `EndpointAddress.ts`),
   * and what is left of the connection timeout after the lookup.
   */
  constructor(
    private readonly policy: ConnectionPolicy,
    target: { readonly address: string; readonly connectionTimeoutMs: number },
  ) {
    const record = {
      debug: (entry: { tnx?: string } | undefined, message: unknown) => {
        if (entry?.tnx === "client") this.onCommand(String(message))
        else if (entry?.tnx === "server") this.onReply(String(message))
      },
      trace: () => undefined,
      info: () => undefined,
      warn: () => undefined,
      error: () => undefined,
      fatal: () => undefined,
    }
    this.connection = new SMTPConnection({
      host: target.address,
      port: policy.endpoint.port,
      name: policy.clientName,
      secure: policy.mode === "SSL_TLS",
      // NONE never sends STARTTLS. STARTTLS and STARTTLS_REQUIRED use nodemailer's
      // default: upgrade when offered, fail when the upgrade is refused or fails
      // (no opportunisticTLS). requireTLS is not used: it sends STARTTLS even when
      // it was not offered; the transport refuses that case itself, before MAIL.
      ignoreTLS: policy.mode === "NONE",
      requireTLS: false,
      opportunisticTLS: false,
      tls: tlsFor(policy, target.address),
      connectionTimeout: target.connectionTimeoutMs,
      greetingTimeout: target.connectionTimeoutMs,
      // While the session is set up, the connection timeout rules (nodemailer's phase
      // timers); its inactivity timer must not cut the greeting short, so it starts
      // longer and becomes the command timeout once the session is set up.
      socketTimeout: policy.connectionTimeoutMs + policy.commandTimeoutMs,
      socketCloseTimeout: 1_000,
      maxResponseSize: maxReplyBytes,
      logger: record,
      transactionLog: true,
      debug: false,
      // nodemailer's own XOAUTH2 answers a refused token by sending it again; this one
      // sends it once, answers the error challenge with an empty line and gives up. Its
      // own name keeps nodemailer from swapping it for another mechanism it prefers.
      customAuth: { [xoauth2Method]: xoauth2 },
    })
    // Every failure reaches the step that waits for it; without a listener an
    // 'error' event between steps would throw.
    this.connection.on("error", () => undefined)
    this.connection.on("end", () => this.stopReplyDeadline())
  }

  /** Connects, reads the greeting, says EHLO and upgrades with STARTTLS when the mode says so. */
  readonly connect: Effect.Effect<void, SessionFailure> = Effect.suspend(() =>
    this.step<void>((done) => this.connection.connect((error) => done(error ?? null))),
  ).pipe(
    Effect.tap(() =>
      Effect.sync(() => this.openSocket()?.setTimeout(this.policy.commandTimeoutMs)),
    ),
  )

  /** Authenticates with the given mechanism. */
  login(mechanism: string, user: string, password: string): Effect.Effect<void, SessionFailure> {
    return this.step<void>((done) =>
      this.connection.login(
        { method: mechanism === "XOAUTH2" ? xoauth2Method : mechanism, user, pass: password },
        (error) => done(error),
      ),
    )
  }

  /** Sends the envelope and streams the message; nodemailer dot-stuffs and ends the data. */
  send(
    envelope: { readonly from: string; readonly to: ReadonlyArray<string> },
    message: Readable,
  ): Effect.Effect<SentMessageInfo, SessionFailure> {
    return this.step<SentMessageInfo>((done) => {
      // Once the source has ended, DataStream writes the final dot: from here on
      // a lost reply means the outcome is unknown.
      message.once("end", () => {
        this.dotSent = true
        this.awaitedReplies += 1
        this.armReplyDeadline()
      })
      this.connection.send({ from: envelope.from, to: [...envelope.to] }, message, done)
    })
  }

  /** Sends QUIT when the connection is still open; closes it after a short grace. */
  readonly quit: Effect.Effect<void> = Effect.callback<void>((resume) => {
    // No socket to say QUIT on (the name did not resolve, the connect failed): just close.
    if (this.connection.destroyed || this.openSocket() === undefined) {
      this.connection.close()
      return resume(Effect.void)
    }
    const grace = setTimeout(
      () => this.connection.close(),
      Math.min(this.policy.commandTimeoutMs, quitGraceMs),
    )
    this.connection.once("end", () => {
      clearTimeout(grace)
      resume(Effect.void)
    })
    this.connection.quit()
    return Effect.sync(() => clearTimeout(grace))
  })

  /** Closes the connection at once. Safe to call more than once. */
  close(): void {
    this.stopReplyDeadline()
    this.connection.close()
  }

  /** The lines of the EHLO reply that counts, without codes and without the first line. */
  get ehloLines(): ReadonlyArray<string> | undefined {
    return (this.connection as unknown as ConnectionInternals)._ehloLines
  }

  /** The TLS socket when the session is encrypted. */
  get tlsSocket(): tls.TLSSocket | undefined {
    const socket = this.connection._socket
    return this.connection.secure && socket ? (socket as tls.TLSSocket) : undefined
  }

  /** The last command sent whose verb is `verb` (AUTH arguments masked). */
  lastCommand(verb?: string): string | undefined {
    for (let i = this.transcript.length - 1; i >= 0; i--) {
      const line = this.transcript[i]!
      if (line.from !== "C") continue
      if (verb === undefined || line.text.toUpperCase().startsWith(verb.toUpperCase())) {
        return line.text
      }
    }
    return undefined
  }

  /** Where the dialogue is: before the greeting, `connect` or (SSL_TLS) `tls`. */
  currentPhase(): Phase {
    if (this.connection.stage !== "init") return this.phase
    return this.policy.mode === "SSL_TLS" && this.tcpConnected() ? "tls" : "connect"
  }

  /** The socket nodemailer talks on, when there is one still open for writing. */
  private openSocket(): net.Socket | undefined {
    const socket = this.connection._socket as net.Socket | false | null | undefined
    return socket && typeof socket.write === "function" && !socket.destroyed && socket.writable
      ? socket
      : undefined
  }

  private tcpConnected(): boolean {
    const socket = this.connection._socket as net.Socket | false | null
    return socket ? !socket.connecting && !socket.destroyed : false
  }

  /**
   * Runs one nodemailer call. It ends with the call's callback, or with the
   * first 'error' the connection emits, or when the connection ends under it
   * (a reply deadline closed it, or the server went away unnoticed).
   */
  private step<A>(
    start: (done: (error: SMTPError | null | undefined, value?: A) => void) => void,
  ): Effect.Effect<A, SessionFailure> {
    return Effect.callback<A, SessionFailure>((resume) => {
      let settled = false
      const finish = (outcome: Effect.Effect<A, SessionFailure>) => {
        if (settled) return
        settled = true
        this.connection.off("error", onError)
        this.connection.off("end", onEnd)
        resume(outcome)
      }
      const onError = (error: SMTPError) => finish(Effect.fail(this.failed(error)))
      const onEnd = () =>
        finish(
          Effect.fail(
            this.failure ??
              this.failed(
                Object.assign(new Error("Connection closed unexpectedly"), {
                  code: "ECONNECTION",
                  command: "CONN",
                }),
              ),
          ),
        )

      // A session that failed is never used again.
      if (this.failure !== undefined) return finish(Effect.fail(this.failure))
      this.connection.on("error", onError)
      this.connection.once("end", onEnd)
      start((error, value) => (error ? onError(error) : finish(Effect.succeed(value as A))))
      return Effect.sync(() => {
        settled = true
        this.connection.off("error", onError)
        this.connection.off("end", onEnd)
      })
    })
  }

  /**
   * Takes note of what the session knew when it failed. The first failure
   * wins: what follows it (the close, a late callback) is its consequence.
   */
  private failed(error: SMTPError): SessionFailure {
    this.failure ??= {
      error,
      phase: this.currentPhase(),
      dotSent: this.dotSent,
      tcpConnected: this.tcpConnected(),
    }
    return this.failure
  }

  private onCommand(text: string): void {
    const verb = (text.split(" ", 1)[0] ?? "").toUpperCase()
    let shown = text
    if (this.inAuth) {
      shown = masked
    } else if (verb === "AUTH") {
      this.inAuth = true
      shown = maskAuthCommand(text)
    }
    const phase = this.inAuth ? "auth" : phaseOfVerb[verb]
    if (phase !== undefined) this.phase = phase
    this.transcript.push({ from: "C", text: shown })
    this.awaitedReplies += 1
    this.armReplyDeadline()
  }

  private onReply(text: string): void {
    for (const line of text.split(/\r?\n/)) this.transcript.push({ from: "S", text: line })
    this.awaitedReplies = Math.max(0, this.awaitedReplies - 1)
    if (this.inAuth && !text.startsWith("334")) this.inAuth = false
    if (this.phase === "starttls" && text.startsWith("220")) this.phase = "tls"
    if (this.phase === "data" && text.startsWith("354")) this.phase = "message"
    if (this.awaitedReplies > 0) this.armReplyDeadline()
    else this.stopReplyDeadline()
  }

  /**
   * Each reply must arrive within the command timeout of the command (or the
   * reply) before it; bytes that trickle in do not extend it. The greeting and
   * the TLS handshakes are bounded by nodemailer's own connection timers.
   */
  private armReplyDeadline(): void {
    this.stopReplyDeadline()
    if (this.connection.destroyed) return
    const ms = this.policy.commandTimeoutMs
    this.replyDeadline = setTimeout(() => {
      this.replyDeadline = undefined
      this.failed(
        Object.assign(new Error(`No complete reply within ${ms} ms`), {
          code: "ETIMEDOUT",
          timeoutType: "SOCKET_TIMEOUT" as const,
          command: "CONN",
        }),
      )
      this.connection.close()
    }, ms)
  }

  private stopReplyDeadline(): void {
    if (this.replyDeadline !== undefined) clearTimeout(this.replyDeadline)
    this.replyDeadline = undefined
  }
}
