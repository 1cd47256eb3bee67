/**
 * The certificates to trust: the system roots plus the configured trust
 * store. Adding a private root never removes the public ones: Node's `ca`
 * option replaces the built-in roots unless both are given, so `ca` always
 * carries both.
 *
 * The store is recognised by its content, never by its file name. This first
 * form reads PEM files and bundles; JKS, PKCS12, DER and folders are read by
 * the loaders in `internal/`. A wrong password or a damaged file is a
 * `TrustStoreError` naming the file, never an empty store.
 */
import { X509Certificate } from "node:crypto"
import { readFileSync } from "node:fs"
import * as tls from "node:tls"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type { TrustStoreType } from "./Settings.ts"

export interface TrustedCertificate {
  readonly alias: string
  readonly pem: string
  readonly subject: string
  readonly issuer: string
  readonly validFrom: string
  readonly validTo: string
  readonly fingerprint256: string
}

export interface TrustStoreConfig {
  readonly path: string | undefined
  readonly password: Redacted.Redacted<string>
  readonly type: TrustStoreType
}

export interface TrustStoreShape {
  /** The store's file or folder; `undefined` when only the system roots are trusted. */
  readonly path: string | undefined
  /** The certificates of the store, without the system roots. */
  readonly certificates: ReadonlyArray<TrustedCertificate>
  /** System roots plus the store, as PEM: Node's `ca` option. */
  readonly ca: ReadonlyArray<string>
}

export class TrustStoreError extends Data.TaggedError("TrustStoreError")<{
  readonly path: string
  readonly detail: string
  readonly fix: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `trust store ${this.path}: ${this.detail}. Fix: ${this.fix}`
  }
}

export class TrustStore extends Context.Service<TrustStore, TrustStoreShape>()(
  "@spoc-mail/core/TrustStore",
) {
  /** Loads the store described by the settings. */
  static readonly layer = (config: TrustStoreConfig): Layer.Layer<TrustStore, TrustStoreError> =>
    Layer.effect(TrustStore, load(config))

  /** Trusts only the system roots. */
  static readonly system: Layer.Layer<TrustStore> = Layer.succeed(
    TrustStore,
    fromCertificates(undefined, []),
  )
}

/** Describes one certificate from its PEM text. */
export const describe = (alias: string, pem: string): TrustedCertificate => {
  const cert = new X509Certificate(pem)
  return {
    alias,
    pem: cert.toString(),
    subject: cert.subject.replace(/\n/g, ", "),
    issuer: cert.issuer.replace(/\n/g, ", "),
    validFrom: new Date(cert.validFrom).toISOString(),
    validTo: new Date(cert.validTo).toISOString(),
    fingerprint256: cert.fingerprint256,
  }
}

export function fromCertificates(
  path: string | undefined,
  certificates: ReadonlyArray<TrustedCertificate>,
): TrustStoreShape {
  return { path, certificates, ca: [...tls.rootCertificates, ...certificates.map((c) => c.pem)] }
}

const pemBlock = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g

/** Loads the configured store; only the system roots when no path is configured. */
export const load = (config: TrustStoreConfig): Effect.Effect<TrustStoreShape, TrustStoreError> =>
  Effect.gen(function* () {
    const path = config.path
    if (path === undefined) return fromCertificates(undefined, [])
    const bytes = yield* Effect.try({
      try: () => readFileSync(path),
      catch: (cause) =>
        new TrustStoreError({
          path,
          detail: `cannot be read (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`,
          fix: "check trustStorePath and the file's permissions",
          cause,
        }),
    })
    const text = bytes.toString("latin1").replace(/\r\n?/g, "\n")
    const blocks = text.match(pemBlock) ?? []
    if (blocks.length === 0) {
      return yield* new TrustStoreError({
        path,
        detail: "holds no PEM certificate",
        fix: "give a PEM file with -----BEGIN CERTIFICATE----- blocks",
      })
    }
    const certificates = yield* Effect.try({
      try: () => blocks.map((pem, i) => describe(`pem-${i + 1}`, pem)),
      catch: (cause) =>
        new TrustStoreError({
          path,
          detail: "holds a damaged certificate",
          fix: "export the certificate again from its source",
          cause,
        }),
    })
    return fromCertificates(path, certificates)
  })
