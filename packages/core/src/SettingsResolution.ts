/**
 * Settings resolution: stacks the layers the application gives (highest
 * priority first), picks for every key the first layer that sets or forces
 * it, and validates the result in one pass that reports every problem at
 * once, each naming the key, the layer, the origin and the fix.
 *
 * The result explains itself: for every key the winning layer, its origin
 * and the values it shadowed, so `spoc-mail config` can show why a value is
 * what it is. Secrets stay `Redacted` throughout and are described only as
 * set or not set.
 */
import { existsSync } from "node:fs"
import { isAbsolute, join, resolve as resolvePath } from "node:path"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as CipherSuites from "./CipherSuites.ts"
import {
  type ConfigSource,
  type ConfigSourceError,
  type ConfigWarning,
  type LayerValue,
  reveal,
  type SourceSnapshot,
} from "./ConfigSource.ts"
import * as Origin from "./Origin.ts"
import type * as Parsed from "./Parsed.ts"
import {
  catalogue,
  isSecretKey,
  isSettingKey,
  type MailSettings,
  type SettingKey,
  type SettingSpec,
} from "./Settings.ts"
import * as Parse from "./SettingsParser.ts"
import * as TlsVersions from "./TlsVersions.ts"

/** A value as it may be shown: secrets only as set or not set. */
export type ShownValue =
  | { readonly _tag: "Text"; readonly text: string }
  | { readonly _tag: "Secret"; readonly set: boolean }
  | { readonly _tag: "Empty"; readonly forced: boolean }
  | { readonly _tag: "Unset" }

export interface LayerOpinion {
  readonly layer: string
  readonly origin: Origin.Origin
  readonly value: ShownValue
}

/** Why a key has its effective value. */
export interface Provenance {
  readonly key: SettingKey
  /** The winning layer's name, or `default`. */
  readonly layer: string
  readonly origin: Origin.Origin
  readonly value: ShownValue
  /** Lower layers (and the default) whose values this one hides. */
  readonly shadowed: ReadonlyArray<LayerOpinion>
}

export interface ConfigProblem {
  readonly key: string | undefined
  readonly layer: string
  readonly origin: Origin.Origin | undefined
  readonly message: string
  readonly fix: string
}

export interface LayeredWarning extends ConfigWarning {
  readonly layer: string
}

export interface Resolution {
  /** Layer names, highest priority first. */
  readonly layers: ReadonlyArray<string>
  readonly provenance: ReadonlyArray<Provenance>
  readonly warnings: ReadonlyArray<LayeredWarning>
  readonly problems: ReadonlyArray<ConfigProblem>
  /** The typed settings; `undefined` when any problem stops sending. */
  readonly settings: MailSettings | undefined
  /**
   * The trust store these layers name, available even when other settings
   * have problems: an application needs it to reach a remote source.
   */
  readonly trustStore: MailSettings["trustStore"]
}

/** The settings cannot be used: every problem, each with where it came from and the fix. */
export class ConfigError extends Data.TaggedError("ConfigError")<{
  readonly problems: ReadonlyArray<ConfigProblem>
}> {
  override get message(): string {
    return this.problems.map(formatProblem).join("\n")
  }
}

export const formatProblem = (problem: ConfigProblem): string => {
  const where =
    problem.origin === undefined
      ? problem.layer
      : `${problem.layer}, ${Origin.formatLong(problem.origin)}`
  const key = problem.key === undefined ? "" : `${problem.key}: `
  return `${key}${problem.message} (${where}). Fix: ${problem.fix}`
}

/** A warning on one line: what, where (file and line, variable, URL), and the fix. */
export const formatWarning = (warning: LayeredWarning): string => {
  const where = warning.origin === undefined ? warning.layer : Origin.formatLong(warning.origin)
  const fix = warning.fix === undefined ? "" : `. Fix: ${warning.fix}`
  return `${warning.message} (${where})${fix}`
}

export interface ResolveOptions {
  /** The controller's installation folder; relative trust store paths start here. */
  readonly spocHome?: string
  /** Checks whether a file exists; replaceable in tests. */
  readonly exists?: (path: string) => boolean
}

interface Winner {
  readonly layer: string
  readonly origin: Origin.Origin
  readonly value: LayerValue | undefined
}

const show = (key: string, value: LayerValue | undefined): ShownValue => {
  if (value === undefined) return { _tag: "Unset" }
  if (value._tag === "ForceEmpty") return { _tag: "Empty", forced: true }
  if (value._tag === "Inherit") return { _tag: "Empty", forced: false }
  if (isSecretKey(key)) return { _tag: "Secret", set: true }
  return { _tag: "Text", text: reveal(value.value) }
}

