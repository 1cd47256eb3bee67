/**
 * A real SMTP server for tests, built on nodemailer's `smtp-server`: plain
 * text, STARTTLS or TLS from the first byte with a fixture certificate, AUTH
 * PLAIN and LOGIN when credentials are given, a size limit, server-side TLS
 * versions and ciphers, and rejections on demand. It captures every message
 * it accepts with its envelope and the DATA bytes as received (after
 * dot-unstuffing, CRLF line ends untouched).
 *
 * It listens on loopback only (127.0.0.1 by default, or another 127.x
 * address or ::1) and on a port the system picks. It does not speak byte for
 * byte what a test dictates: replies carry smtp-server's own wording and
 * enhanced status codes. For byte-exact or hostile replies use
 * `ScriptedSmtpServer`.
 */
import { isIP } from "node:net"
import type * as tls from "node:tls"
import {
  SMTPServer,
  type SMTPServerOptions,
  type SMTPServerSession,
  type SMTPServerError,
} from "smtp-server"
import { type CertificateChoice, certificate } from "./Fixtures.ts"

/** How the server offers TLS: not at all, STARTTLS, or TLS from the first byte. */
export type TlsMode = "none" | "starttls" | "implicit"

/** An SMTP reply, such as `{ code: 550, text: "no such user" }`. */
export interface Reply {
  readonly code: number
  readonly text: string
}

/** What a hook knows about the session a command arrived on. */
export interface SessionView {
  readonly id: string
  /** The name the client gave with EHLO or HELO. */
  readonly clientName: string | undefined
  /** The authenticated user, when AUTH succeeded. */
  readonly user: string | undefined
  readonly secure: boolean
}

/** Decides the reply to a command: `undefined` accepts it, a reply rejects it. */
export type CommandHook = (
  address: string,
  session: SessionView,
) => Reply | undefined | Promise<Reply | undefined>

export interface SmtpTestServerOptions {
  /** A loopback address: `127.0.0.1` (default), `127.0.0.2`, `::1`. */
  readonly host?: string
  /**
   * Default 0: a free port. Give the port of a server on another loopback
   * address when two must share one (a primary and its backup).
   */
  readonly port?: number
  /** Default `none`. */
  readonly tls?: TlsMode
  /** The certificate presented under STARTTLS or implicit TLS; default the `server` leaf. */
  readonly certificate?: CertificateChoice
  /**
   * When given, AUTH is offered (PLAIN and LOGIN unless `authMethods` says) and
   * required. `accessToken` is what XOAUTH2 accepts; a wrong token gets the
   * JSON error challenge of RFC 7628 3.2.2, then a 535.
   */
  readonly auth?: {
    readonly user: string
    readonly password: string
    readonly accessToken?: string
  }
  /** The mechanisms offered when `auth` is given; default `["PLAIN", "LOGIN"]`. */
  readonly authMethods?: ReadonlyArray<string>
  /**
   * Offer AUTH before STARTTLS. Default: only in `none` mode; under STARTTLS the
   * server offers AUTH after the handshake, as servers should.
   */
  readonly authBeforeTls?: boolean
  /** The SIZE limit in bytes, advertised and enforced. */
  readonly size?: number
  /** Server-side TLS versions and ciphers (OpenSSL names, `:`-separated). */
  readonly minVersion?: tls.SecureVersion
  readonly maxVersion?: tls.SecureVersion
  readonly ciphers?: string
  /** The server's name in the greeting and the EHLO reply; default `smtp.test`. */
  readonly name?: string
  /**
   * A string is banner text after `220 <name> ESMTP`. A reply (4xx or 5xx, its
   * text sent as given, such as `4.3.2 Service not available`) greets with it
   * and closes the connection.
   */
  readonly greeting?: string | Reply
  /** Decides the reply to MAIL FROM; runs after `replies.mail`. */
  readonly onMail?: CommandHook
  /** Decides the reply to each RCPT TO; runs after `replies.rcpt`. */
  readonly onRcpt?: CommandHook
  /** Fixed rejections: every MAIL, every RCPT, or every message after its final dot. */
  readonly replies?: {
    readonly mail?: Reply
    readonly rcpt?: Reply
    readonly message?: Reply
  }
  /**
   * Whether replies carry RFC 3463 enhanced status codes (and EHLO offers
   * ENHANCEDSTATUSCODES); default true. smtp-server picks the enhanced code
   * from the reply code, so give rejection texts without one; a leading
   * enhanced code in `replies`, `onMail` or `onRcpt` texts is dropped when true.
   */
  readonly enhancedStatusCodes?: boolean
}

