/**
 * What every `spoc-mail` command shares at run time: a logger that writes
 * events a person acts on (failover, plaintext delivery, outcome unknown) to
 * stderr in plain words, and `handled`, which turns any error of the
 * packages into one paragraph on stderr and the stage's exit code.
 *
 * The logger prints what it is given; secrets never reach it because the
 * packages log only redacted values and masked transcripts.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as References from "effect/References"
import { GlobalFlag } from "effect/cli"
import { exitCodes } from "./ExitCodes.ts"
import { type AppError, describe } from "./Report.ts"

const levelWords: Readonly<Record<string, string>> = {
  Fatal: "error",
  Error: "error",
  Warn: "warning",
  Info: "info",
  Debug: "debug",
  Trace: "trace",
}

const render = (message: unknown): string =>
  Array.isArray(message) ? message.map(String).join(" ") : String(message)

/** Log lines as `warning: <message> (endpoint=…, event=…)` on stderr. */
export const stderrLogger = Logger.make<unknown, void>(({ message, logLevel, fiber }) => {
  const annotations = fiber.getRef(References.CurrentLogAnnotations)
  const context = Object.entries(annotations)
    .filter(([key]) => key !== "event")
    .map(([key, value]) => `${key}=${String(value)}`)
    .join(", ")
  const suffix = context === "" ? "" : ` (${context})`
  process.stderr.write(`${levelWords[logLevel] ?? logLevel}: ${render(message)}${suffix}\n`)
})

export const loggerLayer = Logger.layer([stderrLogger])

/**
 * Warnings and errors by default; `--log-level info` adds delivery events and
 * `--log-level debug` the SMTP transcript (AUTH arguments masked).
 */
const withDefaultLevel = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(Effect.serviceOption(GlobalFlag.LogLevel), (chosen) =>
    Option.isSome(Option.flatten(chosen))
      ? effect
      : Effect.provideService(effect, References.MinimumLogLevel, "Warn"),
  )

/**
 * Runs a command's work: errors become a paragraph on stderr and an exit
 * code. With `json`, stdout gets the same error as JSON too, so that a
 * script reading `--json` output always has a document to read.
 */
export const handled = <A, R>(
  effect: Effect.Effect<A, AppError, R>,
  options: { readonly json?: boolean } = {},
): Effect.Effect<void, never, R> =>
  effect.pipe(
    withDefaultLevel,
    Effect.asVoid,
    Effect.catch((error: AppError) => {
      const { text, exitCode } = describe(error)
      const document = { error: { kind: error._tag, exitCode, message: text } }
      return Effect.sync(() => {
        process.stderr.write(`${text}\n`)
        process.exitCode = exitCode
      }).pipe(
        Effect.andThen(
          options.json === true ? Console.log(JSON.stringify(document, null, 2)) : Effect.void,
        ),
      )
    }),
    Effect.catchDefect((defect) =>
      Effect.sync(() => {
        process.stderr.write(`spoc-mail failed unexpectedly: ${String(defect)}\n`)
        process.exitCode = exitCodes.unexpected
      }),
    ),
    Effect.provide(loggerLayer),
  )
