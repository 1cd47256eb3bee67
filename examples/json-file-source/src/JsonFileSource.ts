/**
 * An example config source: settings from a JSON file such as
 *
 * ```json
 * { "mailserver": "smtp.example.com", "mailSmtpPort": "587", "mailpass": "" }
 * ```
 *
 * one layer named `json-file`, with origins `settings.json:LINE`. Values must
 * be JSON strings and are kept byte for byte; core decides the rest (empty
 * inherits, `[EMPTY]` forces empty, secrets `Redacted`, unknown keys warned
 * about, every value validated). A file that is missing, is not JSON, is not
 * an object or holds a value that is not a string fails the load with a
 * `ConfigSourceError` naming the file and the fix.
 *
 * It is the source that docs/writing-a-config-source.md builds step by step.
 */
import { readFile } from "node:fs/promises"
import { ConfigSource, Origin } from "@spoc-mail/core"
import * as Effect from "effect/Effect"

export interface JsonFileSourceOptions {
  /** The JSON file to read on every load. */
  readonly path: string
  /** The layer's name as users see it; default `json-file`. */
  readonly layer?: string
}

/** The line of the last `"key":` in the text; JSON.parse lets the last repeat win too. */
const lineOf = (text: string, key: string): number => {
  const quoted = JSON.stringify(key).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
  const matches = [...text.matchAll(new RegExp(`${quoted}\\s*:`, "g"))]
  const at = matches.at(-1)?.index ?? 0
  return text.slice(0, at).split("\n").length
}

/** A JSON-file layer reading `options.path` on every load. */
export const make = (options: JsonFileSourceOptions): ConfigSource.ConfigSource => {
  const layer = options.layer ?? "json-file"
  const fail = (message: string, fix: string, cause?: unknown) =>
    new ConfigSource.ConfigSourceError({
      layer,
      location: options.path,
      message: `${options.path}: ${message}`,
      fix,
      ...(cause === undefined ? {} : { cause }),
    })

  return {
    layer,
    load: Effect.gen(function* () {
      const text = yield* Effect.tryPromise({
        try: () => readFile(options.path, "utf8"),
        catch: (cause) =>
          fail(
            `cannot be read (${(cause as NodeJS.ErrnoException).code ?? String(cause)})`,
            "check the path and that the file is readable",
            cause,
          ),
      })
      const parsed = yield* Effect.try({
        try: () => JSON.parse(text) as unknown,
        catch: (cause) =>
          fail(`is not valid JSON (${(cause as Error).message})`, "fix the JSON syntax", cause),
      })
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
        return yield* fail("is not a JSON object", 'write { "mailserver": "smtp.example.com" }')
      }

      const entries: Array<ConfigSource.SourceEntry> = []
      for (const [key, raw] of Object.entries(parsed)) {
        const origin = Origin.file(options.path, lineOf(text, key))
        if (typeof raw !== "string") {
          return yield* fail(
            `the value of ${key} (line ${origin.line}) is not a string`,
            // Never echo the value: it may be a password.
            'write every value as a JSON string, in double quotes: "mailSmtpPort": "587"',
          )
        }
        // `entry` classifies the raw text: empty inherits, [EMPTY] forces, secrets Redacted.
        entries.push(ConfigSource.entry(key, raw, origin))
      }
      return { layer, entries, warnings: [] }
    }),
  }
}
