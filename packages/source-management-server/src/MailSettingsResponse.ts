/**
 * The body of `GET /api/v1/controllers/<id>/mail-settings`:
 * `{ schemaVersion: 1, revision, settings: { key: value } }` as JSON or YAML.
 *
 * The whole body is decoded and checked before any of it is used, and one
 * bad part refuses all of it: the exact shape (no other fields, schema
 * version 1), a printable revision, setting names that are names, values
 * that are text, finite numbers or booleans, no CR, LF or NUL in a value,
 * limits on the number of settings and the length of a value, and the value
 * of each known setting parsed by core's parser for its kind (a port from 1
 * to 65535, a known encryption mode, a host, a mailbox, a cipher list...;
 * `internal/SettingValueCheck.ts`). A server that sends half-good settings
 * is not trusted for the other half.
 *
 * Empty values and `[EMPTY]` are accepted for every key (inherit, force
 * empty). Unknown keys are kept unchecked, so that resolution can warn about
 * them with a did-you-mean; rules between keys stay with resolution.
 *
 * Values become strings for the ConfigSource contract: numbers and booleans
 * as JavaScript writes them (`465`, `false`).
 */
import { ConfigSource, type Origin } from "@spoc-mail/core"
import { LineCounter, parseDocument } from "yaml"
import { checkValue } from "./internal/SettingValueCheck.ts"

export type SettingValue = string | number | boolean

/** A checked response. */
export interface MailSettingsResponse {
  readonly schemaVersion: 1
  readonly revision: string
  readonly settings: Readonly<Record<string, SettingValue>>
}

/** Why a body was refused, and what to tell the people who run the server. */
export interface Refusal {
  readonly problem: string
  readonly fix: string
  /** The setting whose value was refused, when one was. */
  readonly key?: string
  /** The refused response's revision, when it got far enough to have one. */
  readonly revision?: string
}

export type Checked<A> =
  { readonly ok: true; readonly value: A } | { readonly ok: false; readonly refusal: Refusal }

/** The most settings one response may hold; the catalogue has fifteen. */
export const maxSettings = 256

/** The longest value accepted; a mail setting is far shorter. */
export const maxValueLength = 8192

const settingKey = /^[A-Za-z][A-Za-z0-9_.-]{0,127}$/
const revisionPattern = /^[\x21-\x7e]{1,128}$/
const controlCharacters = /[\r\n\0]/

const ok = <A>(value: A): Checked<A> => ({ ok: true, value })
const refuse = (problem: string, fix: string): Checked<never> => ({
  ok: false,
  refusal: { problem, fix },
})

const serverFix = "the Management Server must send { schemaVersion: 1, revision, settings }"

/** The media types understood, by the part before any `;`. */
const formats: Readonly<Record<string, "json" | "yaml">> = {
  "application/json": "json",
  "application/yaml": "yaml",
  "application/x-yaml": "yaml",
  "text/yaml": "yaml",
  "text/x-yaml": "yaml",
}

/** Decodes a body by its `Content-Type` and checks it whole. */
export const decode = (
  body: Uint8Array,
  contentType: string | undefined,
): Checked<MailSettingsResponse> => {
  const [mediaType = "", ...parameters] = (contentType ?? "").split(";").map((s) => s.trim())
  const format = formats[mediaType.toLowerCase()]
  if (format === undefined) {
    return refuse(
      contentType === undefined
        ? "the response has no Content-Type"
        : `the response is ${clip(mediaType)}, not JSON or YAML`,
      "check that the URL points at the Management Server and not at a proxy or login page",
    )
  }
  const charset = parameters
    .find((p) => p.toLowerCase().startsWith("charset="))
    ?.slice(8)
    .replace(/"/g, "")
  if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
    return refuse(`the response is in ${clip(charset)}`, "the Management Server must send UTF-8")
  }
  let text: string
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(body)
  } catch {
    return refuse("the response is not valid UTF-8", "the Management Server must send UTF-8")
  }
  return format === "json" ? fromJson(text) : fromYaml(text)
}

const fromJson = (text: string): Checked<MailSettingsResponse> => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    // The parser's message may quote the body, which holds mailpass: say only that it failed.
    return refuse("the response is not valid JSON", serverFix)
  }
  return check(value)
}

