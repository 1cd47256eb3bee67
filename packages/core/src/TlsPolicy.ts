/**
 * The TLS policy: turns the settings into Node TLS options for one endpoint.
 *
 * Verification is always on: the chain must lead to a trusted root (system
 * roots plus the trust store), every certificate must be within its dates,
 * and the certificate must name the host of the endpoint in use: a host name
 * against DNS names, an IP against IP addresses, and no SNI for IPs, which
 * RFC 6066 section 3 forbids. The backup server is checked against its own
 * name, whatever server name a transport passes to Node. Nothing here, no
 * setting and no environment variable, can turn it off: `rejectUnauthorized`
 * is always set explicitly, which also makes Node ignore the environment
 * variable that would otherwise switch verification off.
 *
 * Versions: OpenSSL 3 refuses TLSv1 and TLSv1.1 at its default security
 * level, so when the range includes them the cipher string ends with
 * `@SECLEVEL=0`, for those connections only. TLS 1.3 is still negotiated
 * when the server offers it. Because level 0 also lets weak keys and SHA-1
 * signatures through, our own check (`internal/certificateStrength.ts`)
 * refuses them on every connection, and Diffie-Hellman groups under 2048 bits
 * are refused too.
 *
 * Custom cipher suites apply only when
 * `allowCustomCipherSuitesForOutboundCommunication` is true. The range is
 * then narrowed to the versions the list can negotiate, as Java does: a list
 * of TLS 1.2 suites does not let TLS 1.3 pick its own defaults. The policy
 * says which versions the list removed, so that a refused version can be
 * blamed on the list rather than on the version setting
 * (`TransportFailures.versionMismatch`).
 */
import { X509Certificate } from "node:crypto"
import { isIP } from "node:net"
import * as tls from "node:tls"
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"
import * as CipherSuites from "./CipherSuites.ts"
import { shortAddress } from "./internal/addressText.ts"
import { checkChain } from "./internal/certificateStrength.ts"
import type { MailSettings } from "./Settings.ts"
import * as TlsVersions from "./TlsVersions.ts"
import { TrustStore, type TrustStoreShape } from "./TrustStore.ts"

export type TlsPolicySettings = Pick<
  MailSettings,
  "tlsVersions" | "allowCustomCipherSuites" | "cipherSuites"
>

export interface TlsPolicyShape {
  /** The versions allowed, after narrowing to what a custom cipher list can negotiate. */
  readonly versions: TlsVersions.TlsVersionRange
  /** The versions as cryptographicProtocolsForOutboundCommunication sets them, before narrowing. */
  readonly configuredVersions: TlsVersions.TlsVersionRange
  /**
   * Versions the setting allows that the custom cipher list has no suite for, so
   * they are not offered (`["TLSv1.3"]` for a list of TLS 1.2 suites); empty when
   * the list is not used or covers every allowed version.
   */
  readonly removedByCipherList: ReadonlyArray<TlsVersions.TlsVersion>
  /** Whether OpenSSL's security level is lowered for TLSv1 and TLSv1.1. */
  readonly legacy: boolean
  /** Options for a TLS connection to `host`; transports must pass them on unchanged. */
  readonly optionsFor: (host: string) => tls.ConnectionOptions
}

export class TlsPolicy extends Context.Service<TlsPolicy, TlsPolicyShape>()(
  "@spoc-mail/core/TlsPolicy",
) {
  static readonly layer = (
    settings: TlsPolicySettings,
  ): Layer.Layer<TlsPolicy, never, TrustStore> =>
    Layer.effect(
      TlsPolicy,
      TrustStore.useSync((trust) => make(settings, trust)),
    )
}

/**
 * The server's certificate was refused by our own checks, after Node's chain
 * and date checks passed: it does not name the host, or it is too weak.
 * `checkServerIdentity` returns it, so Node ends the handshake with it.
 */
export class ServerCertificateRefused extends Error {
  override readonly name = "ServerCertificateRefused"
  /** Node's code for a name mismatch; ours for weak certificates. */
  readonly code: "ERR_TLS_CERT_ALTNAME_INVALID" | "ERR_SPOC_WEAK_CERTIFICATE"
  readonly reason: "HostnameMismatch" | "WeakParameters"
  /** The host the certificate was checked against. */
  readonly host: string
  /** The DNS names and IP addresses the certificate is issued for. */
  readonly certificateNames: ReadonlyArray<string>

  constructor(options: {
    readonly reason: "HostnameMismatch" | "WeakParameters"
    readonly host: string
    readonly certificateNames: ReadonlyArray<string>
    readonly message: string
    readonly cause?: unknown
  }) {
    super(options.message, options.cause === undefined ? undefined : { cause: options.cause })
    this.reason = options.reason
    this.code =
      options.reason === "HostnameMismatch"
        ? "ERR_TLS_CERT_ALTNAME_INVALID"
        : "ERR_SPOC_WEAK_CERTIFICATE"
    this.host = options.host
    this.certificateNames = options.certificateNames
  }
}

