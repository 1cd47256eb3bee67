/**
 * Checks the value a response gives for a known setting with core's parser
 * for the setting's kind: the same parser resolution applies later, so that
 * a port of 70000, an unknown encryption mode, a timeout of `46five` or a
 * malformed host refuses the whole response before any of it is used,
 * instead of becoming a resolution problem on half-good settings.
 *
 * It only checks: the value stays the string the server sent, as the
 * ConfigSource contract wants. Empty values (inherit) and `[EMPTY]` (force
 * empty) are not parsed. Unknown keys are not checked here: resolution warns
 * about them with a did-you-mean. Rules between keys (cipher suites against
 * TLS versions, credentials against encryption) stay with resolution; a
 * custom cipher list is checked even when it is not allowed, since a list
 * the parser refuses is a mistake on the server either way.
 *
 * A problem with a secret's value never quotes the value.
 */
import { CipherSuites, ConfigSource, type Parsed, Settings, SettingsParser } from "@spoc-mail/core"

/** A parser per kind; a kind added to the catalogue fails the typecheck until it is listed. */
const parsers: { readonly [K in Settings.SettingKind]: (raw: string) => Parsed.Parsed<unknown> } = {
  host: SettingsParser.serverAddress,
  optionalHost: SettingsParser.serverAddress,
  mailbox: SettingsParser.mailbox,
  text: SettingsParser.refuseControlCharacters,
  secret: SettingsParser.refuseControlCharacters,
  encryption: SettingsParser.encryption,
  port: SettingsParser.port,
  milliseconds: SettingsParser.milliseconds,
  tlsVersions: SettingsParser.tlsVersions,
  boolean: SettingsParser.boolean,
  cipherSuites: CipherSuites.parse,
  path: SettingsParser.refuseControlCharacters,
  trustStoreType: SettingsParser.trustStoreType,
}

/** Why a value was refused: the problem (never quoting a secret) and the fix. */
export interface ValueProblem {
  readonly problem: string
  readonly fix: string
}

/** `undefined` when the value is usable for the key, or the key is not a setting. */
export const checkValue = (key: string, raw: string): ValueProblem | undefined => {
  if (!Settings.isSettingKey(key)) return undefined
  if (raw.trim() === "" || ConfigSource.isForceEmpty(raw)) return undefined
  const parsed = parsers[Settings.specOf(key).kind](raw)
  if (parsed.ok) return undefined
  return {
    problem: Settings.isSecretKey(key)
      ? "the value cannot be used (not shown: it is a secret)"
      : shown(parsed.problem),
    fix: parsed.fix,
  }
}

/** A parser's problem quotes the value, which is printable but may be long. */
const shown = (problem: string): string => {
  const printable = problem.replace(/[\x00-\x1f\x7f]/g, "?")
  return printable.length > 200 ? `${printable.slice(0, 197)}...` : printable
}
