/**
 * `spoc-mail probe`: connects to the mail server and reports each stage (TCP,
 * greeting, EHLO capabilities before and after TLS, TLS version and cipher,
 * the chain and whether the trust store verifies it, AUTH mechanisms), names
 * a port and mode mismatch, and recommends a mode and port (SSL_TLS first,
 * then STARTTLS, as the controller's reference advises): never as working
 * one whose certificate is refused (that is named, with its fix), never NONE
 * when the mode checked is encrypted, never one the report showed failing;
 * without a recommendation it says why and what to do. The work is
 * `Probe` of @spoc-mail/transport-raw; this file picks the target and
 * prints the report, as text or `--json`.
 *
 * Host, port and mode come from `--host`, `--port` and `--mode`, else from
 * the resolved settings. Settings a probe does not need (mailfrom, the
 * backup, mailserver when `--host` is given) may be missing or wrong. No
 * mail is sent, and no credentials unless `--auth` asks for it; they are
 * never printed. Exit code 0 when the checked mode works, else the code of
 * the stage where it stopped (see ExitCodes.ts).
 */
import {
  Mailer,
  SettingsResolution,
  type Settings,
  TlsVersions,
  TransportError,
  TrustStore,
} from "@spoc-mail/core"
import { Probe } from "@spoc-mail/transport-raw"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { Command, Flag } from "effect/cli"
import { loadSettings } from "../AppSettings.ts"
import { handled } from "../Cli.ts"
import { connectionSettingsOf } from "../ConnectionSettings.ts"
import { exitCodes, forTransportFailure } from "../ExitCodes.ts"
import { UsageError } from "../Report.ts"
import { type SourceOptions, sourceFlags } from "../SourceOptions.ts"

// ---------------------------------------------------------------------------------------------
// What to probe

const modes = ["NONE", "SSL_TLS", "STARTTLS", "STARTTLS_REQUIRED"] as const

interface ProbeFlags extends SourceOptions {
  readonly host: Option.Option<string>
  readonly port: Option.Option<number>
  readonly mode: Option.Option<Settings.EncryptionMode>
  readonly auth: boolean
  readonly json: boolean
}

/** Where each mode usually listens, for `--mode` without a configured or given port. */
const usualPort = (mode: Settings.EncryptionMode): number =>
  mode === "SSL_TLS" ? 465 : mode === "NONE" ? 25 : 587

// ---------------------------------------------------------------------------------------------
// The report as text

const day = (iso: string): string => iso.slice(0, 10)

const expiry = (validTo: string): string =>
  Date.parse(validTo) < Date.now() ? `${day(validTo)} (EXPIRED)` : day(validTo)

const label = (name: string): string => `  ${name.padEnd(12)}`

const describeGreeting = (greeting: Probe.Greeting): string => {
  switch (greeting.kind) {
    case "reply":
      return `${greeting.text.split("\n").join(" / ")} (after ${greeting.ms} ms)`
    case "silent":
      return `none: silent for ${greeting.waitedMs} ms`
    case "closed":
      return "none: the server closed the connection"
    case "not-smtp":
      return `not SMTP: ${greeting.detail}`
  }
}

const describeCapabilities = (capabilities: Probe.CapabilitiesReport): string =>
  capabilities.greetedWith === "HELO"
    ? "refused; HELO accepted (no extensions)"
    : capabilities.extensions.join(", ") || "(no extensions)"

const describeChain = (tls: Probe.TlsReport, trust: TrustStore.TrustStoreShape): Array<string> => {
  const store = trust.path === undefined ? "the system roots" : `${trust.path} and the system roots`
  const verdict = tls.verified
    ? `verified against ${store}`
    : `NOT trusted (checked against ${store}): ${tls.refusal?.detail ?? "refused"}`
  const lines = [`${label("chain")}${verdict}`]
  if (!tls.verified && tls.refusal?.hint !== undefined) {
    lines.push(`${label("")}how to fix: ${tls.refusal.hint}`)
  }
  tls.chain.forEach((certificate, i) => {
    lines.push(
      `    #${i + 1} ${certificate.subject}${certificate.selfSigned ? "  (self-signed)" : ""}`,
      `       issuer   ${certificate.issuer}`,
      `       expires  ${expiry(certificate.validTo)}`,
      `       SHA-256  ${certificate.fingerprint256}`,
    )
  })
  return lines
}

const describeAuth = (auth: Probe.AuthReport, authAsked: boolean): string => {
  const offered = auth.offered.length === 0 ? "not offered" : `offers ${auth.offered.join(" ")}`
  if (auth.tried !== undefined) {
    const verdict = auth.tried.accepted ? "accepted" : "REJECTED"
    return `${offered}; ${auth.tried.mechanism} ${verdict}: ${auth.tried.reply}`
  }
  return authAsked || auth.offered.length === 0
    ? offered
    : `${offered} (not tried; --auth tries the configured credentials)`
}

