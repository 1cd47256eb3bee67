/**
 * `spoc-mail trust list | import | remove | fetch`: the trust store the
 * controller uses for mail servers (and the Management Server), like
 * `keytool -list / -importcert / -delete`, on JKS, PKCS#12 or PEM stores and
 * folders. The store is the one the settings name (trustStorePath,
 * trustStorePassword, trustStoreType) unless `--store` gives another; its
 * password is never a flag, so it stays out of shell history and process
 * lists (set SPOC_TRUST_STORE_PASSWORD or its _FILE variant for another one).
 * Writes replace the file atomically and keep every other entry. Importing a
 * certificate the store already holds is a note, not an error; one that is not
 * a CA is imported with a warning, since a root CA is what should be trusted;
 * a store that does not exist is created only with `--create`.
 *
 * `fetch` connects to a mail server (SSL_TLS, or STARTTLS after EHLO) with the
 * connection timeout, TLS versions and suites of the settings (read key by
 * key, so a problem with a key it does not use does not matter), shows
 * the chain the server presents and whether the current store trusts it, and
 * with `--alias` imports a self-signed certificate of that chain (the root, or
 * a self-signed server certificate) after confirmation, `--yes` to skip it.
 * Verification stays on while fetching: the chain is read the moment the
 * handshake ends, before Node refuses an untrusted server, so nothing is sent
 * over such a connection. A certificate that is not self-signed is not
 * imported: Node trusts a chain only up to a trusted root.
 */
import { X509Certificate } from "node:crypto"
import { existsSync, readFileSync } from "node:fs"
import * as net from "node:net"
import { resolve as resolvePath } from "node:path"
import * as tls from "node:tls"
import {
  type Settings,
  TlsPolicy,
  TransportError,
  TransportFailures,
  TrustStore,
} from "@spoc-mail/core"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Terminal from "effect/Terminal"
import { Command, Flag } from "effect/cli"
import { loadSettings } from "../AppSettings.ts"
import { handled } from "../Cli.ts"
import { connectionSettingsOf } from "../ConnectionSettings.ts"
import { FetchError, UsageError } from "../Report.ts"
import { type SourceOptions, sourceFlags } from "../SourceOptions.ts"

// The store to work on.

const storeFlags = {
  store: Flag.String("store").pipe(
    Flag.withDescription("trust store file or folder (default: trustStorePath from the settings)"),
    Flag.optional,
  ),
  storeType: Flag.Literals("store-type", ["auto", "JKS", "PKCS12", "PEM"]).pipe(
    Flag.withDescription("the store's type (default: trustStoreType, else by content)"),
    Flag.optional,
  ),
} as const

interface StoreOptions extends SourceOptions {
  readonly store: Option.Option<string>
  readonly storeType: Option.Option<Settings.TrustStoreType>
}

/**
 * The store and its password from the settings. With `--store`, only the
 * local layers (environment, spoc.conf) are read: a store given by hand must
 * be usable even when the Management Server, reached through the configured
 * store, is not.
 */
const storeConfig = (options: StoreOptions) =>
  Effect.gen(function* () {
    const local = Option.isSome(options.store)
    const { resolution } = yield* loadSettings(
      local ? { ...options, managementServer: Option.some("") } : options,
    )
    const configured = resolution.trustStore
    const path = Option.isSome(options.store) ? resolvePath(options.store.value) : configured.path
    if (path === undefined) {
      return yield* new UsageError({
        detail: "no trust store is configured (trustStorePath is empty)",
        fix: "give the store with --store, or set trustStorePath",
      })
    }
    const type = Option.getOrElse(options.storeType, () => configured.type)
    return { config: { path, password: configured.password, type }, resolution }
  })

// Showing certificates.

const day = (iso: string): string => iso.slice(0, 10)

const validity = (certificate: { readonly validFrom: string; readonly validTo: string }) => {
  const now = Date.now()
  if (Date.parse(certificate.validTo) < now) return `${day(certificate.validTo)} (EXPIRED)`
  if (Date.parse(certificate.validFrom) > now) {
    return `${day(certificate.validTo)} (not valid before ${day(certificate.validFrom)})`
  }
  return day(certificate.validTo)
}

