/**
 * @spoc-mail/core: the settings model, the four services (config source, TLS
 * policy, trust store, transport) and the Mailer that joins them. Plugins
 * implement ConfigSource and Transport; applications stack sources, resolve
 * the settings and provide a transport.
 */
export * as CipherSuites from "./CipherSuites.ts"
export * as ConfigSource from "./ConfigSource.ts"
export * as Mailer from "./Mailer.ts"
export * as Message from "./Message.ts"
export * as Origin from "./Origin.ts"
export * as Parsed from "./Parsed.ts"
export * as Settings from "./Settings.ts"
export * as SettingsParser from "./SettingsParser.ts"
export * as SettingsResolution from "./SettingsResolution.ts"
export * as TlsPolicy from "./TlsPolicy.ts"
export * as TlsVersions from "./TlsVersions.ts"
export * as Transport from "./Transport.ts"
export * as TransportError from "./TransportError.ts"
export * as TrustStore from "./TrustStore.ts"
export * as TransportFailures from "./TransportFailures.ts"
