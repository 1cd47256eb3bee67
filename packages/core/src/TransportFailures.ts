/**
 * Classifies low-level failures (socket errors, OpenSSL and certificate
 * errors) into the shared `TransportFailure` reasons, with the hint a user
 * needs. Both transports use it, so the same fault gives the same reason and
 * hint whichever transport met it.
 *
 * It only looks at error codes and messages, through the whole `cause` chain
 * and nodemailer's `originalCode` (nodemailer replaces `code` with its own),
 * falling back to OpenSSL's message text when a wrapper kept only that. The
 * TLS policy's own refusals (host name, weak certificate) carry the names the
 * certificate is issued for, so the error can say them (IPv6 in short form).
 * Deciding the phase is the transport's job, because only the transport knows
 * how far it got.
 *
 * It also words two failures that need more than an error code: a refused
 * AUTH reply (a wrong password, or a server that wants encryption first), and
 * a refused TLS version when the TlsPolicy says a custom cipher list removed
 * versions the settings allow.
 */
import {
  type Endpoint,
  type Phase,
  TransportError,
  type TransportFailure,
} from "./TransportError.ts"
import { shortAddress } from "./internal/addressText.ts"
import type { EncryptionMode } from "./Settings.ts"
import type { TlsVersion } from "./TlsVersions.ts"

/** A failure in shared words: the reason, one sentence, and how to fix it when we know. */
export interface Classified {
  readonly reason: TransportFailure
  readonly detail: string
  readonly hint?: string
}

const untrustedHint =
  "add the root CA of the server's certificate to the trust store " +
  "(spoc-mail trust fetch shows the chain, spoc-mail trust import adds it)"

const untrusted: Classified = {
  reason: "CertificateUntrusted",
  detail: "the server's certificate is not signed by a trusted CA",
  hint: untrustedHint,
}

/** OpenSSL's certificate verification codes, as Node reports them. */
const certificateCodes: Readonly<Record<string, Classified>> = {
  CERT_HAS_EXPIRED: {
    reason: "CertificateExpired",
    detail: "the server's certificate has expired",
    hint: "the server's administrator must renew its certificate; check this machine's clock",
  },
  CERT_NOT_YET_VALID: {
    reason: "CertificateExpired",
    detail: "the server's certificate is not valid yet",
    hint: "check the clocks of this machine and the server",
  },
  ERR_TLS_CERT_ALTNAME_INVALID: {
    reason: "HostnameMismatch",
    detail: "the server's certificate is not issued for this host",
    hint: "set mailserver to a name the certificate lists, or have the certificate reissued",
  },
  ERR_SPOC_WEAK_CERTIFICATE: {
    reason: "WeakParameters",
    detail: "the server's certificate is too weak",
    hint:
      "the server needs a certificate with a 2048-bit RSA or an ECDSA key and SHA-256 " +
      "signatures; spoc-mail refuses weaker ones even when TLSv1 is allowed",
  },
  CA_KEY_TOO_SMALL: {
    reason: "WeakParameters",
    detail: "a CA certificate in the server's chain has a key that is too small",
    hint: "the server needs a chain whose keys are 2048-bit RSA or ECDSA",
  },
  EE_KEY_TOO_SMALL: {
    reason: "WeakParameters",
    detail: "the server's certificate has a key that is too small",
    hint: "the server needs a certificate with a 2048-bit RSA or an ECDSA key",
  },
  CA_MD_TOO_WEAK: {
    reason: "WeakParameters",
    detail: "a certificate in the server's chain is signed with a weak hash (MD5 or SHA-1)",
    hint: "the server needs certificates signed with SHA-256 or better",
  },
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: untrusted,
  UNABLE_TO_GET_ISSUER_CERT: untrusted,
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: {
    ...untrusted,
    detail:
      "the server's certificate is not signed by a trusted CA, or the server does not send " +
      "its intermediate certificates",
  },
  SELF_SIGNED_CERT_IN_CHAIN: {
    ...untrusted,
    detail: "the server's chain ends in a root CA that is not trusted",
  },
  DEPTH_ZERO_SELF_SIGNED_CERT: {
    reason: "CertificateUntrusted",
    detail: "the server's certificate is self-signed and not trusted",
    hint:
      "import that certificate into the trust store (spoc-mail trust fetch, then " +
      "spoc-mail trust import), or give the server a certificate from a trusted CA",
  },
  CERT_UNTRUSTED: untrusted,
  CERT_SIGNATURE_FAILURE: {
    ...untrusted,
    detail: "a signature in the server's chain does not verify",
  },
  CERT_REVOKED: {
    reason: "CertificateUntrusted",
    detail: "the server's certificate has been revoked",
    hint: "the server's administrator must replace its certificate",
  },
  INVALID_CA: { ...untrusted, detail: "a certificate in the server's chain is not a valid CA" },
  INVALID_PURPOSE: {
    reason: "CertificateUntrusted",
    detail: "the server's certificate is not meant for TLS servers",
    hint: "the server needs a certificate with the serverAuth extended key usage",
  },
}

