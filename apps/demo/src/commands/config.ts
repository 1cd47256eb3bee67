/**
 * `spoc-mail config`: the effective settings, one row per key, with the
 * winning layer, its origin and what it shadowed; warnings and problems
 * below. Secrets appear only as set or not set. Exits non-zero when the
 * settings cannot be used to send, so it doubles as a pre-flight check.
 */
import { Origin, SettingsResolution } from "@spoc-mail/core"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { Command, Flag } from "effect/cli"
import { loadSettings } from "../AppSettings.ts"
import { handled } from "../Cli.ts"
import { exitCodes } from "../ExitCodes.ts"
import { sourceFlags } from "../SourceOptions.ts"

/** Control characters made visible, so a value cannot break the table. */
const visible = (text: string): string =>
  text.replace(/[\x00-\x1f\x7f\ufeff]/g, (c) =>
    c === "\r"
      ? "\\r"
      : c === "\n"
        ? "\\n"
        : c === "\t"
          ? "\\t"
          : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  )

const showValue = (value: SettingsResolution.ShownValue): string => {
  switch (value._tag) {
    case "Text":
      return visible(value.text)
    case "Secret":
      return value.set ? "(set)" : "(not set)"
    case "Empty":
      return value.forced ? "(empty: [EMPTY])" : "(empty)"
    case "Unset":
      return "(not set)"
  }
}

/**
 * A value for `--json`: the text, or what kind of nothing it is, so that a
 * value that happens to read "(not set)" cannot be mistaken for none.
 */
const jsonValue = (value: SettingsResolution.ShownValue) => {
  switch (value._tag) {
    case "Text":
      return { value: value.text }
    case "Secret":
      return { value: null, secret: true, set: value.set }
    case "Empty":
      return { value: "", forcedEmpty: value.forced }
    case "Unset":
      return { value: null }
  }
}

/** The resolution as plain data for `--json`; secrets stay set / not set. */
export const toJson = (resolution: SettingsResolution.Resolution) => ({
  layers: resolution.layers,
  settings: Object.fromEntries(
    resolution.provenance.map((p) => [
      p.key,
      {
        ...jsonValue(p.value),
        layer: p.layer,
        origin: Origin.formatLong(p.origin),
        shadowed: p.shadowed.map((s) => ({
          layer: s.layer,
          origin: Origin.formatLong(s.origin),
          ...jsonValue(s.value),
        })),
      },
    ]),
  ),
  warnings: resolution.warnings.map((w) => ({
    layer: w.layer,
    key: w.key,
    origin: w.origin === undefined ? undefined : Origin.formatLong(w.origin),
    message: w.message,
    fix: w.fix,
  })),
  problems: resolution.problems.map((p) => ({
    layer: p.layer,
    key: p.key,
    origin: p.origin === undefined ? undefined : Origin.formatLong(p.origin),
    message: p.message,
    fix: p.fix,
  })),
  sendable: resolution.settings !== undefined,
})

const pad = (text: string, width: number): string =>
  text.length >= width ? text : text + " ".repeat(width - text.length)

/** The resolution as a table for people. */
export const toText = (resolution: SettingsResolution.Resolution): string => {
  const rows = resolution.provenance.map((p) => [
    p.key,
    showValue(p.value),
    p.layer === "default" ? "default" : `${p.layer} (${Origin.format(p.origin)})`,
    p.shadowed.map((s) => `${s.layer}: ${showValue(s.value)}`).join("; "),
  ])
  const widths = [0, 1, 2].map((i) => Math.min(48, Math.max(...rows.map((r) => r[i]!.length))))
  const lines = [
    `Layers, highest first: ${[...resolution.layers, "default"].join(" > ")}`,
    "",
    ...rows.map((r) =>
      [
        pad(r[0]!, widths[0]!),
        pad(r[1]!, widths[1]!),
        pad(r[2]!, widths[2]!),
        r[3] ? `shadows ${r[3]}` : "",
      ]
        .join("  ")
        .trimEnd(),
    ),
  ]
  if (resolution.warnings.length > 0) {
    lines.push("", "Warnings:")
    for (const w of resolution.warnings) lines.push(`  - ${SettingsResolution.formatWarning(w)}`)
  }
  if (resolution.problems.length > 0) {
    lines.push("", "Problems (a message cannot be sent until they are fixed):")
    for (const p of resolution.problems) {
      const where = p.origin === undefined ? p.layer : Origin.formatLong(p.origin)
      lines.push(`  - ${p.key ?? "settings"}: ${p.message} (${where}). Fix: ${p.fix}`)
    }
  }
  return lines.join("\n")
}

export const configCommand = Command.make(
  "config",
  {
    ...sourceFlags,
    json: Flag.Boolean("json").pipe(
      Flag.withDescription("print the resolution as JSON"),
      Flag.withDefault(false),
    ),
  },
  (options) =>
    handled(
      Effect.gen(function* () {
        const { resolution } = yield* loadSettings(options)
        yield* Console.log(
          options.json ? JSON.stringify(toJson(resolution), null, 2) : toText(resolution),
        )
        if (resolution.settings === undefined) process.exitCode = exitCodes.config
      }),
      { json: options.json },
    ),
).pipe(
  Command.withDescription("Show the effective settings, where each came from and what it shadowed"),
)
