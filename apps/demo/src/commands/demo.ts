/**
 * `spoc-mail demo`: the whole product on one machine, with no setup and no
 * network. It makes a certificate authority, starts a primary and a backup
 * SMTP server on loopback (TLS with certificates from that CA, AUTH
 * required) and a reference Management Server, writes a controller home
 * (spoc.conf, trust store) for them, resolves the settings from those layers
 * like a real controller, and sends with SSL_TLS, with STARTTLS, and with the
 * primary stopped (the backup delivers), through both transports.
 *
 * It prints one line per send: mode, server used, TLS protocol and cipher,
 * the server's reply. Any failure exits non-zero with the error's paragraph.
 */
import { randomBytes } from "node:crypto"
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startManagementServer } from "@spoc-mail/management-server"
import { Mailer, Origin, SettingsResolution, TlsPolicy, TrustStore } from "@spoc-mail/core"
import { type SmtpTestServer, startSmtpServer } from "@spoc-mail/testkit"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { Command } from "effect/cli"
import { loadSettings } from "../AppSettings.ts"
import { handled } from "../Cli.ts"
import { type DemoPki, makeDemoPki } from "../DemoPki.ts"
import { makeTransport, transportNames } from "../Transports.ts"

interface Scenario {
  readonly title: string
  readonly mode: "SSL_TLS" | "STARTTLS"
  readonly primary: string
  readonly backup: string | undefined
  readonly port: number
}

const demoUser = "spoc-demo"
const controllerId = "spoc-demo-01"

/** Starts the demo's servers; the backup listens on 127.0.0.2 at the same port. */
const startServers = async (pki: DemoPki, password: string) => {
  const primaryCert = await pki.issue(["localhost", "127.0.0.1"])
  const backupCert = await pki.issue(["127.0.0.2"])
  const auth = { user: demoUser, password }
  const implicit = await startSmtpServer({
    tls: "implicit",
    certificate: { key: primaryCert.keyPem, cert: primaryCert.certPem },
    auth,
    name: "primary.demo",
  })
  const starttls = await startSmtpServer({
    tls: "starttls",
    certificate: { key: primaryCert.keyPem, cert: primaryCert.certPem },
    auth,
    name: "primary.demo",
  })
  const backup = await startSmtpServer({
    host: "127.0.0.2",
    tls: "implicit",
    certificate: { key: backupCert.keyPem, cert: backupCert.certPem },
    auth,
    name: "backup.demo",
  })
  // The primary of the failover scenario: up on the backup's port, then stopped.
  const doomed = await startSmtpServer({
    tls: "implicit",
    port: backup.port,
    certificate: { key: primaryCert.keyPem, cert: primaryCert.certPem },
    auth,
  })
  await doomed.close()
  return { implicit, starttls, backup, all: [implicit, starttls, backup] }
}

const centralYaml = (password: string) =>
  [
    "schemaVersion: 1",
    "settings:",
    '  mailfrom: "Spooler Demo <spooler@demo.test>"',
    `  mailuser: ${demoUser}`,
    `  mailpass: "${password}"`,
    "  mailSmtpConnectionTimeout: 3000",
    "  mailSmtpTimeout: 5000",
    '  cryptographicProtocolsForOutboundCommunication: ">=TLSv1.2"',
    "",
  ].join("\n")

const spocConf = (scenario: Scenario) =>
  [
    "# Written by spoc-mail demo: this controller's overrides of the central settings.",
    `mailserver = ${scenario.primary}`,
    `mailserverbackup = ${scenario.backup ?? ""}`,
    `mailSmtpEncryption = ${scenario.mode}`,
    `mailSmtpPort = ${scenario.port}`,
    "",
  ].join("\r\n")

const pad = (text: string, width: number) => text.padEnd(width)

