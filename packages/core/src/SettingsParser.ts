/**
 * Parsing of one raw setting string into its typed value, by the kind the
 * catalogue gives the key. Parsers are strict (`"465 "` is trimmed, `"46five"`
 * is refused) and say how to fix what they refuse. CR, LF and NUL are refused
 * in every value: none of them belongs in an SMTP command or a header.
 *
 * Cross-key rules (cipher suites against TLS versions, credentials against
 * encryption) are applied by `SettingsResolution.ts`.
 */
import { isIP } from "node:net"
import * as CipherSuites from "./CipherSuites.ts"
import * as Parsed from "./Parsed.ts"
import type { EncryptionMode, Mailbox, ServerAddress, TrustStoreType } from "./Settings.ts"
import * as TlsVersions from "./TlsVersions.ts"

const controlCharacters = /[\r\n\0]/

const controlProblem = Parsed.fail(
  "the value contains a line break or NUL character",
  "write the value on one line without control characters",
)

/** A value as a problem shows it: in quotes, a long one cut short with its length. */
export const quoted = (value: string): string =>
  value.length <= 80 ? `"${value}"` : `"${value.slice(0, 60)}…" (${value.length} characters)`

export const refuseControlCharacters = (raw: string): Parsed.Parsed<string> =>
  controlCharacters.test(raw) ? controlProblem : Parsed.ok(raw)

const hostLabel = /^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$/

/** A host name, IPv4 address or IPv6 address (with or without brackets). */
export const serverAddress = (raw: string): Parsed.Parsed<ServerAddress> => {
  const text = raw.trim()
  const bracketed = /^\[(.*)\]$/.exec(text)
  if (bracketed !== null) {
    return isIP(bracketed[1]!) === 6
      ? Parsed.ok({ host: bracketed[1]!, kind: "ipv6" })
      : Parsed.fail(
          `${quoted(text)} is not an IPv6 address`,
          "write an IPv6 address as [2001:db8::25]",
        )
  }
  if (isIP(text) === 4) return Parsed.ok({ host: text, kind: "ipv4" })
  if (isIP(text) === 6) return Parsed.ok({ host: text, kind: "ipv6" })
  if (/^[^:]+:\d+$/.test(text)) {
    return Parsed.fail(
      `${quoted(text)} includes a port`,
      "put only the host here and the port in mailSmtpPort",
    )
  }
  if (/^[a-z]+:\/\//i.test(text)) {
    return Parsed.fail(
      `${quoted(text)} is a URL`,
      "write only the host name, such as smtp.example.com",
    )
  }
  const name = text.endsWith(".") ? text.slice(0, -1) : text
  const labels = name.split(".")
  if (name.length === 0 || name.length > 253 || !labels.every((l) => hostLabel.test(l))) {
    return Parsed.fail(
      `${quoted(text)} is not a host name or IP address`,
      "write a host name (smtp.example.com), an IPv4 address or an [IPv6] address",
    )
  }
  return Parsed.ok({ host: name.toLowerCase(), kind: "name" })
}

const addrSpec = /^[^\s@<>()[\]\\,;:"]+@[^\s@<>()[\]\\,;:"]+$/u

/** An address refused for its length; its problem says so better than "not a mailbox". */
type TooLong = Parsed.Parsed<never> & { readonly ok: false }

/**
 * RFC 5321 4.5.3.1: 64 octets before the @, 255 after, 254 in all (a path
 * is 256 with its brackets). `text` is an address of the right form.
 */
const tooLong = (text: string): TooLong | undefined => {
  const at = text.lastIndexOf("@")
  const local = Buffer.byteLength(text.slice(0, at))
  const domain = Buffer.byteLength(text.slice(at + 1))
  if (local <= 64 && domain <= 255 && local + 1 + domain <= 254) return undefined
  return {
    ok: false,
    problem: `${quoted(text)} is longer than a mail address may be`,
    fix: "use at most 64 octets before the @ and 254 in all (RFC 5321)",
  }
}

const wellFormed = (text: string): boolean => !controlCharacters.test(text) && addrSpec.test(text)

/** Checks a bare address (`local@domain`); non-ASCII is allowed (SMTPUTF8). */
export const address = (raw: string): Parsed.Parsed<string> => {
  const text = raw.trim()
  if (!wellFormed(text)) {
    return Parsed.fail(
      `${quoted(text)} is not a mail address`,
      "write a mailbox such as print@example.com",
    )
  }
  return tooLong(text) ?? Parsed.ok(text)
}

/** Splits a list on commas that are outside quotes and angle brackets. */
const splitList = (text: string): Array<string> => {
  const parts: Array<string> = []
  let current = ""
  let quoted = false
  let angled = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quoted && c === "\\") {
      current += c + (text[i + 1] ?? "")
      i++
      continue
    }
    if (c === '"') quoted = !quoted
    else if (!quoted && c === "<") angled = true
    else if (!quoted && c === ">") angled = false
    if (c === "," && !quoted && !angled) {
      parts.push(current)
      current = ""
    } else current += c
  }
  parts.push(current)
  return parts
}

const quotedName = /^"((?:[^"\\]|\\.)*)"$/
const namedMailbox = /^((?:"(?:[^"\\]|\\.)*")|[^"<>@,]*?)\s*<([^<>\s]+)>$/u

