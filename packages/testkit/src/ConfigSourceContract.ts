/**
 * The ConfigSource contract suite: the behaviour every config source must
 * have, whoever wrote it, checked through the source's own storage (a file,
 * variables, a server) and through core resolution on top.
 *
 * A source passes when it keeps every byte of a value, lets empty inherit and
 * `[EMPTY]` force empty, returns secrets `Redacted`, gives every entry an
 * origin, reports keys it does not know instead of dropping them, loads the
 * same way twice, treats a missing key as no error and an unreadable store as
 * a `ConfigSourceError`.
 *
 * The suite does not check what is particular to one source (warnings about
 * its syntax, how it finds its store); each source tests that itself. Leading
 * and trailing blanks of a value are out of the contract: a source may trim
 * them (spoc.conf does), since no setting keeps them.
 *
 * `configSourceContract` registers the checks as vitest tests; the checks are
 * also exported one by one (`configSourceChecks`) for other test runners.
 */
import { inspect } from "node:util"
import { ConfigSource, Origin, Settings, SettingsResolution } from "@spoc-mail/core"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { afterAll, describe, it } from "vitest"

/** A value now, later, or from an effect that needs no services. */
export type Awaitable<A> = A | Promise<A> | Effect.Effect<A, unknown>

/** How the suite builds the source under test. */
export interface ConfigSourceHarness {
  /**
   * A source whose store holds exactly these settings: write each raw string
   * where a user of the source would (a line of a file, a variable, a field
   * of a response), under the key as the catalogue spells it. Keys may be
   * unknown ones (the suite checks they are reported); values are never
   * converted by the suite.
   */
  readonly make: (
    settings: Readonly<Record<string, string>>,
  ) => Awaitable<ConfigSource.ConfigSource>
  /** A source whose store cannot be read at all: a missing file, a refused connection. */
  readonly makeUnreadable: () => Awaitable<ConfigSource.ConfigSource>
  /** Called once after the suite: remove temporary files, stop servers. */
  readonly cleanup?: () => void | Promise<void>
}

/** One check of the contract; it rejects with a message saying what the source got wrong. */
export interface ConfigSourceCheck {
  readonly name: string
  readonly run: (harness: ConfigSourceHarness) => Promise<void>
}

/** The contract was broken: the message says how. */
export class ContractViolation extends Error {
  override readonly name = "ContractViolation"
}

function violated(message: string): never {
  throw new ContractViolation(message)
}

const settle = async <A>(value: Awaitable<A>): Promise<A> =>
  Effect.isEffect(value) ? Effect.runPromise(value as Effect.Effect<A, unknown>) : await value

const snapshotOf = async (
  harness: ConfigSourceHarness,
  settings: Readonly<Record<string, string>>,
): Promise<{ source: ConfigSource.ConfigSource; snapshot: ConfigSource.SourceSnapshot }> => {
  const source = await settle(harness.make(settings))
  const result = await Effect.runPromise(Effect.result(source.load))
  if (result._tag === "Failure") {
    return violated(
      `load failed for settings ${Object.keys(settings).join(", ") || "(none)"}: ` +
        `${result.failure.message} (fix given: ${result.failure.fix})`,
    )
  }
  const snapshot = result.success
  if (snapshot.layer !== source.layer) {
    violated(`the snapshot's layer "${snapshot.layer}" differs from the source's "${source.layer}"`)
  }
  return { source, snapshot }
}

/** The last entry for a key, as resolution takes it. */
const entryFor = (snapshot: ConfigSource.SourceSnapshot, key: string) =>
  snapshot.entries.filter((e) => e.key === key).at(-1)

const describeValue = (value: ConfigSource.LayerValue | undefined): string =>
  value === undefined
    ? "no entry"
    : value._tag === "Set"
      ? Redacted.isRedacted(value.value)
        ? "a Redacted value"
        : JSON.stringify(value.value)
      : value._tag

/** A plain form of a snapshot for comparison: secrets revealed, in the test only. */
const comparable = (snapshot: ConfigSource.SourceSnapshot): unknown => ({
  layer: snapshot.layer,
  entries: snapshot.entries.map((e) => ({
    key: e.key,
    // A cached copy ages between loads; where it came from must not change.
    origin: e.origin._tag === "Cache" ? { ...e.origin, ageMs: 0 } : e.origin,
    value:
      e.value._tag === "Set"
        ? { set: ConfigSource.reveal(e.value.value), redacted: Redacted.isRedacted(e.value.value) }
        : e.value._tag,
  })),
  warnings: snapshot.warnings,
})