const kindWords = (entry: TrustStore.StoreEntry): string =>
  entry.kind === "privateKey" ? "private key entry" : "trusted certificate"

/** One entry as lines of text. */
export const formatEntry = (entry: TrustStore.StoreEntry): string =>
  [
    `${entry.alias}  (${kindWords(entry)}${entry.file === undefined ? "" : `, ${entry.file}`})`,
    `  subject:  ${entry.subject}`,
    `  issuer:   ${entry.issuer}`,
    `  expires:  ${validity(entry)}`,
    `  SHA-256:  ${entry.fingerprint256}`,
  ].join("\n")

/** `trust list` as text. */
export const formatListing = (listing: TrustStore.StoreListing): string => {
  const count = listing.entries.length
  const entries = `${count} ${count === 1 ? "entry" : "entries"}`
  const lines = [
    `Trust store ${listing.path} (${listing.format}), ${entries}, ` +
      "used together with the system's root CAs:",
    "",
    ...listing.entries.map(formatEntry).flatMap((e) => [e, ""]),
  ]
  for (const skipped of listing.skipped) lines.push(`skipped ${skipped}`)
  return lines.join("\n").trimEnd()
}

const listCommand = Command.make(
  "list",
  {
    ...sourceFlags,
    ...storeFlags,
    json: Flag.Boolean("json").pipe(
      Flag.withDescription("print the entries as JSON"),
      Flag.withDefault(false),
    ),
  },
  (options) =>
    handled(
      Effect.gen(function* () {
        const { config } = yield* storeConfig(options)
        const listing = yield* TrustStore.list(config)
        if (options.json) {
          const entries = listing.entries.map(({ pem: _pem, ...entry }) => entry)
          yield* Console.log(JSON.stringify({ ...listing, entries }, null, 2))
        } else {
          yield* Console.log(formatListing(listing))
        }
      }),
      { json: options.json },
    ),
).pipe(Command.withDescription("list the store's entries: alias, subject, issuer, expiry, SHA-256"))

// Import and remove.

const aliasFlag = Flag.String("alias").pipe(Flag.withDescription("the entry's alias"))

const createFlag = Flag.Literals("create", ["JKS", "PKCS12", "PEM"]).pipe(
  Flag.withDescription("create the store in this format when it does not exist"),
  Flag.optional,
)

/** The certificate of `--file`; a file that is not one is the flag's fault, not the store's. */
const readImportFile = (file: string): Effect.Effect<Uint8Array, UsageError> =>
  Effect.try({
    try: () => TrustStore.certificateFromBytes(readFileSync(file)),
    catch: (cause) => {
      const code = (cause as NodeJS.ErrnoException).code
      if (code === "ENOENT" || code === "EISDIR" || code === "EACCES") {
        const why =
          code === "ENOENT"
            ? "does not exist"
            : code === "EISDIR"
              ? "is a folder"
              : "is not readable"
        return new UsageError({
          detail: `--file ${file} ${why}`,
          fix: "give --file the certificate to trust, as a PEM or DER file",
        })
      }
      const problem = cause as { message?: unknown; fix?: unknown }
      const detail = String(problem.message ?? "is not a certificate")
      return new UsageError({
        detail: `--file ${file} ${detail}`,
        // Core's advice fits a bundle; anything else is not a certificate file at all.
        fix:
          /^holds [1-9]\d* certificates/.test(detail) && typeof problem.fix === "string"
            ? problem.fix
            : "give --file one CA certificate as a PEM or DER file (a key or a whole store " +
              "cannot be imported; keytool -exportcert takes one out of a store)",
      })
    },
  })

/**
 * Imports `certificate` under `alias`, as `trust import` and `trust fetch --alias` do:
 * a store that does not exist needs `--create`; a certificate the store already holds is
 * a note, not an error; one that is not a CA is imported with a warning.
 */
