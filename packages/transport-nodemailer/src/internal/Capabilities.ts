/**
 * The server's capabilities as the last EHLO reply stated them (after
 * STARTTLS, only the reply to the second EHLO counts: RFC 3207 section 4.2),
 * and the choice of an AUTH mechanism among them.
 *
 * nodemailer parses the same reply, but it guesses when AUTH is absent (it
 * sends AUTH PLAIN anyway) and it knows no "no usable mechanism". This module
 * decides instead, from the reply lines nodemailer kept. It does not parse
 * reply codes: it receives the lines with their codes already removed.
 */

export interface Capabilities {
  /** Every keyword, upper case: `STARTTLS`, `PIPELINING`, `SIZE`, `AUTH`, ... */
  readonly keywords: ReadonlySet<string>
  /** The AUTH mechanisms offered, upper case, from `AUTH x y` and the old `AUTH=x y` form. */
  readonly authMechanisms: ReadonlyArray<string>
}

/** A mechanism spoc-mail speaks: PLAIN or LOGIN for a password, XOAUTH2 for a token. */
export type Mechanism = string

/**
 * Parses EHLO reply lines without their reply code (`AUTH PLAIN LOGIN`,
 * `SIZE 1000`); the first line (the server's name) must already be removed.
 * `undefined` (the server only answered HELO) yields no capability at all.
 */
export const parse = (lines: ReadonlyArray<string> | undefined): Capabilities => {
  const keywords = new Set<string>()
  const mechanisms = new Set<string>()
  for (const line of lines ?? []) {
    const [keyword = "", ...rest] = line.trim().split(/[\s=]+/)
    if (keyword === "") continue
    const upper = keyword.toUpperCase()
    keywords.add(upper)
    if (upper === "AUTH") {
      for (const mechanism of rest) if (mechanism !== "") mechanisms.add(mechanism.toUpperCase())
    }
  }
  return { keywords, authMechanisms: [...mechanisms] }
}

/** The outcome of choosing a mechanism. */
export type MechanismChoice =
  | { readonly _tag: "Chosen"; readonly mechanism: Mechanism }
  | { readonly _tag: "NotOffered" }
  | { readonly _tag: "NoneUsable"; readonly offered: ReadonlyArray<string> }

/**
 * Picks the first of `speaks` (core's `mechanismsFor` the credentials, by
 * preference) that the server offers.
 */
export const chooseMechanism = (
  capabilities: Capabilities,
  speaks: ReadonlyArray<Mechanism>,
): MechanismChoice => {
  if (!capabilities.keywords.has("AUTH") && capabilities.authMechanisms.length === 0) {
    return { _tag: "NotOffered" }
  }
  const mechanism = speaks.find((m) => capabilities.authMechanisms.includes(m))
  return mechanism === undefined
    ? { _tag: "NoneUsable", offered: capabilities.authMechanisms }
    : { _tag: "Chosen", mechanism }
}