export const runDemo = Effect.gen(function* () {
  const home = mkdtempSync(join(tmpdir(), "spoc-mail-demo-"))
  const servers: Array<SmtpTestServer> = []
  const closers: Array<() => Promise<void>> = []
  yield* Effect.addFinalizer(() =>
    Effect.promise(async () => {
      await Promise.all([...servers.map((s) => s.close()), ...closers.map((c) => c())])
      rmSync(home, { recursive: true, force: true })
    }),
  )

  yield* Console.log("spoc-mail demo: everything runs on this machine, on loopback.\n")
  const pki = yield* Effect.promise(makeDemoPki)
  const password = randomBytes(12).toString("base64url")
  const started = yield* Effect.promise(() => startServers(pki, password))
  servers.push(...started.all)

  mkdirSync(join(home, "conf", "modules"), { recursive: true })
  writeFileSync(join(home, "conf", "ssl-truststore"), pki.rootPem)
  const centralPath = join(home, "central.yaml")
  writeFileSync(centralPath, centralYaml(password))
  const central = yield* Effect.promise(() =>
    startManagementServer({ configPath: centralPath, watch: false }),
  )
  closers.push(central.close)

  yield* Console.log(
    `  CA            a fresh root CA, trusted through ${join("conf", "ssl-truststore")}`,
  )
  yield* Console.log(
    `  primary       127.0.0.1:${started.implicit.port} (SSL_TLS), ` +
      `127.0.0.1:${started.starttls.port} (STARTTLS)`,
  )
  yield* Console.log(`  backup        127.0.0.2:${started.backup.port} (SSL_TLS)`)
  yield* Console.log(`  management    ${central.url} (mailfrom, credentials, timeouts)\n`)

  const scenarios: ReadonlyArray<Scenario> = [
    {
      title: "SSL_TLS",
      mode: "SSL_TLS",
      primary: "127.0.0.1",
      backup: undefined,
      port: started.implicit.port,
    },
    {
      title: "STARTTLS",
      mode: "STARTTLS",
      primary: "localhost",
      backup: undefined,
      port: started.starttls.port,
    },
    {
      title: "failover",
      mode: "SSL_TLS",
      primary: "127.0.0.1",
      backup: "127.0.0.2",
      port: started.backup.port,
    },
  ]

  const confPath = join(home, "conf", "modules", "spoc.conf")
  let sent = 0
  for (const scenario of scenarios) {
    writeFileSync(confPath, spocConf(scenario))
    const { resolution } = yield* loadSettings({
      spocHome: Option.some(home),
      spocConf: Option.some(confPath),
      managementServer: Option.some(central.url),
      controllerId: Option.some(controllerId),
      noEnv: true,
      source: [],
    })
    const settings = yield* SettingsResolution.settingsOf(resolution)
    if (sent === 0) {
      const from = resolution.provenance.find((p) => p.key === "mailfrom")!
      const server = resolution.provenance.find((p) => p.key === "mailserver")!
      yield* Console.log(
        `  settings      mailserver from ${Origin.format(server.origin)}, ` +
          `mailfrom from ${from.layer}, password ${
            resolution.provenance.find((p) => p.key === "mailpass")!.layer
          } (never printed)\n`,
      )
    }
    const trust = yield* TrustStore.load(settings.trustStore)
    for (const name of transportNames) {
      const mailer = Mailer.make(settings, makeTransport(name), TlsPolicy.make(settings, trust))
      const receipt = yield* mailer.send({
        to: ["operator@demo.test"],
        subject: `spoc-mail demo: ${scenario.title} via ${name}`,
        text: `Sent by spoc-mail demo with ${scenario.mode} through the ${name} transport.`,
      })
      sent++
      const tls =
        receipt.tls === undefined ? "plain text" : `${receipt.tls.protocol} ${receipt.tls.cipher}`
      yield* Console.log(
        `${pad(scenario.title, 9)} ${pad(name, 10)} ${pad(receipt.endpoint.role, 7)} ` +
          `${pad(`${receipt.endpoint.host}:${receipt.endpoint.port}`, 16)} ${pad(tls, 36)} ` +
          receipt.response,
      )
    }
  }

  const received = servers.reduce((n, s) => n + s.messages.length, 0)
  yield* Console.log(`\n${sent} messages sent, ${received} received by the demo servers.`)
}).pipe(Effect.scoped)

export const demoCommand = Command.make("demo", {}, () => handled(runDemo)).pipe(
  Command.withDescription(
    "Run the whole product on loopback: CA, SMTP servers, Management Server, and six " +
      "sends (SSL_TLS, STARTTLS and failover, each through both transports)",
  ),
)
