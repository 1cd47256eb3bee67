/**
 * Custom cipher suites as administrators copy them from Java or IANA lists
 * (`TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`), mapped to the OpenSSL names Node
 * needs through the table generated from this Node's OpenSSL
 * (`internal/cipherTable.ts`, made by `scripts/generate-cipher-table.mjs`).
 * TLS 1.3 suite names pass through unchanged; Java's `SSL_` aliases are read
 * as their `TLS_` twins; OpenSSL names (`ECDHE-RSA-AES256-GCM-SHA384`) are
 * accepted too. Signalling values Java lists next to real suites
 * (`TLS_EMPTY_RENEGOTIATION_INFO_SCSV`, `TLS_FALLBACK_SCSV`) are skipped.
 *
 * An unknown name, a suite that would not authenticate the server or not
 * encrypt (anonymous, NULL, PSK, SRP), or a list with no suite the chosen
 * TLS versions can use, is a configuration problem found at load time, never
 * an OpenSSL error at send time. This module does not decide whether the
 * custom list is used: `allowCustomCipherSuitesForOutboundCommunication` does,
 * in settings resolution and the TLS policy.
 */
import { type CipherEntry, cipherTable } from "./internal/cipherTable.ts"
import * as Parsed from "./Parsed.ts"
import * as TlsVersions from "./TlsVersions.ts"

export interface CipherSuite {
  /** The IANA name. */
  readonly name: string
  /** The name Node's `ciphers` option takes. */
  readonly openssl: string
  /** The lowest version that can negotiate it; suites below TLS 1.3 end at TLS 1.2. */
  readonly minVersion: TlsVersions.TlsVersion
}

export interface CipherSuiteList {
  readonly suites: ReadonlyArray<CipherSuite>
}

/** Upper-case IANA name → table key (the table keeps IANA's `anon` spelling). */
const byIanaName = new Map<string, string>(
  Object.keys(cipherTable).map((name) => [name.toUpperCase(), name]),
)
/** Upper-case OpenSSL name → IANA name. */
const byOpensslName = new Map<string, string>(
  Object.entries(cipherTable).map(([name, entry]) => [entry.openssl.toUpperCase(), name]),
)

const signallingValues = new Set(["TLS_EMPTY_RENEGOTIATION_INFO_SCSV", "TLS_FALLBACK_SCSV"])

/** The IANA name a token stands for, or `undefined` when it names no suite we know. */
export const lookup = (token: string): string | undefined => {
  const upper = token.trim().toUpperCase()
  const iana = upper.startsWith("SSL_") ? `TLS_${upper.slice(4)}` : upper
  return byIanaName.get(iana) ?? byOpensslName.get(upper)
}

/** Why spoc-mail refuses a suite OpenSSL knows, or `undefined` when it is fine. */
const refusal = (entry: CipherEntry): string | undefined => {
  if (entry.authentication === "None") return "it is anonymous: the server is not authenticated"
  if (entry.encryption === "None") return "it does not encrypt"
  if (/PSK|SRP/.test(entry.keyExchange) || /PSK|SRP/.test(entry.authentication)) {
    return "it needs a pre-shared key or SRP password, which spoc-mail does not configure"
  }
  return undefined
}

const obsolete = /(^|_)(RC4|RC2|3DES|DES|DES40|IDEA|EXPORT|EXPORT1024|NULL)(_|$)|_MD5$/

const closest = (name: string): string | undefined => {
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of Object.keys(cipherTable)) {
    const d = editDistance(name, candidate.toUpperCase())
    if (d < bestDistance) {
      bestDistance = d
      best = candidate
    }
  }
  return bestDistance <= 3 ? best : undefined
}

/** Levenshtein distance, for did-you-mean suggestions. */
export const editDistance = (a: string, b: string): number => {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1))
      previous = current
    }
  }
  return row[b.length]!
}

/** One token's problem: the sentence naming it and, when there is one, a suggestion. */
const explain = (token: string): { readonly problem: string; readonly fix?: string } => {
  const upper = token.trim().toUpperCase()
  const iana = upper.startsWith("SSL_") ? `TLS_${upper.slice(4)}` : upper
  if (obsolete.test(iana)) {
    return { problem: `"${token}" is an obsolete suite this Node's OpenSSL no longer supports` }
  }
  const suggestion = closest(iana)
  return {
    problem: `"${token}" is not a cipher suite this Node's OpenSSL knows`,
    ...(suggestion === undefined ? {} : { fix: `did you mean ${suggestion}?` }),
  }
}

