/**
 * The Transport contract: send one composed message to one endpoint under one
 * connection policy, and return a receipt or a `TransportError`. Transports
 * (nodemailer, raw) implement it; the Mailer decides which endpoints to try.
 *
 * A transport must honour the policy exactly: NONE never sends STARTTLS,
 * SSL_TLS is TLS from the first byte, STARTTLS never continues in plain text
 * after an offered STARTTLS failed and never sends credentials in clear,
 * STARTTLS_REQUIRED fails when STARTTLS is not offered. Certificate checks are
 * always on; the TLS options come from the TlsPolicy and may not be loosened.
 */
import type * as tls from "node:tls"
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type { ComposedMessage } from "./Message.ts"
import type { EncryptionMode } from "./Settings.ts"
import type { Endpoint, TransportError } from "./TransportError.ts"

/**
 * How a transport logs in: with a password (AUTH PLAIN, else LOGIN) or with
 * an OAuth 2.0 access token (AUTH XOAUTH2). Either is sent only where the
 * server offers a mechanism for it, and never in clear unless the mode is NONE.
 */
export type Credentials = PasswordCredentials | TokenCredentials

export interface PasswordCredentials {
  readonly user: string
  readonly password: Redacted.Redacted<string>
}

export interface TokenCredentials {
  readonly user: string
  readonly accessToken: Redacted.Redacted<string>
}

/** True when the credentials are an access token, for XOAUTH2. */
export const isToken = (credentials: Credentials): credentials is TokenCredentials =>
  "accessToken" in credentials

/** The secret of either kind of credentials. */
export const secretOf = (credentials: Credentials): Redacted.Redacted<string> =>
  isToken(credentials) ? credentials.accessToken : credentials.password

/** The AUTH mechanisms a transport may use, by preference: XOAUTH2 for a token only. */
export const mechanismsFor = (credentials: Credentials): ReadonlyArray<string> =>
  isToken(credentials) ? ["XOAUTH2"] : ["PLAIN", "LOGIN"]

/**
 * The initial response of AUTH XOAUTH2 (Google's and Microsoft's SASL
 * XOAUTH2): the base64 of `user=USER ^A auth=Bearer TOKEN ^A ^A`, as a
 * secret. `undefined` when the user or token holds 0x01, CR, LF or NUL,
 * which would move the fields or end the command.
 */
export const xoauth2Response = (
  credentials: TokenCredentials,
): Redacted.Redacted<string> | undefined => {
  const token = Redacted.value(credentials.accessToken)
  if (/[\x00\x01\r\n]/.test(credentials.user + token)) return undefined
  const fields = `user=${credentials.user}\u0001auth=Bearer ${token}\u0001\u0001`
  return Redacted.make(Buffer.from(fields, "utf8").toString("base64"))
}

/** Everything a transport needs to know about how to talk to one endpoint. */
export interface ConnectionPolicy {
  readonly endpoint: Endpoint
  readonly mode: EncryptionMode
  /**
   * Node TLS options for this endpoint from the TlsPolicy: trust, versions,
   * ciphers, server name. Transports pass them on unchanged.
   */
  readonly tls: tls.ConnectionOptions
  /** How to log in; `undefined` sends no AUTH. */
  readonly credentials: Credentials | undefined
  /** Connect, greeting and TLS handshake, together. */
  readonly connectionTimeoutMs: number
  /** Each later command and reply, and the DATA transfer. */
  readonly commandTimeoutMs: number
  /** The name sent with EHLO/HELO. */
  readonly clientName: string
}

/** What the peer's certificate said, for receipts and `trust fetch`. */
export interface PeerCertificate {
  readonly subject: string
  readonly issuer: string
  readonly validFrom: string
  readonly validTo: string
  /** SHA-256 fingerprint, colon-separated upper-case hex. */
  readonly fingerprint256: string
  readonly subjectAltNames: string | undefined
}

export interface TlsSession {
  /** `TLSv1.3`, `TLSv1.2`, ... */
  readonly protocol: string
  /** The negotiated cipher suite, by its IANA/standard name. */
  readonly cipher: string
  readonly peer: PeerCertificate | undefined
  /** How TLS was started. */
  readonly via: "SSL_TLS" | "STARTTLS"
}

export interface Receipt {
  readonly endpoint: Endpoint
  readonly transport: string
  readonly messageId: string
  readonly accepted: ReadonlyArray<string>
  readonly rejected: ReadonlyArray<{ readonly address: string; readonly reply: string }>
  /** The server's final reply to the message, such as `250 2.0.0 Ok: queued as 1234`. */
  readonly response: string
  /** `undefined` when the message went in plain text. */
  readonly tls: TlsSession | undefined
  readonly authenticated: boolean
  readonly durationMs: number
}

export interface TransportShape {
  /** A short name for receipts and logs: `nodemailer`, `raw`. */
  readonly name: string
  readonly send: (
    message: ComposedMessage,
    policy: ConnectionPolicy,
  ) => Effect.Effect<Receipt, TransportError>
}

export class Transport extends Context.Service<Transport, TransportShape>()(
  "@spoc-mail/core/Transport",
) {}

/** Reads what receipts report from a connected TLS socket. */
export const describeTlsSocket = (socket: tls.TLSSocket, via: TlsSession["via"]): TlsSession => {
  const cipher = socket.getCipher()
  const peer = socket.getPeerCertificate(false)
  return {
    protocol: socket.getProtocol() ?? "unknown",
    cipher: cipher.standardName ?? cipher.name,
    via,
    peer:
      peer === null || Object.keys(peer).length === 0
        ? undefined
        : {
            subject: formatName(peer.subject),
            issuer: formatName(peer.issuer),
            validFrom: new Date(peer.valid_from).toISOString(),
            validTo: new Date(peer.valid_to).toISOString(),
            fingerprint256: peer.fingerprint256,
            subjectAltNames: peer.subjectaltname,
          },
  }
}

const formatName = (name: tls.Certificate | undefined): string =>
  name === undefined
    ? ""
    : Object.entries(name)
        .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join("+") : String(v)}`)
        .join(", ")