const fromYaml = (text: string): Checked<MailSettingsResponse> => {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false })
  const error = doc.errors[0]
  // Only the error's code and line: its message may quote the body, which holds mailpass.
  if (error !== undefined) {
    const line = lineCounter.linePos(error.pos[0]).line
    return refuse(`the response is not valid YAML (${error.code} at line ${line})`, serverFix)
  }
  let value: unknown
  try {
    value = doc.toJS({ maxAliasCount: 50 })
  } catch {
    return refuse("the response is not valid YAML (too many aliases)", serverFix)
  }
  return check(value)
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" &&
  value !== null &&
  !Array.isArray(value) &&
  Object.getPrototypeOf(value) === Object.prototype

/** Checks a decoded body whole; nothing of it is returned unless everything is right. */
export const check = (value: unknown): Checked<MailSettingsResponse> => {
  if (!isPlainObject(value)) return refuse("the response is not an object", serverFix)
  const fields = Object.keys(value)
  const unknown = fields.filter((f) => !["schemaVersion", "revision", "settings"].includes(f))
  if (unknown.length > 0) {
    return refuse(`the response has unknown fields: ${unknown.map(clip).join(", ")}`, serverFix)
  }
  if (value.schemaVersion !== 1) {
    return refuse(
      `schemaVersion is ${clip(JSON.stringify(value.schemaVersion) ?? "missing")}, not 1`,
      "this spoc-mail understands schemaVersion 1; update spoc-mail or the Management Server",
    )
  }

  const revision =
    typeof value.revision === "number" && Number.isSafeInteger(value.revision)
      ? String(value.revision)
      : value.revision
  if (typeof revision !== "string" || !revisionPattern.test(revision)) {
    return refuse("the revision is missing or not printable text", serverFix)
  }

  if (!isPlainObject(value.settings)) return refuse("settings is not an object", serverFix)
  const entries = Object.entries(value.settings)
  if (entries.length > maxSettings) {
    return refuse(`there are ${entries.length} settings, more than ${maxSettings}`, serverFix)
  }
  const settings: Record<string, SettingValue> = {}
  for (const [key, raw] of entries) {
    if (!settingKey.test(key)) {
      return refuse(`"${clip(key)}" is not a setting name`, "use the spoc.conf names")
    }
    const refuseValue = (problem: string, fix: string): Checked<never> => ({
      ok: false,
      refusal: { problem: `the value of ${key} ${problem}`, fix, key, revision },
    })
    if (typeof raw === "string") {
      if (controlCharacters.test(raw)) {
        return refuseValue(
          "contains a line break or NUL character",
          "write the value on one line in the Management Server",
        )
      }
      if (raw.length > maxValueLength) {
        return refuseValue(`is longer than ${maxValueLength} characters`, serverFix)
      }
    } else if (typeof raw === "number") {
      if (!Number.isFinite(raw)) return refuseValue("is not a number", serverFix)
    } else if (typeof raw !== "boolean") {
      const kind = raw === null ? "null" : Array.isArray(raw) ? "a list" : "an object"
      return refuseValue(`is ${kind}`, "each value must be text, a number or true/false")
    }
    const invalid = checkValue(key, String(raw))
    if (invalid !== undefined) {
      return refuseValue(
        `is refused: ${invalid.problem}`,
        `correct ${key} on the Management Server: ${invalid.fix}`,
      )
    }
    settings[key] = raw as SettingValue
  }
  return ok({ schemaVersion: 1, revision, settings })
}

/** The source entries of a checked response; secrets come back `Redacted`. */
export const toEntries = (
  response: MailSettingsResponse,
  origin: Origin.Origin,
): ReadonlyArray<ConfigSource.SourceEntry> =>
  Object.entries(response.settings).map(([key, value]) =>
    ConfigSource.entry(key, String(value), origin),
  )

/** Server text in a message: printable, short. */
const clip = (text: string): string => {
  const printable = text.replace(/[\x00-\x1f\x7f]/g, "?")
  return printable.length > 80 ? `${printable.slice(0, 77)}...` : printable
}
