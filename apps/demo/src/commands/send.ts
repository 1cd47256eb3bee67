/**
 * `spoc-mail send`: one message, from flags or from an .eml file, through
 * the server the resolved settings name, with failover to the backup. Prints
 * the receipt: which server took it, over which TLS version and cipher, and
 * the server's reply.
 */
import { accessSync, constants, readFileSync, statSync } from "node:fs"
import { basename } from "node:path"
import {
  type Mailer as MailerModule,
  Mailer,
  Message,
  SettingsResolution,
  TlsPolicy,
  TrustStore,
  TransportError,
} from "@spoc-mail/core"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { Command, Flag } from "effect/cli"
import { loadSettings } from "../AppSettings.ts"
import { handled } from "../Cli.ts"
import { estimateSize, withProgress } from "../Progress.ts"
import { UsageError } from "../Report.ts"
import { sourceFlags } from "../SourceOptions.ts"
import { makeTransport, transportFlag } from "../Transports.ts"

const many = (name: string, description: string) =>
  Flag.String(name).pipe(Flag.withDescription(description), Flag.atLeast(0))

/** The largest .eml file read into memory; attachments are streamed and have no limit. */
const maxEmlBytes = 64 * 1024 * 1024

/**
 * Checks an input file before anything is sent: it must be a readable regular
 * file (not a folder, a device such as /dev/zero, or a pipe that never ends).
 */
const checkInput = (path: string, what: string, maxBytes?: number) =>
  Effect.try({
    try: () => {
      const stat = statSync(path)
      if (!stat.isFile()) throw Object.assign(new Error(), { code: "ENOTFILE" })
      if (maxBytes !== undefined && stat.size > maxBytes) {
        throw Object.assign(new Error(), { code: "ETOOBIG" })
      }
      accessSync(path, constants.R_OK)
    },
    catch: (cause) => {
      const code = (cause as NodeJS.ErrnoException).code
      const detail =
        code === "ENOTFILE"
          ? `the ${what} ${path} is not a regular file`
          : code === "ETOOBIG"
            ? `the ${what} ${path} is larger than ${maxBytes! / 1024 / 1024} MB`
            : `cannot read the ${what} ${path} (${code ?? String(cause)})`
      return new UsageError({
        detail,
        fix:
          code === "ETOOBIG"
            ? "send large content as --attach, which is streamed"
            : "give the path of a readable file",
      })
    },
  })

/** One line for a receipt: mode, server, TLS, reply. */
export const describeReceipt = (receipt: MailerModule.DeliveryReceipt): string => {
  const server = TransportError.formatEndpoint(receipt.endpoint)
  const tls =
    receipt.tls === undefined
      ? "no TLS"
      : `${receipt.tls.via} ${receipt.tls.protocol} ${receipt.tls.cipher}`
  return (
    `delivered by the ${receipt.endpoint.role} server ${server} via ${receipt.transport}, ` +
    `${tls}: ${receipt.response}`
  )
}

export const sendCommand = Command.make(
  "send",
  {
    ...sourceFlags,
    to: many("to", "recipient address (repeat for more)"),
    cc: many("cc", "copy recipient (repeat for more)"),
    bcc: many("bcc", "blind copy recipient (repeat for more)"),
    from: Flag.String("from").pipe(
      Flag.withDescription("sender mailbox (default: mailfrom)"),
      Flag.optional,
    ),
    subject: Flag.String("subject").pipe(
      Flag.withDescription("subject line"),
      Flag.withDefault(""),
    ),
    text: Flag.String("text").pipe(Flag.withDescription("plain-text body"), Flag.optional),
    html: Flag.String("html").pipe(Flag.withDescription("HTML body"), Flag.optional),
    attach: many("attach", "file to attach (repeat for more)"),
    eml: Flag.String("eml").pipe(
      Flag.withDescription("send this ready-made message file instead of composing one"),
      Flag.optional,
    ),
    transport: transportFlag,
  },
  (options) =>
    handled(
      Effect.gen(function* () {
        const { resolution } = yield* loadSettings(options)
        for (const w of resolution.warnings) {
          yield* Effect.logWarning(SettingsResolution.formatWarning(w))
        }
        const settings = yield* SettingsResolution.settingsOf(resolution)
        const trust = yield* TrustStore.load(settings.trustStore)
        const mailer = Mailer.make(
          settings,
          makeTransport(options.transport),
          TlsPolicy.make(settings, trust),
        )

        if (Option.isSome(options.eml)) {
          const composing = [
            options.subject !== "" && "--subject",
            Option.isSome(options.text) && "--text",
            Option.isSome(options.html) && "--html",
            options.attach.length > 0 && "--attach",
          ].filter((flag) => flag !== false)
          if (composing.length > 0) {
            return yield* new UsageError({
              detail: `${composing.join(", ")} cannot go with --eml, which is sent as it is`,
              fix: "edit the .eml file, or compose the message with flags instead of --eml",
            })
          }
          yield* checkInput(options.eml.value, "message file", maxEmlBytes)
          const bytes = readFileSync(options.eml.value)
          const composed = yield* Message.fromEml(bytes, {
            sender: settings.mailfrom,
            ...(options.to.length > 0
              ? { to: [...options.to, ...options.cc, ...options.bcc] }
              : {}),
            ...(Option.isSome(options.from) ? { from: options.from.value } : {}),
          })
          const receipt = yield* mailer.sendComposed(composed)
          yield* Console.log(describeReceipt(receipt))
          return
        }

        if (options.to.length + options.cc.length + options.bcc.length === 0) {
          return yield* new UsageError({
            detail: "no recipient is given",
            fix: "add --to user@example.com (or --eml with a file that has To headers)",
          })
        }
        for (const path of options.attach) yield* checkInput(path, "attachment")
        const message: Message.MailMessage = {
          to: options.to,
          cc: options.cc,
          bcc: options.bcc,
          subject: options.subject,
          ...(Option.isSome(options.from) ? { from: options.from.value } : {}),
          ...(Option.isSome(options.text) ? { text: options.text.value } : {}),
          ...(Option.isSome(options.html) ? { html: options.html.value } : {}),
          attachments: options.attach.map((path) => ({ filename: basename(path), path })),
        }
        const composed = yield* Message.compose(message, settings.mailfrom)
        const receipt = yield* mailer.sendComposed(withProgress(composed, estimateSize(message)))
        yield* Console.log(describeReceipt(receipt))
      }),
    ),
).pipe(Command.withDescription("Send one message through the configured mail server"))
