/**
 * The certificates to trust: the system roots plus the configured trust
 * store. Adding a private root never removes the public ones: Node's `ca`
 * option replaces the built-in roots unless both are given, so `ca` always
 * carries both.
 *
 * The store is recognised by its content, never by its file name: PEM (BOM,
 * CRLF, bundles, text between blocks), DER, a folder of such files, JKS and
 * PKCS#12 from keytool or openssl (readers in `internal/`). `trustStoreType`
 * other than auto must match the content. A missing file, a wrong password,
 * a damaged or truncated file, or a store without certificates is a
 * `TrustStoreError` naming the file, never an empty store.
 *
 * It also edits stores for `spoc-mail trust`: list, import a certificate
 * under an alias (into JKS, PKCS#12, PEM files or a folder, keeping every
 * other entry), remove by alias. Files are replaced atomically, so a store is
 * never left half-written. Private-key entries are listed and kept, and
 * their certificates are trusted as Java trusts them.
 */
import { X509Certificate } from "node:crypto"
import { readFileSync } from "node:fs"
import * as tls from "node:tls"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { decodeText, looksLikePem, parsePem } from "./internal/pem.ts"
import { StoreProblem } from "./internal/storeProblem.ts"
import * as StoreFiles from "./internal/storeFiles.ts"
import type { TrustStoreType } from "./Settings.ts"

export type StoreFormat = StoreFiles.StoreFormat

/** A format `importCertificate` can create. */
export type NewStoreFormat = StoreFiles.NewStoreFormat

export interface TrustedCertificate {
  readonly alias: string
  readonly pem: string
  readonly subject: string
  readonly issuer: string
  /** ISO 8601. */
  readonly validFrom: string
  /** ISO 8601. */
  readonly validTo: string
  /** SHA-256 fingerprint, colon-separated upper-case hex. */
  readonly fingerprint256: string
}