const defaultValue = (spec: SettingSpec): LayerValue | undefined =>
  spec.default === undefined || spec.default === ""
    ? undefined
    : {
        _tag: "Set",
        value: spec.kind === "secret" ? Redacted.make(spec.default) : spec.default,
      }

const closestKey = (key: string): SettingKey | undefined => {
  let best: SettingKey | undefined
  let bestDistance = Infinity
  for (const spec of catalogue) {
    const d = CipherSuites.editDistance(key.toLowerCase(), spec.key.toLowerCase())
    if (d < bestDistance) {
      bestDistance = d
      best = spec.key
    }
  }
  return bestDistance <= Math.max(2, Math.floor(key.length / 5)) ? best : undefined
}

/** A key in quotes, invisible characters (a second BOM, a tab) shown as escapes. */
const quoted = (key: string): string =>
  `"${key.replace(/[\x00-\x1f\x7f\u200b-\u200f\ufeff]/g, (c) => {
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`
  })}"`

/** Picks the winner of every key; a pure function of the snapshots. */
const pickWinners = (
  snapshots: ReadonlyArray<SourceSnapshot>,
): { winners: Map<SettingKey, Winner>; provenance: Array<Provenance> } => {
  const winners = new Map<SettingKey, Winner>()
  const provenance: Array<Provenance> = []
  for (const spec of catalogue) {
    const opinions: Array<{ layer: string; origin: Origin.Origin; value: LayerValue }> = []
    for (const snapshot of snapshots) {
      // Within one layer the last entry for a key wins (sources warn about repeats).
      const entries = snapshot.entries.filter((e) => e.key === spec.key)
      const last = entries[entries.length - 1]
      if (last !== undefined && last.value._tag !== "Inherit") {
        opinions.push({ layer: snapshot.layer, origin: last.origin, value: last.value })
      }
    }
    const fallback = defaultValue(spec)
    const winner: Winner = opinions[0] ?? {
      layer: "default",
      origin: Origin.defaults,
      value: fallback,
    }
    const shadowed: Array<LayerOpinion> = opinions.slice(1).map((o) => ({
      layer: o.layer,
      origin: o.origin,
      value: show(spec.key, o.value),
    }))
    if (opinions.length > 0 && fallback !== undefined) {
      shadowed.push({ layer: "default", origin: Origin.defaults, value: show(spec.key, fallback) })
    }
    winners.set(spec.key, winner)
    provenance.push({
      key: spec.key,
      layer: winner.layer,
      origin: winner.origin,
      value: show(spec.key, winner.value),
      shadowed,
    })
  }
  return { winners, provenance }
}

/**
 * Resolves snapshots, given highest priority first. Never fails: problems
 * are returned in the resolution, and `settings` is present only when there
 * are none.
 */
