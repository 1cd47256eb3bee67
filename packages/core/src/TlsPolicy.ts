/**
 * The TLS policy: turns the settings into Node TLS options for one endpoint.
 * Verification is always on: chain to a trusted root, validity dates, and the
 * host name of the endpoint in use (IP hosts against IP SANs, and no SNI for
 * IPs, which RFC 6066 forbids). Nothing here, no setting and no environment
 * variable, can turn it off: `rejectUnauthorized` is always set explicitly,
 * which also makes Node ignore `NODE_TLS_REJECT_UNAUTHORIZED`.
 */
import { isIP } from "node:net"
import type * as tls from "node:tls"
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"
import * as CipherSuites from "./CipherSuites.ts"
import type { MailSettings } from "./Settings.ts"
import type { TlsVersionRange } from "./TlsVersions.ts"
import { TrustStore, type TrustStoreShape } from "./TrustStore.ts"

export interface TlsPolicyShape {
  readonly versions: TlsVersionRange
  /** Options for a TLS connection to `host`; transports must not loosen them. */
  readonly optionsFor: (host: string) => tls.ConnectionOptions
}

export class TlsPolicy extends Context.Service<TlsPolicy, TlsPolicyShape>()(
  "@spoc-mail/core/TlsPolicy",
) {
  static readonly layer = (
    settings: Pick<MailSettings, "tlsVersions" | "allowCustomCipherSuites" | "cipherSuites">,
  ): Layer.Layer<TlsPolicy, never, TrustStore> =>
    Layer.effect(
      TlsPolicy,
      TrustStore.useSync((trust) => make(settings, trust)),
    )
}

export const make = (
  settings: Pick<MailSettings, "tlsVersions" | "allowCustomCipherSuites" | "cipherSuites">,
  trust: TrustStoreShape,
): TlsPolicyShape => ({
  versions: settings.tlsVersions,
  optionsFor: (host) => ({
    host,
    ...(isIP(host) === 0 ? { servername: host } : {}),
    ca: [...trust.ca],
    minVersion: settings.tlsVersions.min,
    maxVersion: settings.tlsVersions.max,
    ...(settings.allowCustomCipherSuites
      ? { ciphers: CipherSuites.toNodeCiphers(settings.cipherSuites) }
      : {}),
    rejectUnauthorized: true,
  }),
})