/**
 * One mailbox, strictly: `user@example.com`, `Name <user@example.com>` or
 * `"Name, Dept" <user@example.com>`, and nothing else: no second address
 * hidden after a space, no text after the closing bracket.
 */
const onePart = (part: string): Mailbox | TooLong | undefined => {
  const text = part.trim()
  const named = namedMailbox.exec(text)
  const spec = (named === null ? text : named[2]!).trim()
  if (!wellFormed(spec)) return undefined
  const long = tooLong(spec)
  if (long !== undefined) return long
  if (named === null) return { address: spec, name: undefined, text }
  const rawName = named[1]!.trim()
  const name = quotedName.exec(rawName)?.[1]?.replace(/\\(.)/g, "$1") ?? rawName
  return { address: spec, name: name === "" ? undefined : name, text }
}

const isTooLong = (part: Mailbox | TooLong | undefined): part is TooLong =>
  part !== undefined && "ok" in part

/** A mailbox with an optional display name: `Print Room <print@example.com>`. */
export const mailbox = (raw: string): Parsed.Parsed<Mailbox> => {
  const text = raw.trim()
  const fix = 'write one mailbox, such as print@example.com or "Print Room <print@example.com>"'
  if (controlCharacters.test(text)) return controlProblem
  const parts = splitList(text)
  const box = parts.length === 1 ? onePart(parts[0]!) : undefined
  if (isTooLong(box)) return box
  return box === undefined
    ? Parsed.fail(`${quoted(text)} is not a single mailbox`, fix)
    : Parsed.ok(box)
}

/** A list of mailboxes separated by commas, every one of them valid. */
export const mailboxList = (raw: string): Parsed.Parsed<ReadonlyArray<Mailbox>> => {
  if (controlCharacters.test(raw)) return controlProblem
  const boxes: Array<Mailbox> = []
  for (const part of splitList(raw)) {
    if (part.trim() === "") continue
    const box = onePart(part)
    if (isTooLong(box)) return box
    if (box === undefined) {
      return Parsed.fail(
        `${quoted(part.trim())} is not a mail address`,
        "give addresses such as user@example.com or Name <user@example.com>, " +
          "separated by commas",
      )
    }
    boxes.push(box)
  }
  return boxes.length > 0
    ? Parsed.ok(boxes)
    : Parsed.fail("no address is given", "give at least one address such as user@example.com")
}

const modes: Readonly<Record<string, EncryptionMode>> = {
  NONE: "NONE",
  SSL_TLS: "SSL_TLS",
  "SSL/TLS": "SSL_TLS",
  STARTTLS: "STARTTLS",
  STARTTLS_REQUIRED: "STARTTLS_REQUIRED",
}

export const encryption = (raw: string): Parsed.Parsed<EncryptionMode> => {
  const mode = modes[raw.trim().toUpperCase()]
  return mode === undefined
    ? Parsed.fail(
        `${quoted(raw.trim())} is not an encryption mode`,
        "use NONE, SSL_TLS (also written SSL/TLS), STARTTLS or STARTTLS_REQUIRED",
      )
    : Parsed.ok(mode)
}

const wholeNumber = (raw: string): number | undefined => {
  const text = raw.trim()
  return /^\d{1,10}$/.test(text) ? Number(text) : undefined
}

export const port = (raw: string): Parsed.Parsed<number> => {
  const value = wholeNumber(raw)
  return value !== undefined && value >= 1 && value <= 65535
    ? Parsed.ok(value)
    : Parsed.fail(
        `${quoted(raw.trim())} is not a port number`,
        "use a whole number from 1 to 65535, such as 25, 465 or 587",
      )
}

/** At most one hour: every step must be bounded, and no SMTP step needs longer. */
export const maxTimeoutMs = 3_600_000

export const milliseconds = (raw: string): Parsed.Parsed<number> => {
  const value = wholeNumber(raw)
  return value !== undefined && value >= 1 && value <= maxTimeoutMs
    ? Parsed.ok(value)
    : Parsed.fail(
        `${quoted(raw.trim())} is not a timeout in milliseconds`,
        `use a whole number of milliseconds from 1 to ${maxTimeoutMs}, such as 10000`,
      )
}

// Exactly the spellings DESIGN "Settings" lists (C17: anything else is refused).
const truthy = new Set(["true", "yes", "1", "enabled"])
const falsy = new Set(["false", "no", "0", "disabled"])

export const boolean = (raw: string): Parsed.Parsed<boolean> => {
  const text = raw.trim().toLowerCase()
  if (truthy.has(text)) return Parsed.ok(true)
  if (falsy.has(text)) return Parsed.ok(false)
  return Parsed.fail(
    `${quoted(raw.trim())} is not a yes/no value`,
    "use true or false (also yes/no, 1/0, enabled/disabled)",
  )
}

const storeTypes: Readonly<Record<string, TrustStoreType>> = {
  AUTO: "auto",
  JKS: "JKS",
  PKCS12: "PKCS12",
  P12: "PKCS12",
  PFX: "PKCS12",
  PEM: "PEM",
}

export const trustStoreType = (raw: string): Parsed.Parsed<TrustStoreType> => {
  const type = storeTypes[raw.trim().toUpperCase()]
  return type === undefined
    ? Parsed.fail(`${quoted(raw.trim())} is not a trust store type`, "use auto, JKS, PKCS12 or PEM")
    : Parsed.ok(type)
}

export const tlsVersions = TlsVersions.parse

export const cipherSuites = CipherSuites.parse