export const resolve = (
  snapshots: ReadonlyArray<SourceSnapshot>,
  options: ResolveOptions = {},
): Resolution => {
  const warnings: Array<LayeredWarning> = []
  const problems: Array<ConfigProblem> = []
  for (const snapshot of snapshots) {
    for (const warning of snapshot.warnings) warnings.push({ ...warning, layer: snapshot.layer })
    for (const entry of snapshot.entries) {
      if (isSettingKey(entry.key)) continue
      const suggestion = closestKey(entry.key)
      warnings.push({
        layer: snapshot.layer,
        key: entry.key,
        origin: entry.origin,
        message: `unknown key ${quoted(entry.key)} is ignored`,
        fix: suggestion === undefined ? "remove it" : `did you mean ${suggestion}?`,
      })
    }
  }

  const { winners, provenance } = pickWinners(snapshots)
  const winner = (key: SettingKey): Winner => winners.get(key)!
  const text = (key: SettingKey): string | undefined => {
    const value = winner(key).value
    return value === undefined || value._tag !== "Set" ? undefined : reveal(value.value)
  }

  /** Parses the winning value of a key, recording a problem when it does not parse. */
  const parse = <A>(key: SettingKey, parser: (raw: string) => Parsed.Parsed<A>): A | undefined => {
    const raw = text(key)
    if (raw === undefined) return undefined
    const parsed = parser(raw)
    if (parsed.ok) return parsed.value
    const w = winner(key)
    problems.push({
      key,
      layer: w.layer,
      origin: w.origin,
      message: parsed.problem,
      fix: parsed.fix,
    })
    return undefined
  }
  const required = <A>(key: SettingKey, value: A | undefined): A | undefined => {
    if (value === undefined && text(key) === undefined) {
      const w = winner(key)
      problems.push({
        key,
        layer: w.layer,
        origin: w.value?._tag === "ForceEmpty" ? w.origin : undefined,
        message: "is not set, and a message cannot be sent without it",
        fix: `set ${key} in spoc.conf, the Management Server or SPOC_${envName(key)}`,
      })
    }
    return value
  }

  const mailserver = required("mailserver", parse("mailserver", Parse.serverAddress))
  const mailserverbackup = parse("mailserverbackup", Parse.serverAddress)
  const mailfrom = required("mailfrom", parse("mailfrom", Parse.mailbox))
  const user = parse("mailuser", Parse.refuseControlCharacters)
  const password = parse("mailpass", Parse.refuseControlCharacters)
  // Undefined when the value is refused: the warnings must not take it for NONE.
  const parsedEncryption = parse("mailSmtpEncryption", Parse.encryption)
  const encryption = parsedEncryption ?? "NONE"
  const port = parse("mailSmtpPort", Parse.port)
  const connectionTimeoutMs = parse("mailSmtpConnectionTimeout", Parse.milliseconds)
  const commandTimeoutMs = parse("mailSmtpTimeout", Parse.milliseconds)
  const tlsVersions = parse("cryptographicProtocolsForOutboundCommunication", Parse.tlsVersions)
  const allowCustom = parse("allowCustomCipherSuitesForOutboundCommunication", Parse.boolean)
  const trustPath = parse("trustStorePath", Parse.refuseControlCharacters)
  const trustPassword = parse("trustStorePassword", Parse.refuseControlCharacters) ?? ""
  const trustType = parse("trustStoreType", Parse.trustStoreType) ?? "auto"

  // The custom list matters only when it is allowed; otherwise its faults are warnings.
  const cipherKey = "customCipherSuitesForOutboundCommunication"
  let cipherSuites: CipherSuites.CipherSuiteList | undefined
  if (allowCustom === true) {
    cipherSuites = parse(cipherKey, Parse.cipherSuites)
    if (cipherSuites !== undefined && tlsVersions !== undefined) {
      const usable = CipherSuites.checkUsable(cipherSuites, tlsVersions)
      if (!usable.ok) {
        const w = winner(cipherKey)
        problems.push({
          key: cipherKey,
          layer: w.layer,
          origin: w.origin,
          message: usable.problem,
          fix: usable.fix,
        })
      } else {
        const narrowed = CipherSuites.narrowRange(cipherSuites, tlsVersions)
        const dropped = TlsVersions.versionsIn(tlsVersions).filter(
          (v) => narrowed === undefined || !TlsVersions.includes(narrowed, v),
        )
        if (dropped.length > 0) {
          const w = winner(cipherKey)
          warnings.push({
            layer: w.layer,
            key: cipherKey,
            origin: w.origin,
            message:
              `the custom cipher list has no suite for ${dropped.join(", ")}, so ` +
              `${dropped.length === 1 ? "that version is" : "those versions are"} not used`,
            fix:
              "add suites for those versions to customCipherSuitesForOutboundCommunication, " +
              "or remove them from cryptographicProtocolsForOutboundCommunication",
          })
        }
      }
    }
  } else if (winner(cipherKey).layer !== "default") {
    const w = winner(cipherKey)
    warnings.push({
      layer: w.layer,
      key: cipherKey,
      origin: w.origin,
      message: "custom cipher suites are set but not used",
      fix: "set allowCustomCipherSuitesForOutboundCommunication to true to use them",
    })
  }

  // Credentials in clear text only by an explicit choice: a misspelt or missing
  // mailSmtpEncryption must not downgrade to NONE and send the password.
  const encryptionWinner = winner("mailSmtpEncryption")
  if (user !== undefined && user !== "" && encryptionWinner.layer === "default") {
    const userWinner = winner("mailuser")
    problems.push({
      key: "mailSmtpEncryption",
      layer: userWinner.layer,
      origin: userWinner.origin,
      message:
        "credentials are set but no encryption mode is: the password would cross the " +
        "network in clear text",
      fix:
        "set mailSmtpEncryption to SSL_TLS (port 465) or STARTTLS_REQUIRED (port 587); " +
        "set it to NONE only to send the password in clear on purpose",
    })
  }

  warnings.push(...crossKeyWarnings(winner, parsedEncryption, port, user))
  if (mailserverbackup !== undefined && mailserverbackup.host === mailserver?.host) {
    const w = winner("mailserverbackup")
    warnings.push({
      layer: w.layer,
      key: "mailserverbackup",
      origin: w.origin,
      message: "the backup server is the primary server: a failover would try it again",
      fix: "name a different server, or clear mailserverbackup with [EMPTY]",
    })
  }

  const spocHome = options.spocHome ?? process.cwd()
  const exists = options.exists ?? existsSync
  const defaultStore = join(spocHome, "conf", "ssl-truststore")
  const storePath =
    trustPath !== undefined
      ? isAbsolute(trustPath) || /^\\\\/.test(trustPath)
        ? trustPath
        : resolvePath(spocHome, trustPath)
      : exists(defaultStore)
        ? defaultStore
        : undefined

  const trustStore: MailSettings["trustStore"] = {
    path: storePath,
    password: Redacted.make(trustPassword),
    type: trustType,
  }

  const settings: MailSettings | undefined =
    problems.length > 0 || mailserver === undefined || mailfrom === undefined
      ? undefined
      : {
          mailserver,
          mailserverbackup,
          mailfrom,
          credentials:
            user === undefined || user === ""
              ? undefined
              : { user, password: Redacted.make(password ?? "") },
          encryption,
          port: port ?? 25,
          connectionTimeoutMs: connectionTimeoutMs ?? 10_000,
          commandTimeoutMs: commandTimeoutMs ?? 10_000,
          tlsVersions: tlsVersions ?? { min: "TLSv1.2", max: "TLSv1.2" },
          allowCustomCipherSuites: allowCustom ?? false,
          cipherSuites: cipherSuites ?? defaultCipherSuites(),
          trustStore,
        }

  return {
    layers: snapshots.map((s) => s.layer),
    // The default trust store is a path found on disk, not a catalogue value: show it.
    provenance:
      trustPath === undefined && storePath !== undefined
        ? provenance.map((p) =>
            p.key === "trustStorePath" ? { ...p, value: { _tag: "Text", text: storePath } } : p,
          )
        : provenance,
    warnings,
    problems,
    settings,
    trustStore,
  }
}