/** Lower case letters and digits only: `SPOC_MAIL_SMTP_PORT` and `mailSmtpPort` meet. */
const squash = (text: string): string => text.toLowerCase().replace(/[^a-z0-9]/g, "")

/**
 * Values whose every byte must survive: comment and separator characters,
 * backslashes, quotes, words that look like other types, all printable ASCII,
 * non-ASCII letters and characters outside the BMP, blanks inside a value.
 */
export const faithfulValues: ReadonlyArray<string> = [
  "pa#ss;w0rd!",
  "#starts with a hash; and = equals: colon",
  "!starts with a bang",
  "\\\\fileserver\\certs\\ssl-truststore",
  "C:\\new\\table\\x41 $HOME %USERPROFILE% ${SPOC_HOME}",
  "true",
  "0465",
  "null",
  '"svc print"',
  "it's \"half' quoted",
  "[EMPTY] is only special alone",
  "Tiskové služby <print-services@corp.example.com>",
  "emoji 😀 and clef 𝄞",
  "two  spaces\tand a tab inside",
  Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => String.fromCharCode(0x21 + i)).join(""),
]

const check = (name: string, run: ConfigSourceCheck["run"]): ConfigSourceCheck => ({ name, run })

/** Every check of the contract, in the order `configSourceContract` runs them. */
export const configSourceChecks: ReadonlyArray<ConfigSourceCheck> = [
  check("keeps every byte of a value", async (harness) => {
    for (const raw of faithfulValues) {
      const { snapshot } = await snapshotOf(harness, { mailuser: raw })
      const found = entryFor(snapshot, "mailuser")?.value
      if (found?._tag !== "Set" || ConfigSource.reveal(found.value) !== raw) {
        violated(`mailuser = ${JSON.stringify(raw)} came back as ${describeValue(found)}`)
      }
      const shown = SettingsResolution.resolve([snapshot]).provenance.find(
        (p) => p.key === "mailuser",
      )?.value
      if (shown?._tag !== "Text" || shown.text !== raw) {
        violated(`resolution shows mailuser = ${JSON.stringify(raw)} as ${JSON.stringify(shown)}`)
      }
    }
  }),

  check("returns values as strings, never converted", async (harness) => {
    // Each value parses for its key, so a source that refuses values its kind cannot
    // parse (the Management Server source refuses the whole response) passes too.
    const settings = {
      mailserverbackup: "true",
      mailSmtpPort: "0465",
      mailSmtpTimeout: "010000",
      allowCustomCipherSuitesForOutboundCommunication: "No",
    }
    const { snapshot } = await snapshotOf(harness, settings)
    for (const [key, raw] of Object.entries(settings)) {
      const found = entryFor(snapshot, key)?.value
      if (found?._tag !== "Set" || found.value !== raw) {
        violated(`${key} = ${JSON.stringify(raw)} came back as ${describeValue(found)}`)
      }
    }
  }),

  check("lets an empty value inherit from the layer below", async (harness) => {
    const { source, snapshot } = await snapshotOf(harness, { mailserver: "", mailfrom: "   " })
    for (const key of ["mailserver", "mailfrom"]) {
      const found = entryFor(snapshot, key)?.value
      if (found !== undefined && found._tag !== "Inherit") {
        violated(`an empty ${key} must inherit (or be absent), got ${describeValue(found)}`)
      }
    }
    const below = lowerLayer({ mailserver: "below.example.com", mailfrom: "below@example.com" })
    const resolution = SettingsResolution.resolve([snapshot, below])
    for (const key of ["mailserver", "mailfrom"]) {
      const winner = resolution.provenance.find((p) => p.key === key)!
      if (winner.layer !== below.layer) {
        violated(`an empty ${key} in ${source.layer} hid the layer below (won: ${winner.layer})`)
      }
    }
  }),

  check("forces empty with [EMPTY] in any case", async (harness) => {
    const settings = { mailuser: "[EMPTY]", mailserverbackup: "[empty]", trustStorePath: "[Empty]" }
    const { source, snapshot } = await snapshotOf(harness, settings)
    for (const key of Object.keys(settings)) {
      const found = entryFor(snapshot, key)?.value
      if (found?._tag !== "ForceEmpty") {
        violated(
          `${key} = ${settings[key as keyof typeof settings]} must force empty, ` +
            `got ${describeValue(found)}`,
        )
      }
    }
    const below = lowerLayer({
      mailuser: "svc",
      mailserverbackup: "backup.example.com",
      trustStorePath: "/etc/store.pem",
    })
    const resolution = SettingsResolution.resolve([snapshot, below])
    for (const key of Object.keys(settings)) {
      const winner = resolution.provenance.find((p) => p.key === key)!
      if (winner.layer !== source.layer || winner.value._tag !== "Empty" || !winner.value.forced) {
        violated(`[EMPTY] for ${key} did not win over the layer below: ${JSON.stringify(winner)}`)
      }
    }
  }),

  check("returns secrets Redacted and never shows them", async (harness) => {
    const secrets = { mailpass: "s3cr3t#;pass", trustStorePassword: "st0re-p4ss" }
    const { snapshot } = await snapshotOf(harness, { ...secrets, mailuser: "svc" })
    for (const [key, raw] of Object.entries(secrets)) {
      const found = entryFor(snapshot, key)?.value
      if (found?._tag !== "Set" || !Redacted.isRedacted(found.value)) {
        violated(`${key} must come back Redacted, got ${describeValue(found)}`)
      }
      if (Redacted.value(found.value as Redacted.Redacted<string>) !== raw) {
        violated(`${key} did not keep every byte of its value`)
      }
    }
    const resolution = SettingsResolution.resolve([snapshot])
    const renderings = [
      String(snapshot.entries.map((e) => String(e.value._tag === "Set" ? e.value.value : ""))),
      JSON.stringify(snapshot),
      inspect(snapshot, { depth: 10 }),
      JSON.stringify(resolution),
      inspect(resolution, { depth: 10 }),
    ]
    for (const raw of Object.values(secrets)) {
      if (renderings.some((text) => text.includes(raw))) {
        violated("a secret shows up in the printed snapshot, its warnings or the resolution")
      }
    }
  }),

  check("gives every entry an origin", async (harness) => {
    const { snapshot } = await snapshotOf(harness, {
      mailserver: "smtp.example.com",
      mailpass: "x",
      mailSmtpPort: "",
      mailuser: "[EMPTY]",
    })
    if (snapshot.entries.length === 0) violated("no entries came back")
    for (const entry of snapshot.entries) {
      if (!isOrigin(entry.origin) || Origin.format(entry.origin).trim() === "") {
        violated(`the entry for ${entry.key} has no usable origin: ${inspect(entry.origin)}`)
      }
    }
  }),

  check("reports an unknown key instead of dropping it", async (harness) => {
    const { snapshot } = await snapshotOf(harness, {
      mailserver: "smtp.example.com",
      mailSmtpPrt: "2525",
    })
    if (entryFor(snapshot, "mailserver")?.value._tag !== "Set") {
      violated("an unknown key made the source drop a known one (mailserver)")
    }
    const warnings = SettingsResolution.resolve([snapshot]).warnings
    const about = warnings.find((w) =>
      squash(`${w.key ?? ""} ${w.message}`).includes(squash("mailSmtpPrt")),
    )
    if (about === undefined) {
      violated(`the unknown key mailSmtpPrt was not reported; warnings: ${inspect(warnings)}`)
    }
    if (!squash(`${about.message} ${about.fix ?? ""}`).includes(squash("mailSmtpPort"))) {
      violated(`the warning about mailSmtpPrt does not suggest mailSmtpPort: ${inspect(about)}`)
    }
  }),

  check("treats a missing key as no error", async (harness) => {
    const { snapshot } = await snapshotOf(harness, {})
    const set = snapshot.entries.filter((e) => e.value._tag !== "Inherit")
    if (set.length > 0) {
      violated(`an empty store produced entries: ${set.map((e) => e.key).join(", ")}`)
    }
  }),

  check("loads the same snapshot every time", async (harness) => {
    const source = await settle(
      harness.make({ mailserver: "smtp.example.com", mailpass: "p#ss", mailuser: "[EMPTY]" }),
    )
    const first = await Effect.runPromise(source.load)
    const second = await Effect.runPromise(source.load)
    if (inspect(comparable(first), { depth: 10 }) !== inspect(comparable(second), { depth: 10 })) {
      violated("two loads of the same store gave different snapshots")
    }
  }),

  check("carries every catalogue key to resolution", async (harness) => {
    const { source, snapshot } = await snapshotOf(harness, fullSettings)
    const resolution = SettingsResolution.resolve([snapshot], { exists: () => false })
    if (resolution.problems.length > 0) {
      violated(
        `valid settings did not resolve: ${resolution.problems
          .map((p) => SettingsResolution.formatProblem(p))
          .join("; ")}`,
      )
    }
    for (const key of Settings.settingKeys) {
      const winner = resolution.provenance.find((p) => p.key === key)!
      const entry = entryFor(snapshot, key)
      if (winner.layer !== source.layer || entry === undefined) {
        violated(`${key} did not come from ${source.layer} (won: ${winner.layer})`)
      }
      if (inspect(winner.origin) !== inspect(entry.origin)) {
        violated(`${key}: resolution lost the entry's origin`)
      }
    }
  }),

  check("fails with a ConfigSourceError when the store cannot be read", async (harness) => {
    const source = await settle(harness.makeUnreadable())
    const result = await Effect.runPromise(Effect.result(source.load))
    if (result._tag === "Success") violated("an unreadable store loaded successfully")
    const error: unknown = (result as { failure: unknown }).failure
    if (!(error instanceof ConfigSource.ConfigSourceError)) {
      return violated(`the failure is not a ConfigSourceError: ${inspect(error)}`)
    }
    if (error.layer !== source.layer) {
      violated(`the error names layer "${error.layer}", the source is "${source.layer}"`)
    }
    for (const field of ["location", "message", "fix"] as const) {
      if (error[field].trim() === "") violated(`the error has an empty ${field}`)
    }
  }),
]