const importInto = (
  config: TrustStore.TrustStoreConfig & { readonly path: string },
  alias: string,
  certificate: Uint8Array,
  create: Option.Option<TrustStore.NewStoreFormat>,
) =>
  Effect.gen(function* () {
    if (!existsSync(config.path)) {
      if (Option.isNone(create)) {
        return yield* new TrustStore.TrustStoreError({
          path: config.path,
          detail: "does not exist",
          fix:
            "add --create PKCS12 (or --create JKS, --create PEM) to create it with this " +
            "certificate, or check --store / trustStorePath",
        })
      }
    } else {
      const fingerprint = new X509Certificate(certificate).fingerprint256
      const listing = yield* TrustStore.list(config)
      const present = listing.entries.find((e) => e.fingerprint256 === fingerprint)
      if (present !== undefined) {
        yield* Console.log(
          `Nothing to do: ${config.path} already holds this certificate under the alias ` +
            `${present.alias}` +
            (present.alias.toLowerCase() === alias.toLowerCase()
              ? ""
              : ` (not added as ${alias})`) +
            `:\n${formatEntry(present)}`,
        )
        return
      }
    }
    const parsed = new X509Certificate(certificate)
    for (const caution of [notACa(parsed), outOfDate(parsed)]) {
      if (caution !== undefined) yield* Effect.logWarning(caution)
    }
    const added = yield* TrustStore.importCertificate(
      config,
      alias,
      certificate,
      Option.isSome(create) ? { create: create.value } : {},
    )
    yield* Console.log(`Imported into ${config.path}:\n${formatEntry(added)}`)
  })

/** The warning for a certificate that has expired or is not valid yet: no chain can use it. */
const outOfDate = (certificate: X509Certificate, now = Date.now()): string | undefined => {
  const subject = oneLine(certificate.subject)
  if (Date.parse(certificate.validTo) < now) {
    return (
      `"${subject}" expired on ${new Date(certificate.validTo).toISOString()}: no server is ` +
      "trusted through it; import the current certificate instead"
    )
  }
  if (Date.parse(certificate.validFrom) > now) {
    return `"${subject}" is not valid before ${new Date(certificate.validFrom).toISOString()}`
  }
  return undefined
}

/** The warning for a certificate that is not a CA's: a root CA is what should be trusted. */
const notACa = (certificate: X509Certificate): string | undefined => {
  if (certificate.ca) return undefined
  const subject = oneLine(certificate.subject)
  if (selfSigned(certificate)) {
    return (
      `"${subject}" is a server's self-signed certificate, not a CA: it is trusted only until ` +
      "the server's certificate changes, and must then be imported again; a root CA is what " +
      "should be trusted"
    )
  }
  return (
    `"${subject}" is not a CA certificate: a chain is trusted only up to a trusted root, so ` +
    "this does not make its server trusted; import the root CA of its chain instead (it is " +
    `issued by "${oneLine(certificate.issuer)}"; spoc-mail trust fetch shows the whole chain)`
  )
}

const importCommand = Command.make(
  "import",
  {
    ...sourceFlags,
    ...storeFlags,
    alias: aliasFlag,
    file: Flag.String("file").pipe(Flag.withDescription("the certificate, PEM or DER")),
    create: createFlag,
  },
  (options) =>
    handled(
      Effect.gen(function* () {
        const { config } = yield* storeConfig(options)
        const certificate = yield* readImportFile(options.file)
        yield* importInto(config, options.alias, certificate, options.create)
      }),
    ),
).pipe(Command.withDescription("add a CA certificate to the store under an alias"))

const removeCommand = Command.make(
  "remove",
  { ...sourceFlags, ...storeFlags, alias: aliasFlag },
  (options) =>
    handled(
      Effect.gen(function* () {
        const { config } = yield* storeConfig(options)
        const removed = yield* TrustStore.removeCertificate(config, options.alias)
        yield* Console.log(`Removed from ${config.path}:\n${formatEntry(removed)}`)
      }),
    ),
).pipe(Command.withDescription("delete the entry with this alias from the store"))

// Fetch.

/** What a server presented, and whether the current store trusts it. */
export interface PresentedChain {
  /** Leaf first, as the server sent them (Node may add the issuer it found in the store). */
  readonly certificates: ReadonlyArray<X509Certificate>
  readonly protocol: string | undefined
  /** `undefined` when the chain verified; else why not. */
  readonly refusal: TransportFailures.Classified | undefined
}

