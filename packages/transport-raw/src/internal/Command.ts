/**
 * SMTP commands and their encoding (RFC 5321 4.1). A command is a list of
 * parts joined by spaces and ended by CRLF; a part that is a secret (an AUTH
 * argument, a line of the AUTH LOGIN dialogue) is a `Redacted` value, so the
 * text shown in logs and errors masks it while the bytes on the wire carry it.
 *
 * Encoding refuses CR, LF and NUL in any part, secrets included: such a
 * character would end the command early and let the rest be read as another
 * command (SMTP command injection). The check runs before a byte is produced,
 * so a refused command sends nothing.
 *
 * This module builds the bytes; it does not write them. Writing, and the one
 * transcript line per command, is the socket adapter's job.
 */
import { Transport } from "@spoc-mail/core"
import * as Redacted from "effect/Redacted"

export type Part = string | Redacted.Redacted<string>

export interface Command {
  /** The command verb, for error messages: `MAIL`, `AUTH`, or `AUTH` for a dialogue line. */
  readonly verb: string
  readonly parts: ReadonlyArray<Part>
}

export interface Encoded {
  readonly bytes: Buffer
  /** The command as logs and errors show it, secrets masked. */
  readonly display: string
}

/** Why a command was refused; the detail never shows a secret part. */
export interface Refused {
  readonly _tag: "Refused"
  readonly verb: string
  readonly detail: string
}

const forbidden = /[\r\n\0]/
const masked = "****"

/** True when a value may appear in a command: no CR, LF or NUL. */
export const isSafe = (value: string): boolean => !forbidden.test(value)

const describe = (ch: string): string => (ch === "\r" ? "CR" : ch === "\n" ? "LF" : "NUL")

/** Encodes a command, or refuses it when a part holds CR, LF or NUL. */
export const encode = (command: Command): Encoded | Refused => {
  const revealed: Array<string> = []
  const shown: Array<string> = []
  for (const part of command.parts) {
    const secret = Redacted.isRedacted(part)
    const value = secret ? Redacted.value(part) : part
    const bad = forbidden.exec(value)
    if (bad !== null) {
      return {
        _tag: "Refused",
        verb: command.verb,
        detail:
          `${secret ? "a secret argument" : `"${JSON.stringify(value).slice(1, -1)}"`} of ` +
          `${command.verb} contains ${describe(bad[0])}, which would end the command early`,
      }
    }
    revealed.push(value)
    shown.push(secret ? masked : value)
  }
  return {
    bytes: Buffer.from(`${revealed.join(" ")}\r\n`, "utf8"),
    display: shown.join(" "),
  }
}

/** Shows a command as logs and errors do, secrets masked, without checking it. */
export const display = (command: Command): string =>
  command.parts.map((p) => (Redacted.isRedacted(p) ? masked : p)).join(" ")

const make = (verb: string, ...rest: ReadonlyArray<Part>): Command => ({
  verb,
  parts: [verb, ...rest],
})

export const ehlo = (clientName: string): Command => make("EHLO", clientName)
export const helo = (clientName: string): Command => make("HELO", clientName)
export const startTls: Command = make("STARTTLS")
export const rset: Command = make("RSET")
export const quit: Command = make("QUIT")
export const data: Command = make("DATA")

/** `MAIL FROM:<address>` with ESMTP parameters such as `SIZE=1234`, `BODY=8BITMIME`. */
export const mailFrom = (address: string, parameters: ReadonlyArray<string> = []): Command => ({
  verb: "MAIL",
  parts: [`MAIL FROM:<${address}>`, ...parameters],
})

export const rcptTo = (address: string): Command => ({
  verb: "RCPT",
  parts: [`RCPT TO:<${address}>`],
})

const base64 = (text: string): string => Buffer.from(text, "utf8").toString("base64")

/**
 * `AUTH PLAIN` with its initial response (RFC 4616): the base64 of
 * NUL user NUL password, as a secret. User and password are checked for CR,
 * LF and NUL before they are joined, because inside the base64 a NUL would
 * silently change which part is the user.
 */
export const authPlain = (user: string, password: Redacted.Redacted<string>): Command | Refused => {
  const refused = refuseCredentials(user, password)
  if (refused !== undefined) return refused
  const blob = Redacted.make(base64(`\u0000${user}\u0000${Redacted.value(password)}`))
  return make("AUTH", "PLAIN", blob)
}

/**
 * `AUTH XOAUTH2` with its initial response (core's `xoauth2Response`). A ^A
 * (0x01) in the user or token would move the field borders, so it is
 * refused with CR, LF and NUL.
 */
export const authXoauth2 = (
  user: string,
  accessToken: Redacted.Redacted<string>,
): Command | Refused => {
  const refused = refuseCredentials(user, accessToken, "the access token")
  if (refused !== undefined) return refused
  const response = Transport.xoauth2Response({ user, accessToken })
  if (response === undefined) {
    return {
      _tag: "Refused",
      verb: "AUTH",
      detail: "mailuser or the access token contains a 0x01 control character",
    }
  }
  return make("AUTH", "XOAUTH2", response)
}

/** The empty line that answers an XOAUTH2 error challenge, so the server gives its final reply. */
export const authCancelChallenge: Command = { verb: "AUTH", parts: [""] }

/** The bare `AUTH LOGIN` that starts the two-prompt dialogue. */
export const authLogin: Command = make("AUTH", "LOGIN")

/** A line of the AUTH dialogue: the base64 of `value`, masked in the transcript. */
export const authResponse = (value: Redacted.Redacted<string>): Command => ({
  verb: "AUTH",
  parts: [Redacted.make(base64(Redacted.value(value)))],
})

/** Refuses a user or secret holding CR, LF or NUL, without showing either. */
export const refuseCredentials = (
  user: string,
  secret: Redacted.Redacted<string>,
  secretName = "mailpass",
): Refused | undefined => {
  if (!isSafe(user)) {
    return { _tag: "Refused", verb: "AUTH", detail: "mailuser contains CR, LF or NUL" }
  }
  if (!isSafe(Redacted.value(secret))) {
    return { _tag: "Refused", verb: "AUTH", detail: `${secretName} contains CR, LF or NUL` }
  }
  return undefined
}

export const isRefused = (value: Command | Refused): value is Refused =>
  (value as Refused)._tag === "Refused"