/** One entry of a store, as `spoc-mail trust list` shows it. */
export interface StoreEntry extends TrustedCertificate {
  /** A trusted certificate, or a private key whose certificate is shown (and trusted). */
  readonly kind: "trustedCertificate" | "privateKey"
  /** For folders: the file that holds the entry. */
  readonly file?: string
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
  /** What the store is, when one is configured. */
  readonly format?: StoreFormat
  /** Files of a folder store that hold no certificate and were skipped. */
  readonly skipped?: ReadonlyArray<string>
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

/** Describes one certificate from its PEM text or DER bytes. */
export const describe = (alias: string, certificate: string | Uint8Array): TrustedCertificate => {
  const cert = new X509Certificate(certificate)
  return {
    alias,
    pem: cert.toString(),
    subject: cert.subject.split("\n").join(", "),
    issuer: cert.issuer.split("\n").join(", "),
    validFrom: new Date(cert.validFrom).toISOString(),
    validTo: new Date(cert.validTo).toISOString(),
    fingerprint256: cert.fingerprint256,
  }
}

export function fromCertificates(
  path: string | undefined,
  certificates: ReadonlyArray<TrustedCertificate>,
  details: { readonly format?: StoreFormat; readonly skipped?: ReadonlyArray<string> } = {},
): TrustStoreShape {
  return {
    path,
    certificates,
    ca: [...tls.rootCertificates, ...certificates.map((c) => c.pem)],
    ...details,
  }
}

/** Turns a format reader's problem, or a file system error, into an error naming the file. */
const storeError =
  (path: string) =>
  (cause: unknown): TrustStoreError => {
    if (cause instanceof StoreProblem) {
      return new TrustStoreError({ path, detail: cause.message, fix: cause.fix, cause })
    }
    const code = (cause as NodeJS.ErrnoException).code
    if (code === "ENOENT") {
      return new TrustStoreError({
        path,
        detail: "does not exist",
        fix: "check trustStorePath, or clear it to trust only the system roots",
        cause,
      })
    }
    return new TrustStoreError({
      path,
      detail: `cannot be read (${code ?? String(cause)})`,
      fix: "check trustStorePath and the file's permissions",
      cause,
    })
  }

const entryOf = (entry: StoreFiles.RawEntry): StoreEntry => ({
  ...describe(entry.alias, entry.der),
  kind: entry.kind,
  ...(entry.file === undefined ? {} : { file: entry.file }),
})

/** Everything in a store, for listing. */
export interface StoreListing {
  readonly path: string
  readonly format: StoreFormat
  readonly entries: ReadonlyArray<StoreEntry>
  readonly skipped: ReadonlyArray<string>
}

const requirePath = (config: TrustStoreConfig): Effect.Effect<string, TrustStoreError> =>
  config.path === undefined
    ? Effect.fail(
        new TrustStoreError({
          path: "(none)",
          detail: "no trust store is configured",
          fix: "set trustStorePath, or give the store's path",
        }),
      )
    : Effect.succeed(config.path)

/** Reads every entry of the configured store. */
export const list = (config: TrustStoreConfig): Effect.Effect<StoreListing, TrustStoreError> =>
  Effect.gen(function* () {
    const path = yield* requirePath(config)
    const read = yield* Effect.try({
      try: () => StoreFiles.readPath(path, config.type, Redacted.value(config.password)),
      catch: storeError(path),
    })
    return { path, format: read.format, entries: read.entries.map(entryOf), skipped: read.skipped }
  })

/** Loads the configured store; only the system roots when no path is configured. */
export const load = (config: TrustStoreConfig): Effect.Effect<TrustStoreShape, TrustStoreError> =>
  Effect.gen(function* () {
    if (config.path === undefined) return fromCertificates(undefined, [])
    const listing = yield* list(config)
    if (listing.entries.length === 0) {
      return yield* new TrustStoreError({
        path: listing.path,
        detail: "holds no certificate",
        fix:
          listing.format === "folder"
            ? "put PEM or DER certificate files in the folder"
            : "import a CA certificate (spoc-mail trust import), or clear trustStorePath",
      })
    }
    return fromCertificates(
      listing.path,
      listing.entries.map(({ kind: _kind, file: _file, ...certificate }) => certificate),
      { format: listing.format, skipped: listing.skipped },
    )
  })

/**
 * Reads the one certificate of a PEM or DER file, for `trust import --file`.
 * A file with several certificates is refused: the alias would be ambiguous.
 */
export const readCertificateFile = (path: string): Effect.Effect<Uint8Array, TrustStoreError> =>
  Effect.try({
    try: () => certificateFromBytes(readFileSync(path)),
    catch: storeError(path),
  })

/** The one certificate in PEM or DER bytes. */
export const certificateFromBytes = (bytes: Uint8Array): Uint8Array => {
  if (looksLikePem(decodeText(bytes).text)) {
    const blocks = parsePem(bytes).blocks
    if (blocks.length !== 1) {
      throw new StoreProblem(
        `holds ${blocks.length} certificates, and one alias can name only one`,
        "split the file and import each certificate under its own alias",
      )
    }
    return blocks[0]!.der
  }
  try {
    new X509Certificate(bytes)
    return bytes
  } catch (cause) {
    throw new StoreProblem("is not a PEM or DER certificate", "give one certificate file", {
      cause,
    })
  }
}

/**
 * Adds a trusted certificate under `alias` to the store, keeping every other
 * entry, like `keytool -importcert`. A missing store is created in `create`'s
 * format when it is given. JKS stores keep aliases in lower case, as keytool does.
 */
export const importCertificate = (
  config: TrustStoreConfig,
  alias: string,
  certificate: Uint8Array,
  options: { readonly create?: NewStoreFormat } = {},
): Effect.Effect<StoreEntry, TrustStoreError> =>
  Effect.gen(function* () {
    const path = yield* requirePath(config)
    const added = yield* Effect.try({
      try: () =>
        StoreFiles.addCertificate({
          path,
          type: config.type,
          password: Redacted.value(config.password),
          alias,
          der: certificate,
          ...(options.create === undefined ? {} : { create: options.create }),
        }),
      catch: storeError(path),
    })
    return entryOf(added)
  })

/** Removes the entry with `alias` (in any case) and returns what it was. */
export const removeCertificate = (
  config: TrustStoreConfig,
  alias: string,
): Effect.Effect<StoreEntry, TrustStoreError> =>
  Effect.gen(function* () {
    const path = yield* requirePath(config)
    const removed = yield* Effect.try({
      try: () =>
        StoreFiles.removeEntry({
          path,
          type: config.type,
          password: Redacted.value(config.password),
          alias,
        }),
      catch: storeError(path),
    })
    return entryOf(removed)
  })
