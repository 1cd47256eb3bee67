/**
 * Custom cipher suites as administrators copy them from Java or IANA lists
 * (`TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`), mapped to the OpenSSL names Node
 * needs. TLS 1.3 suite names pass through unchanged; Java's `SSL_` aliases
 * are read as their `TLS_` twins.
 *
 * An unknown name, or a list with no suite the chosen TLS versions can use,
 * is a configuration problem found at load time, never an OpenSSL error at
 * send time.
 */
import * as Parsed from "./Parsed.ts"
import { cipherTable } from "./internal/cipherTable.ts"
import * as TlsVersions from "./TlsVersions.ts"

export interface CipherSuite {
  /** The IANA name. */
  readonly name: string
  readonly openssl: string
  readonly minVersion: TlsVersions.TlsVersion
}

export interface CipherSuiteList {
  readonly suites: ReadonlyArray<CipherSuite>
}

const canonical = (token: string): string => {
  const upper = token.trim().toUpperCase()
  return upper.startsWith("SSL_") ? `TLS_${upper.slice(4)}` : upper
}

const closest = (name: string): string | undefined => {
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of Object.keys(cipherTable)) {
    const d = editDistance(name, candidate)
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

/** Parses a list separated by commas, semicolons, colons or white space. */
export const parse = (text: string): Parsed.Parsed<CipherSuiteList> => {
  const tokens = text.split(/[\s,;:]+/).filter((t) => t.length > 0)
  if (tokens.length === 0) {
    return Parsed.fail("the cipher suite list is empty", "name at least one suite by IANA name")
  }
  const suites: Array<CipherSuite> = []
  for (const token of tokens) {
    const name = canonical(token)
    const entry = cipherTable[name]
    if (entry === undefined) {
      const suggestion = closest(name)
      return Parsed.fail(
        `"${token}" is not a cipher suite this Node's OpenSSL knows`,
        suggestion === undefined
          ? "use IANA names such as TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
          : `did you mean ${suggestion}?`,
      )
    }
    if (!suites.some((s) => s.name === name)) suites.push({ name, ...entry })
  }
  return Parsed.ok({ suites })
}

const usableIn = (suite: CipherSuite, range: TlsVersions.TlsVersionRange): boolean =>
  suite.minVersion === "TLSv1.3"
    ? TlsVersions.includes(range, "TLSv1.3")
    : TlsVersions.tlsVersions.indexOf(suite.minVersion) <=
        TlsVersions.tlsVersions.indexOf(range.max) && range.min !== "TLSv1.3"

/** The suites of `list` that the version range can negotiate. */
export const usable = (
  list: CipherSuiteList,
  range: TlsVersions.TlsVersionRange,
): ReadonlyArray<CipherSuite> => list.suites.filter((s) => usableIn(s, range))

/** Checks that the list has at least one suite the chosen versions can use. */
export const checkUsable = (
  list: CipherSuiteList,
  range: TlsVersions.TlsVersionRange,
): Parsed.Parsed<CipherSuiteList> =>
  usable(list, range).length > 0
    ? Parsed.ok(list)
    : Parsed.fail(
        `none of ${list.suites.map((s) => s.name).join(", ")} can be used with ` +
          TlsVersions.format(range),
        "add suites for those versions, change the versions, or set " +
          "allowCustomCipherSuitesForOutboundCommunication to false",
      )

/**
 * Node's `ciphers` string for the list: OpenSSL names of TLS 1.2-and-older
 * suites and the TLS 1.3 names, which Node separates itself.
 */
export const toNodeCiphers = (list: CipherSuiteList): string =>
  list.suites.map((s) => s.openssl).join(":")
