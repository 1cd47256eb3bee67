/**
 * Classifies low-level failures (socket errors, OpenSSL and certificate
 * errors) into the shared `TransportFailure` reasons, with the hint a user
 * needs. Both transports use it, so the same fault gives the same reason and
 * hint whichever transport met it.
 *
 * It only looks at error codes and messages; deciding the phase is the
 * transport's job, because only the transport knows how far it got.
 */
import {
  type Endpoint,
  type Phase,
  TransportError,
  type TransportFailure,
} from "./TransportError.ts"
import type { EncryptionMode } from "./Settings.ts"

interface Classified {
  readonly reason: TransportFailure
  readonly detail: string
  readonly hint?: string
}

const certificateCodes: Readonly<Record<string, Classified>> = {
  CERT_HAS_EXPIRED: {
    reason: "CertificateExpired",
    detail: "the server's certificate has expired",
    hint: "the server's administrator must renew its certificate",
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
}

const untrustedCodes = new Set([
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
  "CERT_REVOKED",
  "INVALID_CA",
])

const untrustedHint =
  "add the root CA of the server's certificate to the trust store " +
  "(spoc-mail trust fetch shows the chain, spoc-mail trust import adds it)"

/**
 * Classifies a TLS failure. `mode` tells what the client expected, so that
 * plain text where TLS was expected gets the right hint.
 */
export const classifyTls = (error: unknown, mode: EncryptionMode): Classified => {
  const code = (error as { code?: string }).code ?? ""
  const message = String((error as { message?: string }).message ?? error)
  const known = certificateCodes[code]
  if (known !== undefined) return known
  if (untrustedCodes.has(code)) {
    return {
      reason: "CertificateUntrusted",
      detail: "the server's certificate is not signed by a trusted CA",
      hint: untrustedHint,
    }
  }
  if (
    code === "ERR_SSL_WRONG_VERSION_NUMBER" ||
    /wrong version number|http request/i.test(message)
  ) {
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
  if (
    /no shared cipher|no cipher(s)? (available|match)|sslv3 alert handshake failure/i.test(message)
  ) {
    return {
      reason: "NoSharedCipher",
      detail: "the server and spoc-mail share no cipher suite",
      hint:
        "allow more suites in customCipherSuitesForOutboundCommunication, or set " +
        "allowCustomCipherSuitesForOutboundCommunication to false",
    }
  }
  if (
    /unsupported protocol|protocol version|version too low|no protocols available/i.test(message) ||
    code === "ERR_SSL_UNSUPPORTED_PROTOCOL"
  ) {
    return {
      reason: "TlsVersionMismatch",
      detail: "the server does not accept the TLS versions spoc-mail allows",
      hint:
        "set cryptographicProtocolsForOutboundCommunication to versions the server " +
        "supports (spoc-mail probe lists them)",
    }
  }
  if (
    /key too small|ee key too small|ca md too weak|dh key too small/i.test(message) ||
    code === "ERR_SSL_EE_KEY_TOO_SMALL" ||
    code === "ERR_SSL_CA_MD_TOO_WEAK"
  ) {
    return {
      reason: "WeakParameters",
      detail: "the server's certificate or key exchange is too weak",
      hint: "the server must use a key of 2048 bits or more and SHA-256 signatures",
    }
  }
  return {
    reason: "TlsHandshakeFailed",
    detail: `the TLS handshake failed: ${message}`,
    hint: "check the server's TLS configuration with spoc-mail probe",
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
        detail: `the connection failed: ${String((error as Error).message ?? error)}`,
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
