/**
 * The ConfigSource contract: one layer of settings (spoc.conf, the
 * environment, the Management Server, ...). A source returns, for each key
 * it knows, a value, *inherit* (an empty value: ask the layer below) or
 * *force empty* (`[EMPTY]`), each with its origin, plus the warnings it found
 * while reading (repeated keys, trailing spaces, a cache in use).
 *
 * Failing to read the source at all is a `ConfigSourceError`; a missing key
 * is not an error. Sources do not convert values, and local sources do not
 * validate them: resolution does, once, for every layer, so the rules are the
 * same whatever the source. A remote source may check a response whole before
 * using any of it (so that a bad response falls back to its last good copy),
 * with core's parsers, still passing the values on unconverted.
 *
 * A `ConfigSourcePlugin` is how an application loads a source it was not
 * built with: a module exporting `makeConfigSource`.
 */
import * as Data from "effect/Data"
import type * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type { Origin } from "./Origin.ts"
import { isSecretKey } from "./Settings.ts"

/** What one layer says about one key. */
export type LayerValue =
  | { readonly _tag: "Set"; readonly value: string | Redacted.Redacted<string> }
  | { readonly _tag: "Inherit" }
  | { readonly _tag: "ForceEmpty" }

export interface SourceEntry {
  /** The key as the source spelled it; unknown keys are reported, not dropped. */
  readonly key: string
  readonly value: LayerValue
  readonly origin: Origin
}

export interface ConfigWarning {
  readonly message: string
  readonly origin?: Origin
  readonly key?: string
  readonly fix?: string
}

/** Everything one source said, read once. */
export interface SourceSnapshot {
  /** The layer's name as shown to users: `env`, `spoc.conf`, `management-server`. */
  readonly layer: string
  readonly entries: ReadonlyArray<SourceEntry>
  readonly warnings: ReadonlyArray<ConfigWarning>
}

export interface ConfigSource {
  readonly layer: string
  readonly load: Effect.Effect<SourceSnapshot, ConfigSourceError>
}

/** The source could not be read at all (missing file, bad encoding, refused response). */
export class ConfigSourceError extends Data.TaggedError("ConfigSourceError")<{
  readonly layer: string
  /** The file, variable or URL that could not be read. */
  readonly location: string
  readonly message: string
  readonly fix: string
  readonly cause?: unknown
}> {}

/** `[EMPTY]` in any case, after trimming, forces the empty string. */
export const isForceEmpty = (raw: string): boolean => raw.trim().toUpperCase() === "[EMPTY]"

/**
 * Classifies a raw string the way every source must: empty (after trimming)
 * inherits, `[EMPTY]` forces empty, anything else is a value. Values of
 * secret keys are wrapped in `Redacted` here, the moment they are read.
 */
export const classify = (key: string, raw: string): LayerValue => {
  if (raw.trim() === "") return { _tag: "Inherit" }
  if (isForceEmpty(raw)) return { _tag: "ForceEmpty" }
  return { _tag: "Set", value: isSecretKey(key) ? Redacted.make(raw) : raw }
}

export const entry = (key: string, raw: string, origin: Origin): SourceEntry => ({
  key,
  value: classify(key, raw),
  origin,
})

/** The plain text of a value, for parsing. Never print the result of a secret. */
export const reveal = (value: string | Redacted.Redacted<string>): string =>
  Redacted.isRedacted(value) ? Redacted.value(value) : value

/** What an application tells a plugin when it loads it. */
export interface PluginContext {
  /** The text after `=` in `--source MODULE=ARGUMENT`, such as a file path. */
  readonly argument: string | undefined
  /** The controller's installation folder. */
  readonly spocHome: string
  readonly env: Readonly<Record<string, string | undefined>>
}

/**
 * The shape of a config-source plugin module, as `spoc-mail --source MODULE`
 * loads it: `export const makeConfigSource = (context) => source`.
 */
export interface ConfigSourcePlugin {
  readonly makeConfigSource: (context: PluginContext) => ConfigSource
}
