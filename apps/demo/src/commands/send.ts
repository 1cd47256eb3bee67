/**
 * `spoc-mail send`: one message, from flags or from an .eml file, through
 * the server the resolved settings name, with failover to the backup. Prints
 * the receipt: which server took it, over which TLS version and cipher, and
 * the server's reply.
 */
import { readFileSync } from "node:fs"
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

const readInput = (path: string, what: string) =>
  Effect.try({
    try: () => readFileSync(path),
    catch: (cause) =>
      new UsageError({
        detail: `cannot read the ${what} ${path} (${(cause as NodeJS.ErrnoException).code})`,
        fix: "check the path and the file's permissions",
      }),
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
        for (const w of resolution.warnings) yield* Effect.logWarning(w.message)
        const settings = yield* SettingsResolution.settingsOf(resolution)
        const trust = yield* TrustStore.load(settings.trustStore)
        const mailer = Mailer.make(
          settings,
          makeTransport(options.transport),
          TlsPolicy.make(settings, trust),
        )

        if (Option.isSome(options.eml)) {
          const bytes = yield* readInput(options.eml.value, "message file")
          const composed = yield* Message.fromEml(bytes, {
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
        for (const path of options.attach) yield* readInput(path, "attachment")
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