/** The same faults when only the message survived (a wrapped error). */
const certificateMessages: ReadonlyArray<readonly [RegExp, string]> = [
  [/certificate has expired/i, "CERT_HAS_EXPIRED"],
  [/certificate is not yet valid/i, "CERT_NOT_YET_VALID"],
  [
    /does not match certificate's altnames|is issued for .*, not for/i,
    "ERR_TLS_CERT_ALTNAME_INVALID",
  ],
  [/weak server certificate/i, "ERR_SPOC_WEAK_CERTIFICATE"],
  // OpenSSL's verify messages, which Node reports with the code UNSPECIFIED for some.
  [/ee (?:certificate )?key too (?:small|weak)/i, "EE_KEY_TOO_SMALL"],
  [/ca (?:certificate )?key too (?:small|weak)/i, "CA_KEY_TOO_SMALL"],
  [/ca md too weak|signature digest algorithm too weak/i, "CA_MD_TOO_WEAK"],
  [/self[- ]signed certificate in certificate chain/i, "SELF_SIGNED_CERT_IN_CHAIN"],
  [/^(?:.*\s)?self[- ]signed certificate$/i, "DEPTH_ZERO_SELF_SIGNED_CERT"],
  [/unable to get local issuer certificate/i, "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"],
  [/unable to verify the first certificate/i, "UNABLE_TO_VERIFY_LEAF_SIGNATURE"],
  [/certificate revoked/i, "CERT_REVOKED"],
]

/**
 * Every code and message on an error and the errors it wraps: nodemailer
 * replaces `code` (keeping `originalCode`), and wrappers keep the original as
 * `cause`.
 */
const traits = (error: unknown): { codes: Array<string>; messages: Array<string> } => {
  const codes: Array<string> = []
  const messages: Array<string> = []
  const seen = new Set<unknown>()
  let current: unknown = error
  while (current !== undefined && current !== null && !seen.has(current)) {
    seen.add(current)
    if (typeof current !== "object") {
      messages.push(String(current))
      break
    }
    const record = current as { code?: unknown; originalCode?: unknown; message?: unknown }
    for (const code of [record.code, record.originalCode]) {
      if (typeof code === "string") codes.push(code)
    }
    // OpenSSL's messages can span lines; a detail is one line.
    if (typeof record.message === "string") messages.push(oneLine(record.message))
    current = (current as { cause?: unknown }).cause
  }
  return { codes, messages }
}

const oneLine = (text: string): string => text.replace(/\s*[\r\n]+\s*/g, " ").trim()

/** The host-name failure, naming what the certificate is issued for. */
const hostnameMismatch = (error: unknown): Classified | undefined => {
  const seen = new Set<unknown>()
  for (let e = error; typeof e === "object" && e !== null && !seen.has(e);) {
    seen.add(e)
    const fields = e as { host?: unknown; certificateNames?: unknown; cert?: unknown }
    const names = Array.isArray(fields.certificateNames)
      ? (fields.certificateNames as Array<string>)
      : namesOfNodeCert(fields.cert)
    if (names !== undefined && typeof fields.host === "string") {
      return {
        reason: "HostnameMismatch",
        detail:
          `the server's certificate is issued for ${names.join(", ") || "no host name"}, ` +
          `not for ${fields.host}`,
        hint:
          "set mailserver (or mailserverbackup) to a name the certificate lists, or have the " +
          "certificate reissued with this name",
      }
    }
    e = (e as { cause?: unknown }).cause
  }
  return undefined
}

const namesOfNodeCert = (cert: unknown): Array<string> | undefined => {
  if (typeof cert !== "object" || cert === null) return undefined
  const altNames = (cert as { subjectaltname?: unknown }).subjectaltname
  if (typeof altNames !== "string") return undefined
  return altNames
    .split(/,\s*/)
    .map((entry) => shortAddress(entry.replace(/^(?:DNS|IP Address):/, "")))
    .filter((name) => name.length > 0)
}