export interface FetchTarget {
  readonly host: string
  readonly port: number
  readonly mode: "SSL_TLS" | "STARTTLS"
  readonly tls: tls.ConnectionOptions
  readonly timeoutMs: number
  readonly clientName: string
}

/** Reads one SMTP reply (all its lines) from the socket. */
const smtpReply = (socket: net.Socket, buffer: { text: string }): Promise<string> =>
  new Promise((resolve, reject) => {
    const check = () => {
      const complete = /(?:^|\r?\n)(\d{3}) [^\r\n]*\r?\n/.exec(buffer.text)
      if (complete === null) return false
      const end = complete.index + complete[0].length
      const reply = buffer.text.slice(0, end)
      buffer.text = buffer.text.slice(end)
      socket.off("data", onData)
      socket.off("close", onClose)
      resolve(reply)
      return true
    }
    const onData = (chunk: Buffer) => {
      buffer.text += chunk.toString("latin1")
      if (buffer.text.length > 65_536) reject(new Error("the server's reply is too long"))
      check()
    }
    const onClose = () =>
      reject(Object.assign(new Error("connection closed"), { code: "ECONNRESET" }))
    if (check()) return
    socket.on("data", onData)
    socket.once("close", onClose)
  })

const probeHint = "spoc-mail probe shows which mode and port the server speaks"

/** What to try when a port does not speak the mode fetched with. */
const otherModeHint = (mode: FetchTarget["mode"]): string =>
  mode === "STARTTLS"
    ? "this port may speak TLS from the first byte: try --mode SSL_TLS (usually port 465); " +
      probeHint
    : `this port may not speak TLS from the first byte: try --mode STARTTLS (usually port 587); ` +
      probeHint

/** The connection timeout ran out in `phase`. */
const timedOut = (
  target: FetchTarget,
  phase: TransportError.Phase,
): TransportFailures.Classified => {
  const within = `within ${target.timeoutMs} ms (mailSmtpConnectionTimeout)`
  switch (phase) {
    case "connect":
      return {
        ...TransportFailures.classifyConnect({ code: "ETIMEDOUT" }),
        detail: `no TCP connection ${within}`,
      }
    case "greeting":
      return {
        reason: "GreetingTimeout",
        detail: `the server sent no greeting ${within}`,
        hint: otherModeHint("STARTTLS"),
      }
    case "ehlo":
    case "starttls":
      return {
        reason: "CommandTimeout",
        detail: `the server did not answer ${phase.toUpperCase()} ${within}`,
        hint: "the server is stuck or slow; raise mailSmtpConnectionTimeout if it is only slow",
      }
    default:
      return target.mode === "SSL_TLS"
        ? {
            reason: "GreetingTimeout",
            detail: `no TLS handshake ${within}`,
            hint: otherModeHint("SSL_TLS"),
          }
        : {
            reason: "TlsHandshakeFailed",
            detail: `the TLS handshake after STARTTLS did not finish ${within}`,
            hint: "the server accepted STARTTLS but did not start TLS; check the server",
          }
  }
}

