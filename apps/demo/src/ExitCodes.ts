/**
 * Exit codes of the `spoc-mail` command: each says which stage failed, so a
 * script (or a monitoring check) can tell a wrong password from a dead
 * server without reading the text. Documented in the app's README.
 */
import type { TransportError } from "@spoc-mail/core"

type Phase = TransportError.Phase
type TransportFailure = TransportError.TransportFailure

export const exitCodes = {
  ok: 0,
  unexpected: 1,
  usage: 2,
  config: 3,
  connect: 4,
  greeting: 5,
  tls: 6,
  auth: 7,
  sender: 8,
  recipients: 9,
  data: 10,
  outcomeUnknown: 11,
  trustStore: 12,
  deadline: 13,
} as const

export type ExitCode = (typeof exitCodes)[keyof typeof exitCodes]

const tlsReasons: ReadonlySet<TransportFailure> = new Set<TransportFailure>([
  "PlaintextWhereTlsExpected",
  "TlsHandshakeFailed",
  "TlsVersionMismatch",
  "NoSharedCipher",
  "CertificateUntrusted",
  "CertificateExpired",
  "HostnameMismatch",
  "WeakParameters",
  "StartTlsRefused",
  "StartTlsNotOffered",
  "CleartextCredentials",
])

/** The exit code for a failed send, by the reason first and the phase second. */
export const forTransportFailure = (reason: TransportFailure, phase: Phase): ExitCode => {
  if (reason === "OutcomeUnknown") return exitCodes.outcomeUnknown
  // The Mailer stops an attempt at the deadline without knowing how far it got.
  if (reason === "DeadlineExceeded") return exitCodes.deadline
  if (tlsReasons.has(reason)) return exitCodes.tls
  if (reason === "InvalidArgument") return exitCodes.config
  // Refused at MAIL (over SIZE) or after the data: the message is too large either way.
  if (reason === "MessageTooLarge") return exitCodes.data
  switch (phase) {
    case "connect":
      return exitCodes.connect
    case "greeting":
    case "ehlo":
      return exitCodes.greeting
    case "starttls":
    case "tls":
      return exitCodes.tls
    case "auth":
      return exitCodes.auth
    case "mail":
      return exitCodes.sender
    case "rcpt":
      return exitCodes.recipients
    case "data":
    case "message":
      return exitCodes.data
    case "config":
      return exitCodes.config
  }
}