/** One case-insensitive pattern matching any of the phrases. */
const anyOf = (...phrases: ReadonlyArray<string>): RegExp => new RegExp(phrases.join("|"), "i")

const plaintextPattern = anyOf(
  "wrong version number",
  "packet length too long",
  "http request",
  "unknown protocol",
  "record layer failure",
)
const cipherPattern = anyOf(
  "no shared cipher",
  "no ciphers? (available|match)",
  "no suitable",
  "handshake failure",
)
const versionPattern = anyOf(
  "unsupported protocol",
  "protocol version",
  "version too low",
  "no protocols available",
  "unsupported_protocol",
)
const weakHandshakePattern = /dh key too small|key too small|md too weak|bad dh value/i

/**
 * Classifies a TLS failure. `mode` tells what the client expected, so that
 * plain text where TLS was expected gets the right hint.
 */
export const classifyTls = (error: unknown, mode: EncryptionMode): Classified => {
  const { codes, messages } = traits(error)
  const text = messages.join(" / ")

  for (const code of codes) {
    if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
      return hostnameMismatch(error) ?? certificateCodes[code]!
    }
    const known = certificateCodes[code]
    if (known !== undefined) return known
  }
  for (const [pattern, code] of certificateMessages) {
    if (pattern.test(text)) {
      return code === "ERR_TLS_CERT_ALTNAME_INVALID"
        ? (hostnameMismatch(error) ?? certificateCodes[code]!)
        : certificateCodes[code]!
    }
  }

  if (codes.includes("ERR_SSL_WRONG_VERSION_NUMBER") || plaintextPattern.test(text)) {
    return {
      reason: "PlaintextWhereTlsExpected",
      detail: "the server answered in plain text where a TLS handshake was expected",
      hint:
        mode === "SSL_TLS"
          ? "this port speaks plain SMTP first: use mailSmtpEncryption=STARTTLS here, or the " +
            "server's SSL/TLS port (usually 465)"
          : "the server did not start TLS after accepting STARTTLS; check the server",
    }
  }
  if (weakHandshakePattern.test(text)) {
    return {
      reason: "WeakParameters",
      detail: "the server's key exchange is too weak (Diffie-Hellman group under 2048 bits)",
      hint: "the server must use ECDHE or a Diffie-Hellman group of 2048 bits or more",
    }
  }
  if (
    codes.some((c) => /UNSUPPORTED_PROTOCOL|PROTOCOL_VERSION|NO_PROTOCOLS/.test(c)) ||
    versionPattern.test(text)
  ) {
    return versionMismatch()
  }
  if (
    codes.some((c) => /NO_SHARED_CIPHER|HANDSHAKE_FAILURE|NO_CIPHER/.test(c)) ||
    cipherPattern.test(text)
  ) {
    return {
      reason: "NoSharedCipher",
      detail: "the server and spoc-mail share no cipher suite",
      hint:
        "allow more suites in customCipherSuitesForOutboundCommunication, or set " +
        "allowCustomCipherSuitesForOutboundCommunication to false",
    }
  }
  if (codes.includes("ECONNRESET") || /socket disconnected|socket hang up/i.test(text)) {
    return {
      reason: "TlsHandshakeFailed",
      detail: "the server closed the connection during the TLS handshake",
      hint:
        mode === "SSL_TLS"
          ? "the port may not speak TLS from the first byte (try STARTTLS), or the server " +
            "refuses spoc-mail's TLS versions or suites; spoc-mail probe tells which"
          : "the server may refuse spoc-mail's TLS versions or suites; spoc-mail probe tells which",
    }
  }
  return {
    reason: "TlsHandshakeFailed",
    detail: `the TLS handshake failed: ${messages[0] ?? String(error)}`,
    hint: "check the server's TLS configuration with spoc-mail probe",
  }
}

const suiteExamples: Readonly<Record<TlsVersion, string>> = {
  "TLSv1.3": "TLS 1.3 suites (TLS_AES_256_GCM_SHA384, TLS_AES_128_GCM_SHA256)",
  "TLSv1.2": "TLS 1.2 suites (TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384)",
  "TLSv1.1": "suites for TLSv1.1 (TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA)",
  TLSv1: "suites for TLSv1 (TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA)",
}