/** Connects, upgrades with STARTTLS when asked, and reads the chain the server presents. */
export const fetchChain = (
  target: FetchTarget,
): Effect.Effect<PresentedChain, TransportError.TransportError> => {
  const endpoint = { host: target.host, port: target.port, role: "primary" as const }
  const fail = (
    classified: TransportFailures.Classified,
    phase: TransportError.Phase,
    cause?: unknown,
  ) => TransportFailures.toError(classified, endpoint, phase, cause)

  return Effect.callback<PresentedChain, TransportError.TransportError>((resume) => {
    let done = false
    let phase: TransportError.Phase = "connect"
    const sockets: Array<net.Socket> = []
    const finish = (effect: Effect.Effect<PresentedChain, TransportError.TransportError>) => {
      if (done) return
      done = true
      clearTimeout(timer)
      // Only the outermost socket: destroying the plain socket under a TLS socket as well
      // makes Node 20 crash (SIGSEGV) at exit after a completed STARTTLS handshake.
      sockets[sockets.length - 1]?.destroy()
      resume(effect)
    }
    const timer = setTimeout(
      () => finish(Effect.fail(fail(timedOut(target, phase), phase))),
      target.timeoutMs,
    )

    const handshake = (socket?: net.Socket) => {
      if (socket !== undefined) phase = "tls"
      let certificates: Array<X509Certificate> = []
      let protocol: string | undefined
      const secure = tls.connect({
        ...target.tls,
        port: target.port,
        ...(socket === undefined ? {} : { socket }),
      })
      sockets.push(secure)
      secure.once("connect", () => {
        phase = "tls"
      })
      // Runs before Node's own check, which destroys an untrusted connection.
      secure.prependOnceListener("secure", () => {
        certificates = chainOf(secure.getPeerCertificate(true))
        protocol = secure.getProtocol() ?? undefined
      })
      secure.once("secureConnect", () => {
        if (target.mode === "STARTTLS") secure.write("QUIT\r\n")
        finish(Effect.succeed({ certificates, protocol, refusal: undefined }))
      })
      secure.on("error", (error) => {
        if (phase === "connect") {
          finish(Effect.fail(fail(TransportFailures.classifyConnect(error), phase, error)))
          return
        }
        const classified = TransportFailures.classifyTls(error, target.mode)
        finish(
          certificates.length > 0
            ? Effect.succeed({ certificates, protocol, refusal: classified })
            : Effect.fail(fail(classified, "tls", error)),
        )
      })
    }

    if (target.mode === "SSL_TLS") {
      handshake()
    } else {
      const plain = net.connect({ host: target.host, port: target.port })
      sockets.push(plain)
      plain.on("error", (error) => {
        if (phase === "connect") {
          finish(Effect.fail(fail(TransportFailures.classifyConnect(error), phase, error)))
        }
      })
      plain.once("connect", () => {
        const buffer = { text: "" }
        const step = async () => {
          phase = "greeting"
          const greeting = await smtpReply(plain, buffer)
          if (!greeting.startsWith("220")) {
            finish(
              Effect.fail(
                fail(
                  {
                    reason: "GreetingRejected",
                    detail: `the server refused the session: ${oneLine(greeting.trim())}`,
                    hint:
                      "the server does not accept connections from this host now; its text " +
                      "says why",
                  },
                  "greeting",
                ),
              ),
            )
            return
          }
          phase = "ehlo"
          plain.write(`EHLO ${target.clientName}\r\n`)
          const capabilities = await smtpReply(plain, buffer)
          if (!/^250[ -]STARTTLS\b/im.test(capabilities)) {
            finish(
              Effect.fail(
                fail(
                  {
                    reason: "StartTlsNotOffered",
                    detail: "the server does not offer STARTTLS on this port",
                    hint: "try --mode SSL_TLS, or the server's STARTTLS port (usually 587)",
                  },
                  "ehlo",
                ),
              ),
            )
            return
          }
          phase = "starttls"
          plain.write("STARTTLS\r\n")
          const ready = await smtpReply(plain, buffer)
          if (!ready.startsWith("220")) {
            finish(
              Effect.fail(
                fail(
                  {
                    reason: "StartTlsRefused",
                    detail: `the server refused STARTTLS: ${ready.trim()}`,
                  },
                  "starttls",
                ),
              ),
            )
            return
          }
          handshake(plain)
        }
        step().catch((error: unknown) =>
          finish(
            Effect.fail(
              fail(
                (error as { code?: unknown }).code === "ECONNRESET"
                  ? {
                      reason: "ConnectionLost",
                      detail:
                        phase === "greeting"
                          ? "the server closed the connection without a greeting"
                          : `the server closed the connection during ${phase.toUpperCase()}`,
                      hint: phase === "greeting" ? otherModeHint("STARTTLS") : probeHint,
                    }
                  : {
                      reason: "ProtocolViolation",
                      detail: `the SMTP dialogue before STARTTLS failed: ${String(error)}`,
                      hint: probeHint,
                    },
                phase,
                error,
              ),
            ),
          ),
        )
      })
    }
    return Effect.sync(() => finish(Effect.die("interrupted")))
  })
}