/** A message the server accepted. */
export interface ReceivedMessage {
  readonly envelope: { readonly from: string; readonly to: ReadonlyArray<string> }
  /** The DATA bytes as received, after dot-unstuffing, without the final `.` line. */
  readonly raw: Buffer
  /** The user that authenticated on this session, if any. */
  readonly user: string | undefined
  /** Whether the session was encrypted when the message arrived. */
  readonly secure: boolean
  /** `TLSv1.3`, `TLSv1.2`, ... when secure. */
  readonly tlsProtocol: string | undefined
  /** The negotiated cipher's standard (IANA) name, when secure. */
  readonly cipher: string | undefined
  /** The server name the client sent with SNI (never for IP hosts). */
  readonly servername: string | undefined
  /** The name the client gave with EHLO or HELO. */
  readonly clientName: string | undefined
}

/** One AUTH exchange; the password is never recorded. */
export interface AuthAttempt {
  readonly method: string
  readonly user: string | undefined
  readonly accepted: boolean
}

export interface SmtpTestServer {
  readonly host: string
  readonly port: number
  readonly tls: TlsMode
  /** Accepted messages, in order of arrival; grows while the server runs. */
  readonly messages: ReadonlyArray<ReceivedMessage>
  /** Every AUTH exchange, in order. */
  readonly authAttempts: ReadonlyArray<AuthAttempt>
  /** How many TCP connections the server has accepted. */
  readonly connectionCount: number
  /** Errors of client connections (failed handshakes, resets), for diagnosis. */
  readonly errors: ReadonlyArray<Error>
  /** Stops listening and closes every connection. Safe to call more than once. */
  readonly close: () => Promise<void>
}

/** Bad options for a test server; says which option and how to fix it. */
export class SmtpTestServerError extends Error {
  override readonly name = "SmtpTestServerError"
}

const enhancedCode = /^[245]\.\d{1,3}\.\d{1,3}\s+/

const isLoopback = (host: string): boolean =>
  (isIP(host) === 4 && host.startsWith("127.")) || host === "::1"

const viewOf = (session: SMTPServerSession): SessionView => ({
  id: session.id,
  clientName: session.hostNameAppearsAs || undefined,
  user: typeof session.user === "string" ? session.user : undefined,
  secure: session.secure,
})