/**
 * The names a certificate is issued for: its DNS and IP subject alternative
 * names (IPv6 in short form, `::1`), else its CN.
 */
export const certificateNames = (certificate: tls.PeerCertificate): ReadonlyArray<string> => {
  const alternatives = (certificate.subjectaltname ?? "")
    .split(/,\s*/)
    .map((entry) => /^(?:DNS|IP Address):(.*)$/.exec(entry)?.[1])
    .filter((name): name is string => name !== undefined && name.length > 0)
    .map(shortAddress)
  if (alternatives.length > 0) return alternatives
  const cn = certificate.subject?.CN
  return cn === undefined ? [] : Array.isArray(cn) ? cn : [cn]
}

/** The chain Node hands to `checkServerIdentity`, leaf first, as DER. */
const chainOf = (certificate: tls.PeerCertificate): Array<Uint8Array> => {
  const chain: Array<Uint8Array> = []
  const seen = new Set<tls.PeerCertificate>()
  let current: tls.PeerCertificate | undefined = certificate
  while (current !== undefined && !seen.has(current) && current.raw !== undefined) {
    seen.add(current)
    chain.push(current.raw)
    current = (current as tls.DetailedPeerCertificate).issuerCertificate
  }
  return chain
}

/**
 * Whether the certificate names the host: an IP against its IP addresses by
 * OpenSSL's byte comparison (Node 22.23's `checkServerIdentity` does not see
 * `::1` in an IP address written out as `0:0:0:0:0:0:0:1`), a name with
 * Node's own rules. The error says why not.
 */
const identityMismatch = (host: string, certificate: tls.PeerCertificate): Error | undefined => {
  if (isIP(host) === 0) return tls.checkServerIdentity(host, certificate)
  const raw = certificate.raw
  if (raw !== undefined && new X509Certificate(raw).checkIP(host) !== undefined) return undefined
  return new Error(`IP address ${host} is not among the certificate's IP addresses`)
}

/**
 * Checks the server's certificate once Node has verified the chain and dates:
 * the host the endpoint names, then the strength of the chain.
 */
export const checkServer = (
  host: string,
  certificate: tls.PeerCertificate,
): ServerCertificateRefused | undefined => {
  const names = certificateNames(certificate)
  const mismatch = identityMismatch(host, certificate)
  if (mismatch !== undefined) {
    return new ServerCertificateRefused({
      reason: "HostnameMismatch",
      host,
      certificateNames: names,
      message:
        `the server's certificate is issued for ${names.join(", ") || "no host name"}, ` +
        `not for ${host}`,
      cause: mismatch,
    })
  }
  const weakness = checkChain(chainOf(certificate))
  if (weakness !== undefined) {
    return new ServerCertificateRefused({
      reason: "WeakParameters",
      host,
      certificateNames: names,
      message: `weak server certificate: ${weakness}`,
    })
  }
  return undefined
}

/** Builds the policy from the settings and the trust store. */
export const make = (settings: TlsPolicySettings, trust: TrustStoreShape): TlsPolicyShape => {
  const custom = settings.allowCustomCipherSuites ? settings.cipherSuites : undefined
  // Settings resolution refuses a list with no usable suite, so narrowing finds a range.
  const versions =
    custom === undefined
      ? settings.tlsVersions
      : (CipherSuites.narrowRange(custom, settings.tlsVersions) ?? settings.tlsVersions)
  const removedByCipherList = TlsVersions.versionsIn(settings.tlsVersions).filter(
    (v) => !TlsVersions.includes(versions, v),
  )
  const legacy = TlsVersions.includesLegacy(versions)
  const suites =
    custom === undefined
      ? undefined
      : CipherSuites.toNodeCiphers({ suites: CipherSuites.usable(custom, versions) })
  const ciphers = legacy ? `${suites ?? tls.DEFAULT_CIPHERS}:@SECLEVEL=0` : suites
  const ca = [...trust.ca]

  return {
    versions,
    configuredVersions: settings.tlsVersions,
    removedByCipherList,
    legacy,
    optionsFor: (host) => ({
      host,
      ...(isIP(host) === 0 ? { servername: host } : {}),
      ca,
      minVersion: versions.min,
      maxVersion: versions.max,
      ...(ciphers === undefined ? {} : { ciphers }),
      minDHSize: 2048,
      rejectUnauthorized: true,
      // The endpoint's own host, not the server name a transport may have set.
      checkServerIdentity: (_servername, certificate) => checkServer(host, certificate),
    }),
  }
}