/** What to add to a custom cipher list for it to cover `versions`, with example names. */
export const suitesToAdd = (versions: ReadonlyArray<TlsVersion>): string =>
  versions.map((v) => suiteExamples[v]).join(", ")

/**
 * The server refused every TLS version offered. `removedByCipherList` (from
 * the TlsPolicy) names the versions the settings allow but the custom cipher
 * list has no suite for: then the list, not the version setting, is what to
 * change, and the hint says so.
 */
export const versionMismatch = (
  removedByCipherList: ReadonlyArray<TlsVersion> = [],
): Classified => {
  if (removedByCipherList.length === 0) {
    return {
      reason: "TlsVersionMismatch",
      detail: "the server does not accept the TLS versions spoc-mail allows",
      hint:
        "set cryptographicProtocolsForOutboundCommunication to versions the server " +
        "supports (spoc-mail probe lists them); TLSv1 and TLSv1.1 must be named explicitly",
    }
  }
  const removed = removedByCipherList.join(" and ")
  const one = removedByCipherList.length === 1
  const examples = suitesToAdd(removedByCipherList)
  return {
    reason: "TlsVersionMismatch",
    detail:
      "the server does not accept the TLS versions spoc-mail offers, and the custom cipher " +
      `list is what keeps ${removed} out`,
    hint:
      `customCipherSuitesForOutboundCommunication has no suite for ${removed}, so spoc-mail ` +
      `does not offer ${one ? "it" : "them"} although ` +
      `cryptographicProtocolsForOutboundCommunication allows ${one ? "it" : "them"}: add ` +
      `${examples} to that list, or set allowCustomCipherSuitesForOutboundCommunication to ` +
      "false (spoc-mail probe lists the versions the server accepts)",
  }
}

/**
 * A transport's TlsVersionMismatch, reworded with `versionMismatch` when the
 * custom cipher list removed versions; any other error unchanged. The Mailer
 * applies it, since the TlsPolicy that knows is its, not the transport's.
 */
export const explainVersionMismatch = (
  error: TransportError,
  removedByCipherList: ReadonlyArray<TlsVersion>,
): TransportError => {
  if (error.reason !== "TlsVersionMismatch" || removedByCipherList.length === 0) return error
  const explained = versionMismatch(removedByCipherList)
  return new TransportError({
    reason: error.reason,
    phase: error.phase,
    endpoint: error.endpoint,
    detail: explained.detail,
    ...(error.command === undefined ? {} : { command: error.command }),
    ...(error.code === undefined ? {} : { code: error.code }),
    ...(error.enhancedCode === undefined ? {} : { enhancedCode: error.enhancedCode }),
    ...(error.serverText === undefined ? {} : { serverText: error.serverText }),
    ...(explained.hint === undefined ? {} : { hint: explained.hint }),
    ...(error.cause === undefined ? {} : { cause: error.cause }),
  })
}

/** A reply to AUTH, as both transports read it. */
export interface AuthReply {
  readonly code: number
  /** RFC 3463 enhanced status code, such as `5.7.8`. */
  readonly enhancedCode?: string | undefined
  /** The server's text, without the codes. */
  readonly text: string
}

const encryptionFirstHint =
  "the server requires encryption before AUTH: set mailSmtpEncryption to STARTTLS_REQUIRED " +
  "(or SSL_TLS)"

const noRetryNote =
  "spoc-mail does not retry, nor try the backup, so that the account is not locked"

/**
 * Classifies the server's refusal of AUTH (`command` as shown, such as
 * `AUTH PLAIN`). The reason is always AuthRejected, so the delivery policy
 * never repeats the credentials elsewhere; the detail and hint tell a wrong
 * password (535) from a server that wants encryption first (538 or 5.7.11,
 * RFC 4954 section 6; 530 about STARTTLS, RFC 3207 section 4), a mechanism it
 * finds too weak (534) and a temporary fault (4xx).
 */