const describeFailure = (failure: Probe.Failure): Array<string> => {
  const lines = [
    `${label("stopped")}${failure.detail} (${failure.reason}, during ${failure.phase})`,
  ]
  if (failure.reply !== undefined) {
    lines.push(`${label("")}the server said: ${failure.reply.split("\n").join(" / ")}`)
  }
  if (failure.hint !== undefined) lines.push(`${label("")}how to fix: ${failure.hint}`)
  return lines
}

/** One attempt, its stages in the order the mode meets them. */
const describeAttempt = (
  attempt: Probe.Attempt,
  trust: TrustStore.TrustStoreShape,
  authAsked: boolean,
): string => {
  const title =
    `${attempt.mode} on port ${attempt.port}` +
    (attempt.purpose === "check" ? " (the mode checked)" : " (searching)")
  const lines = [title]
  if (attempt.tcp.connected) lines.push(`${label("TCP")}connected in ${attempt.tcp.ms} ms`)
  const tlsLines = (): Array<string> =>
    attempt.tls === undefined
      ? []
      : [
          `${label("TLS")}${attempt.tls.protocol}, ${attempt.tls.cipher} ` +
            `(handshake ${attempt.tls.handshakeMs} ms)`,
          ...describeChain(attempt.tls, trust),
        ]
  if (attempt.mode === "SSL_TLS") lines.push(...tlsLines())
  if (attempt.greeting !== undefined) {
    lines.push(`${label("greeting")}${describeGreeting(attempt.greeting)}`)
  }
  if (attempt.capabilitiesBeforeTls !== undefined) {
    lines.push(`${label("EHLO")}${describeCapabilities(attempt.capabilitiesBeforeTls)}`)
  }
  if (attempt.startTlsReply !== undefined) {
    lines.push(`${label("STARTTLS")}${attempt.startTlsReply.split("\n").join(" / ")}`)
  }
  if (attempt.mode === "STARTTLS") lines.push(...tlsLines())
  if (attempt.capabilitiesAfterTls !== undefined) {
    lines.push(`${label("EHLO in TLS")}${describeCapabilities(attempt.capabilitiesAfterTls)}`)
  }
  if (attempt.auth !== undefined)
    lines.push(`${label("AUTH")}${describeAuth(attempt.auth, authAsked)}`)
  for (const warning of attempt.warnings) lines.push(`${label("warning")}${warning}`)
  if (attempt.failure !== undefined) lines.push(...describeFailure(attempt.failure))
  else if (attempt.purpose === "check") lines.push(`${label("result")}works`)
  return lines.join("\n")
}

const describeVersions = (scan: Probe.VersionScan, settings: Probe.TlsSettingsReport): string => {
  const verdicts = scan.results.map((r) =>
    r.accepted === true
      ? `${r.version} yes`
      : r.accepted === false
        ? `${r.version} no`
        : `${r.version} ?`,
  )
  const unknown = scan.results
    .filter((r) => r.accepted === undefined)
    .map((r) => `  ${r.version}: ${r.detail ?? "unknown"}`)
  const offered = TlsVersions.format(settings.offered)
  const configured = TlsVersions.versionsIn(settings.configured).join(",")
  const removed = TlsVersions.versionsIn(settings.configured).filter(
    (v) => !TlsVersions.includes(settings.offered, v),
  )
  const narrowed =
    removed.length === 0
      ? ""
      : ` (cryptographicProtocolsForOutboundCommunication says ${configured}; the custom ` +
        `cipher list keeps ${removed.join(" and ")} out)`
  return [
    `TLS versions on port ${scan.port} (${scan.mode}): ${verdicts.join(", ")}`,
    ...unknown,
    `  a send with these settings offers ${offered}${narrowed}`,
  ].join("\n")
}

/**
 * The recommendation, or why there is none. It says a mode works only when it
 * does: a refused certificate is named with its fix, and NONE comes only with
 * the clear-text warning (the probe recommends it only when NONE was checked).
 */
const describeRecommendation = (report: Probe.ProbeReport): Array<string> => {
  const recommendation = report.recommendation
  if (recommendation === undefined) {
    const none = report.noRecommendation
    return none === undefined
      ? ["Recommendation: none."]
      : [`Recommendation: none; ${none.detail}.`, `  Fix: ${none.fix}.`]
  }
  const { change, status } = recommendation
  const asChecked =
    status === "works" &&
    report.check.works &&
    recommendation.mode === report.mode &&
    recommendation.port === report.port
  const lines = [
    `Recommendation: mailSmtpEncryption=${recommendation.mode}, ` +
      `mailSmtpPort=${recommendation.port}` +
      (change === undefined ? "" : `, and change ${change.keys.join(" / ")}`) +
      (status === "certificate-refused" ? ", once its certificate is accepted" : "") +
      (asChecked ? " (as checked)." : ` (${recommendation.reason}).`),
  ]
  if (change !== undefined) lines.push(`  Change: ${change.detail}.`)
  if (recommendation.fix !== undefined) lines.push(`  Fix: ${recommendation.fix}.`)
  if (status === "unencrypted" && recommendation.caveat !== undefined) {
    lines.push(`  Warning: ${recommendation.caveat}.`)
  }
  return lines
}