/**
 * Parses a list separated by commas, semicolons, colons or white space.
 * Every bad token is reported, not only the first.
 */
export const parse = (text: string): Parsed.Parsed<CipherSuiteList> => {
  const tokens = text.split(/[\s,;:]+/).filter((t) => t.length > 0)
  const suites: Array<CipherSuite> = []
  const problems: Array<string> = []
  const fixes: Array<string> = []
  for (const token of tokens) {
    if (signallingValues.has(token.trim().toUpperCase())) continue
    const name = lookup(token)
    if (name === undefined) {
      const { problem, fix } = explain(token)
      problems.push(problem)
      if (fix !== undefined) fixes.push(fix)
      continue
    }
    const entry = cipherTable[name]!
    const refused = refusal(entry)
    if (refused !== undefined) {
      problems.push(`"${token}" is refused: ${refused}`)
      continue
    }
    if (!suites.some((s) => s.name === name)) {
      suites.push({ name, openssl: entry.openssl, minVersion: entry.minVersion })
    }
  }
  if (problems.length > 0) {
    return Parsed.fail(
      problems.join("; "),
      [...fixes, "use IANA names such as TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"].join("; "),
    )
  }
  if (suites.length === 0) {
    return Parsed.fail("the cipher suite list is empty", "name at least one suite by IANA name")
  }
  return Parsed.ok({ suites })
}

const rank = (version: TlsVersions.TlsVersion): number => TlsVersions.tlsVersions.indexOf(version)

/** Whether `suite` can be negotiated under `version`. */
export const worksWith = (suite: CipherSuite, version: TlsVersions.TlsVersion): boolean =>
  suite.minVersion === "TLSv1.3"
    ? version === "TLSv1.3"
    : version !== "TLSv1.3" && rank(suite.minVersion) <= rank(version)

/** The suites of `list` that the version range can negotiate. */
export const usable = (
  list: CipherSuiteList,
  range: TlsVersions.TlsVersionRange,
): ReadonlyArray<CipherSuite> =>
  list.suites.filter((s) => TlsVersions.versionsIn(range).some((v) => worksWith(s, v)))

/** Checks that the list has at least one suite the chosen versions can use. */
export const checkUsable = (
  list: CipherSuiteList,
  range: TlsVersions.TlsVersionRange,
): Parsed.Parsed<CipherSuiteList> => {
  if (usable(list, range).length > 0) return Parsed.ok(list)
  const onlyTls13 = list.suites.every((s) => s.minVersion === "TLSv1.3")
  return Parsed.fail(
    `none of ${list.suites.map((s) => s.name).join(", ")} can be used with ` +
      `${TlsVersions.format(range)}` +
      (onlyTls13 ? ": they are TLS 1.3 suites" : ""),
    onlyTls13
      ? "allow TLSv1.3 in cryptographicProtocolsForOutboundCommunication, or add TLS 1.2 " +
          "suites such as TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
      : "add suites for those versions, change the versions, or set " +
          "allowCustomCipherSuitesForOutboundCommunication to false",
  )
}

/**
 * The versions of `range` that at least one suite of the list can negotiate.
 * A TLS 1.2 list under `>=TLSv1.2` ends at TLS 1.2, as Java would: TLS 1.3
 * would otherwise quietly use its own default suites. `undefined` when none.
 */
export const narrowRange = (
  list: CipherSuiteList,
  range: TlsVersions.TlsVersionRange,
): TlsVersions.TlsVersionRange | undefined => {
  const versions = TlsVersions.versionsIn(range).filter((v) =>
    list.suites.some((s) => worksWith(s, v)),
  )
  const min = versions[0]
  const max = versions[versions.length - 1]
  return min === undefined || max === undefined ? undefined : { min, max }
}

/**
 * Node's `ciphers` string for the list: OpenSSL names of TLS 1.2-and-older
 * suites and the TLS 1.3 names, which Node hands to OpenSSL separately.
 */
export const toNodeCiphers = (list: CipherSuiteList): string =>
  list.suites.map((s) => s.openssl).join(":")