/** Settings that are valid together, one for every catalogue key. */
export const fullSettings: Readonly<Record<Settings.SettingKey, string>> = {
  mailserver: "smtp.example.com",
  mailserverbackup: "backup.example.com",
  mailfrom: "Print Room <print@example.com>",
  mailuser: "svc-print",
  mailpass: "pa#ss;w0rd!",
  mailSmtpEncryption: "STARTTLS_REQUIRED",
  mailSmtpPort: "587",
  mailSmtpConnectionTimeout: "5000",
  mailSmtpTimeout: "20000",
  cryptographicProtocolsForOutboundCommunication: ">=TLSv1.2",
  allowCustomCipherSuitesForOutboundCommunication: "true",
  customCipherSuitesForOutboundCommunication:
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_AES_128_GCM_SHA256",
  trustStorePath: "/opt/spoc/conf/ssl-truststore",
  trustStorePassword: "changeit-too",
  trustStoreType: "JKS",
}

const originTags = new Set(["File", "Env", "Remote", "Cache", "Default", "Program"])

const isOrigin = (value: unknown): value is Origin.Origin =>
  typeof value === "object" && value !== null && originTags.has((value as Origin.Origin)._tag)

/** An in-memory layer below the source under test. */
const lowerLayer = (settings: Record<string, string>): ConfigSource.SourceSnapshot => ({
  layer: "contract-lower-layer",
  entries: Object.entries(settings).map(([key, raw]) =>
    ConfigSource.entry(key, raw, Origin.program("contract suite")),
  ),
  warnings: [],
})

/**
 * Registers the contract as vitest tests under `ConfigSource contract: <name>`.
 * Call it at the top level of a test file:
 *
 * ```ts
 * configSourceContract("json-file", {
 *   make: (settings) => writeJsonAndMakeSource(settings),
 *   makeUnreadable: () => JsonFileSource.make({ path: "/nonexistent.json" }),
 * })
 * ```
 */
export const configSourceContract = (name: string, harness: ConfigSourceHarness): void => {
  describe(`ConfigSource contract: ${name}`, () => {
    afterAll(async () => {
      await harness.cleanup?.()
    })
    for (const { name: checkName, run } of configSourceChecks) {
      it(checkName, () => run(harness))
    }
  })
}