/** The whole report for people: each attempt's stages, versions, verdict, recommendation. */
export const formatReport = (
  report: Probe.ProbeReport,
  trust: TrustStore.TrustStoreShape,
  authAsked: boolean,
): string => {
  const where = TransportError.formatEndpoint({
    host: report.host,
    port: report.port,
    role: "primary",
  })
  const sections = [
    `Probing ${where}, checking ${report.mode} ` +
      `(connection timeout ${report.connectionTimeoutMs} ms)`,
    ...report.attempts.map((a) => describeAttempt(a, trust, authAsked)),
  ]
  if (report.versions !== undefined) {
    sections.push(describeVersions(report.versions, report.tlsSettings))
  }

  const summary = [`Port ${report.port} ${report.listener.detail}.`]
  if (report.mismatch !== undefined) summary.push(`Mismatch: ${report.mismatch}.`)
  const warnings = report.check.warnings
  summary.push(
    !report.check.works
      ? `Result: ${report.mode} does not work on ${where}: ${report.check.failure?.detail}.`
      : warnings.length === 0
        ? `Result: ${report.mode} works on ${where}.`
        : `Result: ${report.mode} works on ${where}; warning: ${warnings.join("; ")}.`,
  )
  summary.push(...describeRecommendation(report))
  sections.push(summary.join("\n"))
  return sections.join("\n\n")
}

/** 0 when the checked mode works; else the code of the stage where it stopped. */
export const exitCodeOf = (report: Probe.ProbeReport): number => {
  const failure = report.check.failure
  return failure === undefined ? exitCodes.ok : forTransportFailure(failure.reason, failure.phase)
}

// ---------------------------------------------------------------------------------------------
// The command

const runProbe = (flags: ProbeFlags) =>
  Effect.gen(function* () {
    const { resolution } = yield* loadSettings(flags)
    for (const w of resolution.warnings) {
      yield* Effect.logWarning(SettingsResolution.formatWarning(w))
    }
    const configured = yield* connectionSettingsOf(
      resolution,
      Option.isSome(flags.host) ? ["mailserver"] : [],
    )
    const host = Option.getOrUndefined(flags.host) ?? configured.host
    if (host === undefined || host === "") {
      return yield* new UsageError({
        detail: "no mail server to probe",
        fix: "give --host, or set mailserver",
      })
    }
    const mode = Option.getOrElse(flags.mode, () => configured.mode)
    const port = Option.getOrElse(flags.port, () =>
      Option.isSome(flags.mode) && !configured.portConfigured ? usualPort(mode) : configured.port,
    )
    if (!Number.isInteger(port) || port < 1 || port > 65_535) {
      return yield* new UsageError({
        detail: `--port ${port} is not a TCP port`,
        fix: "give a port from 1 to 65535",
      })
    }
    if (flags.auth && configured.user === undefined) {
      return yield* new UsageError({
        detail: "--auth needs credentials, and mailuser is not set",
        fix: "set mailuser and mailpass, or leave out --auth",
      })
    }
    if (flags.auth && configured.credentials === undefined) {
      const problems = resolution.problems.map((p) => `${p.key ?? "settings"} ${p.message}`)
      return yield* new UsageError({
        detail:
          "--auth takes mailpass from settings that resolve without problems, and these have " +
          `some: ${problems.join("; ")}`,
        fix: "fix them (spoc-mail config lists each with its source), or leave out --auth",
      })
    }

    const trust = yield* TrustStore.load(resolution.trustStore)
    const report = yield* Probe.probe({
      host,
      port,
      mode,
      connectionTimeoutMs: configured.connectionTimeoutMs,
      commandTimeoutMs: configured.commandTimeoutMs,
      clientName: Mailer.defaultClientName(),
      tls: configured.tls,
      trust,
      user: configured.user,
      password: flags.auth ? configured.credentials?.password : undefined,
    })
    yield* Console.log(flags.json ? Probe.toJson(report) : formatReport(report, trust, flags.auth))
    const code = exitCodeOf(report)
    if (code !== exitCodes.ok) process.exitCode = code
  })

export const probeCommand = Command.make(
  "probe",
  {
    ...sourceFlags,
    host: Flag.String("host").pipe(
      Flag.withDescription("the mail server (default: mailserver)"),
      Flag.optional,
    ),
    port: Flag.Int("port").pipe(
      Flag.withDescription(
        "its port (default: mailSmtpPort; with --mode and no port set, 465, 587 or 25)",
      ),
      Flag.optional,
    ),
    mode: Flag.Literals("mode", modes).pipe(
      Flag.withDescription("the encryption mode to check (default: mailSmtpEncryption)"),
      Flag.optional,
    ),
    auth: Flag.Boolean("auth").pipe(
      Flag.withDescription("also log in with mailuser and mailpass (never printed)"),
      Flag.withDefault(false),
    ),
    json: Flag.Boolean("json").pipe(
      Flag.withDescription("print the report as JSON"),
      Flag.withDefault(false),
    ),
  },
  (flags) => handled(runProbe(flags), { json: flags.json }),
).pipe(
  Command.withDescription(
    "Check how a mail server speaks: each stage, TLS versions, chain, AUTH; " +
      "recommend mode and port",
  ),
)
