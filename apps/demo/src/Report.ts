/**
 * How the command reports failures: one clear paragraph (what failed,
 * against which server, the server's own words, how to fix it) and an exit
 * code that names the stage. Every error type of the packages is turned into
 * text here and nowhere else, so no command prints a raw stack or a secret.
 */
import {
  type ConfigSource,
  type Mailer,
  type Message,
  Origin,
  type SettingsResolution,
  TransportError,
  type TrustStore,
} from "@spoc-mail/core"
import * as Data from "effect/Data"
import { type ExitCode, exitCodes, forTransportFailure } from "./ExitCodes.ts"

export type AppError =
  | SettingsResolution.ConfigError
  | ConfigSource.ConfigSourceError
  | TrustStore.TrustStoreError
  | Message.MessageError
  | Mailer.DeliveryError
  | TransportError.TransportError
  | FetchError
  | UsageError

/** Wrong use of the command: a missing flag, an unreadable input file. */
export class UsageError extends Data.TaggedError("UsageError")<{
  readonly detail: string
  readonly fix: string
}> {
  override get message(): string {
    return `${this.detail}. Fix: ${this.fix}`
  }
}

/**
 * `trust fetch` could not read a server's chain. Nothing was sent and nothing
 * imported, so it is worded as a fetch, not as a message that was not sent.
 */
export class FetchError extends Data.TaggedError("FetchError")<{
  readonly error: TransportError.TransportError
}> {
  override get message(): string {
    return this.error.message
  }
}

const describeTransport = (
  error: TransportError.TransportError,
  server = `${error.endpoint.role} server`,
): string => {
  const lines = [
    `${server} ${TransportError.formatEndpoint(error.endpoint)}: ` +
      `${error.detail} (${error.reason}, during ${error.phase}` +
      `${error.command === undefined ? "" : `, after ${error.command}`}).`,
  ]
  if (error.code !== undefined) {
    const enhanced = error.enhancedCode === undefined ? "" : ` ${error.enhancedCode}`
    lines.push(`  The server said: ${error.code}${enhanced} ${error.serverText ?? ""}`.trimEnd())
  }
  if (error.hint !== undefined) lines.push(`  How to fix: ${error.hint}`)
  return lines.join("\n")
}

/** The paragraph and the exit code for an error. */
export const describe = (error: AppError): { text: string; exitCode: ExitCode } => {
  switch (error._tag) {
    case "ConfigError":
      return {
        text:
          "The settings cannot be used to send:\n" +
          error.problems
            .map((p) => {
              const where = p.origin === undefined ? p.layer : Origin.formatLong(p.origin)
              return (
                `  - ${p.key ?? "settings"}: ${p.message} (from ${where}).\n` +
                `    How to fix: ${p.fix}`
              )
            })
            .join("\n"),
        exitCode: exitCodes.config,
      }
    case "ConfigSourceError":
      return {
        text:
          `Cannot read ${error.layer} (${error.location}): ${error.message}.\n` +
          `  How to fix: ${error.fix}`,
        exitCode: exitCodes.config,
      }
    case "TrustStoreError":
      return {
        text:
          `Cannot use the trust store ${error.path}: ${error.detail}.\n` +
          `  How to fix: ${error.fix}`,
        exitCode: exitCodes.trustStore,
      }
    case "MessageError":
      return {
        text:
          `The message cannot be sent: ${error.field}: ${error.detail}.\n` +
          `  How to fix: ${error.fix}`,
        exitCode: exitCodes.usage,
      }
    case "UsageError":
      return { text: `${error.detail}.\n  How to fix: ${error.fix}`, exitCode: exitCodes.usage }
    case "FetchError":
      return {
        text:
          "Could not fetch the server's certificate chain; nothing was imported.\n" +
          describeTransport(error.error, "server"),
        exitCode: forTransportFailure(error.error.reason, error.error.phase),
      }
    case "TransportError":
      return {
        text: `The message was not sent.\n${describeTransport(error)}`,
        exitCode: forTransportFailure(error.reason, error.phase),
      }
    case "DeliveryError": {
      const attempts = error.attempts
        .map((a, i) =>
          a.error === undefined
            ? `Attempt ${i + 1}: ${a.outcome}`
            : `Attempt ${i + 1}, ${describeTransport(a.error)}`,
        )
        .join("\n")
      const verdict =
        error.last.reason === "OutcomeUnknown"
          ? "The outcome is unknown: the server may have accepted the message. It was not " +
            "resent, to avoid a duplicate; check the recipient's mailbox or the server's log."
          : error.last.reason === "DeadlineExceeded"
            ? "The send did not finish in time. The attempt under way was stopped and may or " +
              "may not have delivered the message; it was not resent."
            : "The message was not sent."
      return {
        text: `${verdict}\n${attempts}`,
        exitCode: forTransportFailure(error.last.reason, error.last.phase),
      }
    }
  }
}
