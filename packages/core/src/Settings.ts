/**
 * The settings catalogue: every key spoc-mail understands, its kind, its
 * built-in default and what it means, following the spooler controller's
 * reference (`mailserver`, `mailSmtpEncryption`, ...) plus the trust store
 * keys. It also defines `MailSettings`, the typed, validated result of
 * resolution that the rest of spoc-mail works with.
 *
 * Parsing a single raw string into its typed value lives in
 * `SettingsParser.ts`; stacking layers lives in `SettingsResolution.ts`.
 */
import type * as Redacted from "effect/Redacted"
import type { CipherSuiteList } from "./CipherSuites.ts"
import type { TlsVersionRange } from "./TlsVersions.ts"

/** What kind of value a key holds; decides how it is parsed and shown. */
export type SettingKind =
  | "host"
  | "optionalHost"
  | "mailbox"
  | "text"
  | "secret"
  | "encryption"
  | "port"
  | "milliseconds"
  | "tlsVersions"
  | "boolean"
  | "cipherSuites"
  | "path"
  | "trustStoreType"

export interface SettingSpec {
  readonly key: SettingKey
  readonly kind: SettingKind
  /** The built-in default as a raw string; `undefined` when there is none. */
  readonly default: string | undefined
  readonly description: string
  /** Required before a message can be sent. */
  readonly requiredToSend: boolean
}

export const settingKeys = [
  "mailserver",
  "mailserverbackup",
  "mailfrom",
  "mailuser",
  "mailpass",
  "mailSmtpEncryption",
  "mailSmtpPort",
  "mailSmtpConnectionTimeout",
  "mailSmtpTimeout",
  "cryptographicProtocolsForOutboundCommunication",
  "allowCustomCipherSuitesForOutboundCommunication",
  "customCipherSuitesForOutboundCommunication",
  "trustStorePath",
  "trustStorePassword",
  "trustStoreType",
] as const

export type SettingKey = (typeof settingKeys)[number]

export const defaultCipherSuites = [
  "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
  "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
  "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
  "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
  "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
  "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
] as const

const spec = (
  key: SettingKey,
  kind: SettingKind,
  defaultValue: string | undefined,
  description: string,
  requiredToSend = false,
): SettingSpec => ({ key, kind, default: defaultValue, description, requiredToSend })

/** The catalogue, in the order settings are shown. */
export const catalogue: ReadonlyArray<SettingSpec> = [
  spec("mailserver", "host", undefined, "host name, IPv4 or [IPv6] of the mail server", true),
  spec("mailserverbackup", "optionalHost", "", "server tried when the primary fails"),
  spec("mailfrom", "mailbox", undefined, "sender mailbox, display name allowed", true),
  spec("mailuser", "text", "", "user for SMTP AUTH; empty means no AUTH"),
  spec("mailpass", "secret", "", "password for SMTP AUTH"),
  spec("mailSmtpEncryption", "encryption", "NONE", "NONE, SSL_TLS, STARTTLS, STARTTLS_REQUIRED"),
  spec("mailSmtpPort", "port", "25", "TCP port of the mail server, 1 to 65535"),
  spec("mailSmtpConnectionTimeout", "milliseconds", "10000", "ms to connect, greet and finish TLS"),
  spec("mailSmtpTimeout", "milliseconds", "10000", "ms for each later command and for DATA"),
  spec("cryptographicProtocolsForOutboundCommunication", "tlsVersions", "TLSv1.2", "TLS versions"),
  spec(
    "allowCustomCipherSuitesForOutboundCommunication",
    "boolean",
    "false",
    "use customCipherSuitesForOutboundCommunication",
  ),
  spec(
    "customCipherSuitesForOutboundCommunication",
    "cipherSuites",
    defaultCipherSuites.join(","),
    "cipher suites by IANA name",
  ),
  spec("trustStorePath", "path", "", "trust store file or folder added to the system roots"),
  spec("trustStorePassword", "secret", "changeit", "password of the trust store"),
  spec("trustStoreType", "trustStoreType", "auto", "auto, JKS, PKCS12 or PEM"),
]

const byKey = new Map<string, SettingSpec>(catalogue.map((s) => [s.key, s]))

export const isSettingKey = (key: string): key is SettingKey => byKey.has(key)

export const specOf = (key: SettingKey): SettingSpec => byKey.get(key)!

/** Secrets are wrapped in `Redacted` the moment a source reads them. */
export const isSecretKey = (key: string): boolean => byKey.get(key)?.kind === "secret"

/** The encryption modes. STARTTLS_REQUIRED is spoc-mail's own: STARTTLS or fail. */
export type EncryptionMode = "NONE" | "SSL_TLS" | "STARTTLS" | "STARTTLS_REQUIRED"

export type TrustStoreType = "auto" | "JKS" | "PKCS12" | "PEM"

/** A mail server address: a host name or IP (IPv6 without brackets). */
export interface ServerAddress {
  readonly host: string
  readonly kind: "name" | "ipv4" | "ipv6"
}

/** A mailbox with an optional display name, as written in the setting. */
export interface Mailbox {
  readonly address: string
  readonly name: string | undefined
  /** The text as configured, for headers. */
  readonly text: string
}

export interface Credentials {
  readonly user: string
  readonly password: Redacted.Redacted<string>
}

/** The typed, validated settings after every layer has been resolved. */
export interface MailSettings {
  readonly mailserver: ServerAddress
  readonly mailserverbackup: ServerAddress | undefined
  readonly mailfrom: Mailbox
  /** Present when `mailuser` is not empty. */
  readonly credentials: Credentials | undefined
  readonly encryption: EncryptionMode
  readonly port: number
  readonly connectionTimeoutMs: number
  readonly commandTimeoutMs: number
  readonly tlsVersions: TlsVersionRange
  readonly allowCustomCipherSuites: boolean
  readonly cipherSuites: CipherSuiteList
  readonly trustStore: {
    /** `undefined` when no trust store is configured and the default path does not exist. */
    readonly path: string | undefined
    readonly password: Redacted.Redacted<string>
    readonly type: TrustStoreType
  }
}