export const authRefusal = (reply: AuthReply, command: string): Classified => {
  // A token has no mailpass to check: it expired, lacks the scope, or is not mailuser's.
  const token = /^AUTH XOAUTH2\b/i.test(command)
  const checkCredentials = token
    ? "the access token was refused: renew it, check that it carries the mail (SMTP) " +
      "scope and that mailuser is the account it was issued for"
    : "check mailuser and mailpass"
  const encryptionFirst =
    reply.code === 538 ||
    reply.enhancedCode === "5.7.11" ||
    ((reply.code === 530 || reply.code === 523) && /starttls|\btls\b|encrypt/i.test(reply.text))
  if (encryptionFirst) {
    return {
      reason: "AuthRejected",
      detail: `the server refused ${command} on a connection that is not encrypted`,
      hint: encryptionFirstHint,
    }
  }
  if (reply.code === 535) {
    return {
      reason: "AuthRejected",
      detail: token
        ? "the server rejected the user name or access token"
        : "the server rejected the user name or password",
      hint: `${checkCredentials}; ${noRetryNote}`,
    }
  }
  if (reply.code === 534) {
    return {
      reason: "AuthRejected",
      detail: `the server finds ${command} too weak`,
      hint:
        "the server wants encryption or another mechanism first: use mailSmtpEncryption " +
        "STARTTLS_REQUIRED or SSL_TLS, or enable AUTH PLAIN or LOGIN over TLS on the server",
    }
  }
  if (reply.code >= 400 && reply.code < 500) {
    return {
      reason: "AuthRejected",
      detail: `the server could not check the credentials now (${command})`,
      hint: `try again later; ${noRetryNote}`,
    }
  }
  return {
    reason: "AuthRejected",
    detail: `the server refused ${command}`,
    hint: `${checkCredentials}; ${noRetryNote}`,
  }
}

/**
 * The server offers AUTH, but no mechanism the credentials can use (XOAUTH2
 * for a token, PLAIN or LOGIN for a password); nothing secret was sent.
 */
export const noUsableMechanism = (offered: ReadonlyArray<string>, token: boolean): Classified => {
  const list = offered.join(" ") || "with no mechanism"
  return token
    ? {
        reason: "NoUsableAuthMechanism",
        detail:
          `the server offers AUTH ${list}, but an access token needs XOAUTH2; ` + "it was not sent",
        hint: "use the server's OAuth 2.0 submission endpoint, or log in with mailpass",
      }
    : {
        reason: "NoUsableAuthMechanism",
        detail:
          `the server offers AUTH ${list}, but spoc-mail speaks only PLAIN and LOGIN; ` +
          "the credentials were not sent",
        hint:
          "enable AUTH PLAIN or LOGIN on the server (over TLS), or clear mailuser with " +
          "[EMPTY] if the server relays for this host without a login",
      }
}

/** Classifies a socket error raised while connecting. */
export const classifyConnect = (error: unknown): Classified => {
  const code = (error as { code?: string }).code ?? ""
  switch (code) {
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_FAIL":
    case "EAI_NODATA":
      return {
        reason: "DnsFailure",
        detail: "the server's name could not be resolved",
        hint: "check mailserver for typos and this machine's DNS",
      }
    case "ECONNREFUSED":
      return {
        reason: "ConnectionRefused",
        detail: "the server refused the connection",
        hint: "check mailserver and mailSmtpPort; is the mail service running?",
      }
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "EADDRNOTAVAIL":
      return {
        reason: "Unreachable",
        detail: "the server cannot be reached from this machine",
        hint: "check the network route and firewalls",
      }
    case "ETIMEDOUT":
      return {
        reason: "ConnectTimeout",
        detail: "the connection was not established in time",
        hint: "check the address and port, and firewalls that drop packets",
      }
    case "ECONNRESET":
    case "EPIPE":
      return { reason: "ConnectionLost", detail: "the server closed the connection" }
    default:
      return {
        reason: "ConnectionLost",
        detail: `the connection failed: ${oneLine(String((error as Error).message ?? error))}`,
      }
  }
}

/** The hint for silence or a closed connection where a greeting was expected. */
export const greetingHint = (mode: EncryptionMode): string =>
  mode === "SSL_TLS"
    ? "check the host and port; the server may be overloaded"
    : "this port may speak TLS from the first byte: use mailSmtpEncryption=SSL_TLS " +
      "(usually port 465)"

/** Builds the error for a classified failure. */
export const toError = (
  classified: Classified,
  endpoint: Endpoint,
  phase: Phase,
  cause?: unknown,
): TransportError =>
  new TransportError({
    reason: classified.reason,
    phase,
    endpoint,
    detail: classified.detail,
    ...(classified.hint === undefined ? {} : { hint: classified.hint }),
    ...(cause === undefined ? {} : { cause }),
  })
