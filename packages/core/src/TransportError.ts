/**
 * The one error type of a send attempt. Its `reason` says what went wrong in
 * words both transports share, so the delivery policy, the CLI's exit codes
 * and the tests do not care which transport failed. Every SMTP failure keeps
 * the phase, the command, the reply code, the enhanced status code and the
 * server's own text, and carries a hint on how to fix it when one is known.
 *
 * The message never contains a secret: transports build it from replies and
 * commands whose AUTH arguments are already masked.
 */
import * as Data from "effect/Data"

/** Where in the SMTP dialogue the failure happened. */
export type Phase =
  | "connect"
  | "greeting"
  | "ehlo"
  | "starttls"
  | "tls"
  | "auth"
  | "mail"
  | "rcpt"
  | "data"
  | "message"
  | "config"

export type TransportFailure =
  // Reaching the server.
  | "DnsFailure"
  | "ConnectionRefused"
  | "Unreachable"
  | "ConnectTimeout"
  | "GreetingTimeout"
  | "GreetingRejected"
  | "ConnectionLost"
  // TLS.
  | "PlaintextWhereTlsExpected"
  | "TlsHandshakeFailed"
  | "TlsVersionMismatch"
  | "NoSharedCipher"
  | "CertificateUntrusted"
  | "CertificateExpired"
  | "HostnameMismatch"
  | "WeakParameters"
  | "StartTlsRefused"
  | "StartTlsNotOffered"
  | "CleartextCredentials"
  // Authentication.
  | "AuthNotOffered"
  | "NoUsableAuthMechanism"
  | "AuthRejected"
  | "TokenUnavailable"
  // The envelope and the message.
  | "SenderRejected"
  | "RecipientsRejected"
  | "MessageRejected"
  | "MessageTooLarge"
  | "SmtpUtf8Unsupported"
  | "CommandTimeout"
  | "OutcomeUnknown"
  | "ProtocolViolation"
  | "InvalidArgument"
  | "DeadlineExceeded"

export interface Endpoint {
  readonly host: string
  readonly port: number
  readonly role: "primary" | "backup"
}

export const formatEndpoint = (endpoint: Endpoint): string =>
  endpoint.host.includes(":")
    ? `[${endpoint.host}]:${endpoint.port}`
    : `${endpoint.host}:${endpoint.port}`

export class TransportError extends Data.TaggedError("TransportError")<{
  readonly reason: TransportFailure
  readonly phase: Phase
  readonly endpoint: Endpoint
  /** What went wrong, in one sentence, without the hint. */
  readonly detail: string
  /** The command that failed, AUTH arguments masked: `MAIL FROM:<a@b>`, `STARTTLS`. */
  readonly command?: string
  readonly code?: number
  /** RFC 3463 enhanced status code, such as `5.7.8`. */
  readonly enhancedCode?: string
  /** The server's own words, all lines of the reply joined by newlines. */
  readonly serverText?: string
  /** How to fix it, when we know. */
  readonly hint?: string
  readonly cause?: unknown
}> {
  override get message(): string {
    const reply =
      this.code === undefined
        ? ""
        : ` Server said: ${this.code}${this.enhancedCode ? ` ${this.enhancedCode}` : ""}` +
          (this.serverText ? ` ${this.serverText.replace(/\n/g, " / ")}` : "")
    const command = this.command === undefined ? "" : ` after ${this.command}`
    const hint = this.hint === undefined ? "" : ` Hint: ${this.hint}`
    return (
      `${this.detail} (${formatEndpoint(this.endpoint)}, ${this.phase}${command}).` +
      `${reply}${hint}`
    )
  }

  /** 4xx replies are temporary; 5xx permanent. */
  get transient(): boolean {
    return this.code !== undefined && this.code >= 400 && this.code < 500
  }
}

/** Splits `5.7.8 Authentication failed` into the enhanced code and the rest. */
export const splitEnhancedCode = (
  text: string,
): { readonly enhancedCode: string | undefined; readonly text: string } => {
  const match = /^([245]\.\d{1,3}\.\d{1,3})\s+(.*)$/s.exec(text)
  return match === null
    ? { enhancedCode: undefined, text }
    : { enhancedCode: match[1], text: match[2]! }
}