/** The built-in list, parsed once; it is part of the catalogue, so it always parses. */
const defaultCipherSuites = (): CipherSuites.CipherSuiteList => {
  const parsed = CipherSuites.parse(
    catalogue.find((s) => s.key === "customCipherSuitesForOutboundCommunication")!.default!,
  )
  if (!parsed.ok) throw new Error(`the default cipher list does not parse: ${parsed.problem}`)
  return parsed.value
}

const crossKeyWarnings = (
  winner: (key: SettingKey) => Winner,
  /** Undefined when the value was refused: no warning takes it for NONE. */
  encryption: string | undefined,
  port: number | undefined,
  user: string | undefined,
): Array<LayeredWarning> => {
  const warnings: Array<LayeredWarning> = []
  const userWinner = winner("mailuser")
  const passWinner = winner("mailpass")
  if (user !== undefined && user !== "" && userWinner.layer !== passWinner.layer) {
    warnings.push({
      layer: userWinner.layer,
      key: "mailuser",
      origin: userWinner.origin,
      message:
        `mailuser is set by ${userWinner.layer} but mailpass comes from ${passWinner.layer}` +
        (passWinner.value === undefined ? " (not set)" : ""),
      fix: "set mailpass in the same place as mailuser, or clear mailuser with [EMPTY]",
    })
  }
  const explicitNone = encryption === "NONE" && winner("mailSmtpEncryption").layer !== "default"
  if (explicitNone && user !== undefined && user !== "") {
    warnings.push({
      layer: winner("mailSmtpEncryption").layer,
      key: "mailSmtpEncryption",
      origin: winner("mailSmtpEncryption").origin,
      message:
        "credentials are set and encryption is NONE: the password will cross the " +
        "network in clear text",
      fix: "use SSL_TLS (port 465) or STARTTLS_REQUIRED (port 587)",
    })
  }
  const mismatch =
    (port === 465 && encryption?.startsWith("STARTTLS") === true) ||
    (port === 587 && encryption === "SSL_TLS")
  if (mismatch) {
    warnings.push({
      layer: winner("mailSmtpPort").layer,
      key: "mailSmtpPort",
      origin: winner("mailSmtpPort").origin,
      message:
        `port ${port} usually speaks ${port === 465 ? "SSL_TLS" : "STARTTLS"}, ` +
        `not ${encryption}`,
      fix: "check the pair with `spoc-mail probe`",
    })
  }
  return warnings
}

/** `mailSmtpPort` → `MAIL_SMTP_PORT`: the environment name without the `SPOC_` prefix. */
export const envName = (key: string): string =>
  key.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase()

/** Loads every source (highest priority first) and resolves them. */
export const load = (
  sources: ReadonlyArray<ConfigSource>,
  options: ResolveOptions = {},
): Effect.Effect<Resolution, ConfigSourceError> =>
  Effect.map(
    Effect.forEach(sources, (source) => source.load),
    (snapshots) => resolve(snapshots, options),
  )

/** The settings of a resolution, or every problem that stops sending. */
export const settingsOf = (resolution: Resolution): Effect.Effect<MailSettings, ConfigError> =>
  resolution.settings !== undefined
    ? Effect.succeed(resolution.settings)
    : Effect.fail(new ConfigError({ problems: resolution.problems }))
