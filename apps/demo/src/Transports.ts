/**
 * The transports the command can send with, by name. `raw` is spoc-mail's
 * own SMTP client and the default; `nodemailer` maps the same policy onto
 * nodemailer. Both pass the same contract suite.
 */
import type { Transport } from "@spoc-mail/core"
import { NodemailerTransport } from "@spoc-mail/transport-nodemailer"
import { RawTransport } from "@spoc-mail/transport-raw"
import { Flag } from "effect/cli"

export const transportNames = ["raw", "nodemailer"] as const

export type TransportName = (typeof transportNames)[number]

export const transportFlag = Flag.Literals("transport", transportNames).pipe(
  Flag.withDescription("which SMTP client sends: raw (spoc-mail's own) or nodemailer"),
  Flag.withDefault("raw" as TransportName),
)

export const makeTransport = (name: TransportName): Transport.TransportShape =>
  name === "raw" ? RawTransport.make() : NodemailerTransport.make()
