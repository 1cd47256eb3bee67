/**
 * The settings a command needs to reach a mail server without sending mail
 * (`probe`, `trust fetch`): host, port, mode, timeouts and TLS versions and
 * suites. They are read key by key from a resolution, so a problem with a
 * key such a command does not use (mailfrom unset, a bad backup address)
 * does not throw its own settings away for the defaults: each key's winning
 * text is parsed with core's SettingsParser, and only problems with the keys
 * it uses stop it.
 *
 * It does not read the password: that is only in the typed settings, which
 * any problem withholds, so `credentials` is set only when there is none.
 */
import { type Settings, SettingsParser, SettingsResolution, type TlsPolicy } from "@spoc-mail/core"
import * as Effect from "effect/Effect"

export interface ConnectionSettings {
  /** `undefined` when mailserver is not set. */
  readonly host: string | undefined
  readonly port: number
  /** Whether mailSmtpPort is set in some layer (not the default). */
  readonly portConfigured: boolean
  readonly mode: Settings.EncryptionMode
  readonly connectionTimeoutMs: number
  readonly commandTimeoutMs: number
  readonly tls: TlsPolicy.TlsPolicySettings
  readonly user: string | undefined
  /** Only when the whole resolution has no problem. */
  readonly credentials: Settings.Credentials | undefined
}

/** Keys that never matter for reaching a server. */
const neverNeeded: ReadonlyArray<Settings.SettingKey> = ["mailfrom", "mailserverbackup", "mailpass"]

/**
 * The connection settings of a resolution. A problem with a key outside
 * `unneeded` (and mailfrom, mailserverbackup, mailpass) is a ConfigError
 * naming it; every other key is read from its winning text, its default when
 * unset.
 */
export const connectionSettingsOf = (
  resolution: SettingsResolution.Resolution,
  unneeded: ReadonlyArray<Settings.SettingKey> = [],
): Effect.Effect<ConnectionSettings, SettingsResolution.ConfigError> => {
  const layerOf = (key: Settings.SettingKey) =>
    resolution.provenance.find((p) => p.key === key)?.layer ?? "default"
  const settings = resolution.settings
  if (settings !== undefined) {
    return Effect.succeed({
      host: settings.mailserver.host,
      port: settings.port,
      portConfigured: layerOf("mailSmtpPort") !== "default",
      mode: settings.encryption,
      connectionTimeoutMs: settings.connectionTimeoutMs,
      commandTimeoutMs: settings.commandTimeoutMs,
      tls: settings,
      user: settings.credentials?.user,
      credentials: settings.credentials,
    })
  }

  const ignored = new Set<string>([...neverNeeded, ...unneeded])
  const blocking = resolution.problems.filter((p) => p.key === undefined || !ignored.has(p.key))
  if (blocking.length > 0) {
    return Effect.fail(new SettingsResolution.ConfigError({ problems: blocking }))
  }
  const text = (key: Settings.SettingKey): string | undefined => {
    const value = resolution.provenance.find((p) => p.key === key)?.value
    return value?._tag === "Text" ? value.text : undefined
  }
  const read = <A>(
    key: Settings.SettingKey,
    parse: (raw: string) => { ok: true; value: A } | { ok: false },
    fallback: A,
  ): A => {
    const raw = text(key)
    if (raw === undefined) return fallback
    const parsed = parse(raw)
    return parsed.ok ? parsed.value : fallback
  }
  const user = text("mailuser")
  return Effect.succeed({
    host: read("mailserver", SettingsParser.serverAddress, undefined)?.host,
    port: read("mailSmtpPort", SettingsParser.port, 25),
    portConfigured: layerOf("mailSmtpPort") !== "default",
    mode: read("mailSmtpEncryption", SettingsParser.encryption, "NONE"),
    connectionTimeoutMs: read("mailSmtpConnectionTimeout", SettingsParser.milliseconds, 10_000),
    commandTimeoutMs: read("mailSmtpTimeout", SettingsParser.milliseconds, 10_000),
    tls: {
      tlsVersions: read(
        "cryptographicProtocolsForOutboundCommunication",
        SettingsParser.tlsVersions,
        { min: "TLSv1.2", max: "TLSv1.2" },
      ),
      allowCustomCipherSuites: read(
        "allowCustomCipherSuitesForOutboundCommunication",
        SettingsParser.boolean,
        false,
      ),
      cipherSuites: read(
        "customCipherSuitesForOutboundCommunication",
        SettingsParser.cipherSuites,
        {
          suites: [],
        },
      ),
    },
    user: user === undefined || user === "" ? undefined : user,
    credentials: undefined,
  })
}