/** Starts a test SMTP server on a loopback address and a free port. */
export const startSmtpServer = async (
  options: SmtpTestServerOptions = {},
): Promise<SmtpTestServer> => {
  const host = options.host ?? "127.0.0.1"
  if (!isLoopback(host)) {
    throw new SmtpTestServerError(
      `startSmtpServer: host "${host}" is not a loopback address; use 127.0.0.1, 127.0.0.2 or ::1`,
    )
  }
  const mode = options.tls ?? "none"
  const useEnhanced = options.enhancedStatusCodes ?? true

  const messages: Array<ReceivedMessage> = []
  const authAttempts: Array<AuthAttempt> = []
  const errors: Array<Error> = []
  const tlsSessions = new Map<string, { protocol: string | undefined; cipher: string }>()
  let connectionCount = 0

  /** An smtp-server error for a reply; `verbatim` for replies it sends without an enhanced code. */
  const rejection = (reply: Reply, verbatim = false): SMTPServerError => {
    const text = useEnhanced && !verbatim ? reply.text.replace(enhancedCode, "") : reply.text
    const error: SMTPServerError = new Error(text)
    error.responseCode = reply.code
    return error
  }

  const decide = (
    fixed: Reply | undefined,
    hook: CommandHook | undefined,
    address: string,
    session: SMTPServerSession,
    callback: (err?: Error | null) => void,
  ): void => {
    if (fixed !== undefined) return callback(rejection(fixed))
    if (hook === undefined) return callback()
    Promise.resolve(hook(address, viewOf(session))).then(
      (reply) => callback(reply === undefined ? null : rejection(reply)),
      (cause: unknown) => callback(rejection({ code: 451, text: `hook failed: ${String(cause)}` })),
    )
  }

  const greeting = options.greeting
  const keyPair = mode === "none" ? undefined : certificate(options.certificate ?? "server")
  const disabled = [
    ...(mode === "starttls" ? [] : ["STARTTLS"]),
    ...(options.auth === undefined ? ["AUTH"] : []),
  ]

  const serverOptions: SMTPServerOptions = {
    secure: mode === "implicit",
    ...(keyPair === undefined ? {} : { key: keyPair.key, cert: keyPair.cert }),
    ...(options.minVersion === undefined ? {} : { minVersion: options.minVersion }),
    ...(options.maxVersion === undefined ? {} : { maxVersion: options.maxVersion }),
    ...(options.ciphers === undefined ? {} : { ciphers: options.ciphers }),
    name: options.name ?? "smtp.test",
    ...(typeof greeting === "string" ? { banner: greeting } : {}),
    ...(options.size === undefined ? {} : { size: options.size }),
    disabledCommands: disabled,
    authMethods: [...(options.authMethods ?? ["PLAIN", "LOGIN"])],
    authOptional: options.auth === undefined,
    allowInsecureAuth: options.authBeforeTls ?? mode === "none",
    hideENHANCEDSTATUSCODES: !useEnhanced,
    disableReverseLookup: true,
    logger: false,
    closeTimeout: 50,
    socketTimeout: 60_000,

    onConnect(_session, callback) {
      connectionCount += 1
      if (greeting !== undefined && typeof greeting !== "string") {
        return callback(rejection(greeting, true))
      }
      callback()
    },

    onSecure(socket, session, callback) {
      const tlsSocket = socket as tls.TLSSocket
      const cipher = tlsSocket.getCipher?.()
      tlsSessions.set(session.id, {
        protocol: tlsSocket.getProtocol?.() ?? undefined,
        cipher: cipher?.standardName ?? cipher?.name ?? "",
      })
      callback()
    },

    onAuth(auth, _session, callback) {
      const expected = options.auth
      const secretMatches =
        auth.method === "XOAUTH2"
          ? expected?.accessToken !== undefined && auth.accessToken === expected.accessToken
          : auth.password === expected?.password
      const accepted = expected !== undefined && auth.username === expected.user && secretMatches
      authAttempts.push({ method: auth.method, user: auth.username, accepted })
      if (!accepted && auth.method === "XOAUTH2") {
        return callback(null, { data: { status: "401", schemes: "bearer", scope: "smtp" } })
      }
      if (!accepted) {
        const error: SMTPServerError = new Error("Authentication credentials invalid")
        error.responseCode = 535
        return callback(error)
      }
      callback(null, { user: auth.username })
    },

    onMailFrom(address, session, callback) {
      decide(options.replies?.mail, options.onMail, address.address, session, callback)
    },

    onRcptTo(address, session, callback) {
      decide(options.replies?.rcpt, options.onRcpt, address.address, session, callback)
    },

    onData(stream, session, callback) {
      const chunks: Array<Buffer> = []
      stream.on("data", (chunk: Buffer) => chunks.push(chunk))
      stream.on("end", () => {
        if (stream.sizeExceeded) return callback(rejection({ code: 552, text: "too big" }))
        const reject = options.replies?.message
        if (reject !== undefined) return callback(rejection(reject))
        const tlsSession = tlsSessions.get(session.id)
        const mailFrom = session.envelope.mailFrom
        messages.push({
          envelope: {
            from: mailFrom === false ? "" : mailFrom.address,
            to: session.envelope.rcptTo.map((r) => r.address),
          },
          raw: Buffer.concat(chunks),
          user: typeof session.user === "string" ? session.user : undefined,
          secure: session.secure,
          tlsProtocol: session.secure ? tlsSession?.protocol : undefined,
          cipher: session.secure ? tlsSession?.cipher : undefined,
          servername: typeof session.servername === "string" ? session.servername : undefined,
          clientName: session.hostNameAppearsAs || undefined,
        })
        callback(null, `OK: queued as ${messages.length}`)
      })
    },
  }

  const server = new SMTPServer(serverOptions)
  server.on("error", (error: Error) => errors.push(error))

  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error) => reject(error)
    server.server.once("error", onError)
    server.listen(options.port ?? 0, host, () => {
      server.server.off("error", onError)
      resolve()
    })
  })
  const address = server.server.address()
  if (address === null || typeof address === "string") {
    throw new SmtpTestServerError("startSmtpServer: the server has no TCP address")
  }

  let closing: Promise<void> | undefined
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve())
      // Connections would otherwise linger until the client quits; a test server
      // ends them at once.
      for (const connection of server.connections) {
        const socket = (connection as unknown as { _socket?: { destroy(): void } })._socket
        socket?.destroy()
      }
    })
    return closing
  }

  return {
    host,
    port: address.port,
    tls: mode,
    messages,
    authAttempts,
    get connectionCount() {
      return connectionCount
    },
    errors,
    close,
  }
}