const chainOf = (leaf: tls.DetailedPeerCertificate): Array<X509Certificate> => {
  const chain: Array<X509Certificate> = []
  const seen = new Set<string>()
  let current: tls.DetailedPeerCertificate | undefined = leaf
  while (current?.raw !== undefined && !seen.has(current.fingerprint256)) {
    seen.add(current.fingerprint256)
    chain.push(new X509Certificate(current.raw))
    current = current.issuerCertificate
  }
  return chain
}

const selfSigned = (certificate: X509Certificate): boolean =>
  certificate.checkIssued(certificate) && certificate.verify(certificate.publicKey)

const selfSignedNote = "  (self-signed: a root or a self-signed server)"

/** The chain as numbered paragraphs, with the verdict of the current store. */
export const formatChain = (chain: PresentedChain, target: FetchTarget): string => {
  const how = chain.protocol === undefined ? target.mode : `${target.mode}, ${chain.protocol}`
  const where = TransportError.formatEndpoint({ ...target, role: "primary" })
  const lines = [`${where} (${how}) presents ${chain.certificates.length} certificate(s):`, ""]
  chain.certificates.forEach((certificate, i) => {
    const entry = TrustStore.describe(`#${i + 1}`, certificate.raw)
    lines.push(
      `#${i + 1}${selfSigned(certificate) ? selfSignedNote : ""}`,
      `  subject:  ${entry.subject}`,
      `  issuer:   ${entry.issuer}`,
      `  expires:  ${validity(entry)}`,
      `  SHA-256:  ${entry.fingerprint256}`,
      "",
    )
  })
  lines.push(
    chain.refusal === undefined
      ? "The current trust store (with the system roots) trusts this chain."
      : `Not trusted now: ${chain.refusal.detail}.`,
  )
  return lines.join("\n")
}

/** Which certificate `fetch --alias` imports: `--pick`, else the self-signed one. */
export const chooseCertificate = (
  chain: PresentedChain,
  pick: Option.Option<number>,
): Effect.Effect<X509Certificate, UsageError> => {
  const certificates = chain.certificates
  if (Option.isSome(pick)) {
    const chosen = certificates[pick.value - 1]
    if (chosen === undefined) {
      return Effect.fail(
        new UsageError({
          detail: `--pick ${pick.value} is not in the chain of ${certificates.length}`,
          fix: `pick a number from 1 to ${certificates.length}`,
        }),
      )
    }
    if (!selfSigned(chosen)) return Effect.fail(notSelfSigned(chosen))
    return Effect.succeed(chosen)
  }
  const root = [...certificates].reverse().find(selfSigned)
  if (root !== undefined) return Effect.succeed(root)
  const top = certificates[certificates.length - 1]
  return Effect.fail(
    top === undefined
      ? new UsageError({ detail: "the server presented no certificate", fix: "check the server" })
      : notSelfSigned(top),
  )
}

const oneLine = (name: string): string => name.split("\n").join(", ")

const notSelfSigned = (certificate: X509Certificate) =>
  new UsageError({
    detail:
      "the server does not send its root CA, and trusting a certificate below the root does " +
      `not make the chain trusted (the missing root is "${oneLine(certificate.issuer)}")`,
    fix:
      "get that root CA's certificate from your CA or administrator and add it with " +
      "spoc-mail trust import --alias NAME --file ROOT.crt",
  })

/** Asks on the terminal; anything but y/yes is no, and so is a closed input. */
const confirm = (question: string) =>
  Effect.gen(function* () {
    const terminal = yield* Terminal.Terminal
    yield* terminal.display(`${question} [y/N] `).pipe(Effect.ignore)
    const answer = yield* terminal.readLine.pipe(Effect.orElseSucceed(() => ""))
    return /^\s*y(es)?\s*$/i.test(answer)
  })

const fetchCommand = Command.make(
  "fetch",
  {
    ...sourceFlags,
    ...storeFlags,
    host: Flag.String("host").pipe(
      Flag.withDescription("the mail server (default: mailserver)"),
      Flag.optional,
    ),
    port: Flag.Int("port").pipe(
      Flag.withDescription("its port (default: mailSmtpPort)"),
      Flag.optional,
    ),
    mode: Flag.Literals("mode", ["SSL_TLS", "STARTTLS"]).pipe(
      Flag.withDescription("how TLS starts (default: mailSmtpEncryption; NONE means STARTTLS)"),
      Flag.optional,
    ),
    alias: Flag.String("alias").pipe(
      Flag.withDescription("import a certificate of the chain under this alias"),
      Flag.optional,
    ),
    pick: Flag.Int("pick").pipe(
      Flag.withDescription("which certificate to import, by its number (default: the root)"),
      Flag.optional,
    ),
    create: createFlag,
    yes: Flag.Boolean("yes").pipe(
      Flag.withDescription("import without asking"),
      Flag.withDefault(false),
    ),
  },
  (options) =>
    handled(
      Effect.gen(function* () {
        const { config, resolution } = yield* storeConfig(options)
        // Only the keys a fetch uses count: mailfrom unset must not throw away the timeout
        // and TLS settings for the defaults.
        const configured = yield* connectionSettingsOf(resolution, [
          "mailuser",
          ...(Option.isSome(options.host) ? (["mailserver"] as const) : []),
          ...(Option.isSome(options.mode) ? (["mailSmtpEncryption"] as const) : []),
          ...(Option.isSome(options.port) ? (["mailSmtpPort"] as const) : []),
        ])
        const host = Option.getOrElse(options.host, () => configured.host ?? "")
        if (host === "") {
          return yield* new UsageError({
            detail: "no server to fetch from",
            fix: "give --host, or set mailserver",
          })
        }
        const configuredMode = configured.mode === "SSL_TLS" ? "SSL_TLS" : "STARTTLS"
        const mode = Option.getOrElse(options.mode, () => configuredMode)
        const port = Option.getOrElse(options.port, () =>
          Option.isSome(options.mode) && !configured.portConfigured
            ? mode === "SSL_TLS"
              ? 465
              : 587
            : configured.port,
        )

        // Verify with the store as it is now; a store not created yet means the system roots.
        const trust = existsSync(config.path)
          ? yield* TrustStore.load(config)
          : TrustStore.fromCertificates(undefined, [])
        const policy = TlsPolicy.make(configured.tls, trust)
        const target: FetchTarget = {
          host,
          port,
          mode,
          tls: policy.optionsFor(host),
          timeoutMs: configured.connectionTimeoutMs,
          clientName: "spoc-mail.invalid",
        }
        const chain = yield* fetchChain(target).pipe(
          Effect.mapError(
            (error) =>
              new FetchError({
                error: TransportFailures.explainVersionMismatch(error, policy.removedByCipherList),
              }),
          ),
        )
        yield* Console.log(formatChain(chain, target))

        if (Option.isNone(options.alias)) {
          if (chain.refusal !== undefined) {
            yield* Console.log(
              "\nTo trust it, import its root: spoc-mail trust fetch --alias NAME " +
                `--host ${host} --port ${port} --mode ${mode}`,
            )
          }
          return
        }
        const chosen = yield* chooseCertificate(chain, options.pick)
        const described = TrustStore.describe(options.alias.value, chosen.raw)
        const question =
          `Trust "${described.subject}" (SHA-256 ${described.fingerprint256}) for mail servers, ` +
          `as ${options.alias.value} in ${config.path}?`
        if (!options.yes && !(yield* confirm(question))) {
          yield* Console.log("Not imported.")
          return
        }
        yield* importInto(config, options.alias.value, chosen.raw, options.create)
      }),
    ),
).pipe(
  Command.withDescription(
    "show the certificate chain a mail server presents, and import its root after confirmation",
  ),
)

/** `spoc-mail trust`, with its four subcommands. */
export const trustCommand = Command.make("trust").pipe(
  Command.withDescription("list, import, remove or fetch the trust store's certificates"),
  Command.withSubcommands([listCommand, importCommand, removeCommand, fetchCommand]),
)
